# Two entry points do all set-up on a fresh machine:
#   make demo   venv + install + check, summarise, draw and train an example (the main job)
#   make test   venv + install + the whole test suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test bench system-deps test-deps clean

APT := DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends

# Debian's graphviz provides `dot` for SVG/PNG/PDF output.
system-deps:
	@command -v dot >/dev/null 2>&1 || { \
	  echo "installing Debian graphviz (dot is missing)"; \
	  apt-get update -qq && $(APT) graphviz >/dev/null; }

# pdflatex lets the tests compile every example's TikZ figure (about a minute).
test-deps: system-deps
	@command -v pdflatex >/dev/null 2>&1 && kpsewhich standalone.cls >/dev/null 2>&1 || { \
	  echo "installing Debian TeX Live (pdflatex, TikZ, standalone) for the figure tests"; \
	  apt-get update -qq && $(APT) texlive-latex-base texlive-pictures texlive-latex-extra >/dev/null; }

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

# The main job: check every example, then summarise, draw and train the
# LeNet-style digits network end to end (about a minute on two cores).
DEMO := runs/demo
demo: system-deps $(STAMP)
	$(VENV)/bin/catnet check examples/*.cat
	$(VENV)/bin/catnet summary examples/digits_cnn.cat
	rm -rf $(DEMO) && mkdir -p $(DEMO)
	$(VENV)/bin/catnet render examples/digits_cnn.cat -o $(DEMO)/digits_cnn.svg
	$(VENV)/bin/catnet train examples/digits_cnn.cat --data digits --epochs 30 --seed 0 \
	  --out $(DEMO)/digits_cnn --metrics-out $(DEMO)/metrics.json
	$(VENV)/bin/catnet verify examples/c4_digits.cat
	@echo "figure: $(DEMO)/digits_cnn.svg  checkpoints and curves.png: $(DEMO)/digits_cnn  metrics: $(DEMO)/metrics.json"

test: test-deps $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) bench/check_scaling.py
	$(PY) bench/check_startup.py
	$(PY) bench/lsp_recheck.py
	$(PY) bench/shape_scaling.py
	$(PY) bench/bench_render.py
	$(PY) bench/bench_tikz.py
	$(PY) bench/bench_lower.py
	$(PY) bench/symmetry_train_step.py
	$(PY) bench/sharded_step.py
	$(PY) bench/train_throughput.py
	$(PY) bench/hessian_lanczos.py
	$(PY) bench/analyze_10k.py
	$(PY) bench/hostile.py
	$(PY) bench/fuzz.py --count 10000

clean:
	rm -rf $(VENV) build *.egg-info
