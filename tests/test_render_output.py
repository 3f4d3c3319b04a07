"""`catnet render` end to end: every example in every format, Graphviz, LaTeX, no JAX."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import catnet
from catnet.render.output import DRAW, dot_program

from conftest import EXAMPLES, ROOT

IDS = [p.stem for p in EXAMPLES]
HAVE_DOT = dot_program() is not None
needs_dot = pytest.mark.skipif(not HAVE_DOT, reason="Graphviz's `dot` is not installed (Debian package graphviz)")
PDFLATEX = shutil.which("pdflatex")
needs_latex = pytest.mark.skipif(
    PDFLATEX is None, reason="pdflatex is not installed (Debian packages texlive-latex-base, texlive-pictures)"
)
MAGIC = {"svg": b"<?xml", "png": b"\x89PNG", "pdf": b"%PDF", "dot": b"digraph", "tex": b"\\documentclass"}


def _run(code: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, timeout=timeout)


@needs_dot
def test_every_example_in_every_format_without_jax(tmp_path: Path) -> None:
    # One process draws everything through the CLI, then proves JAX never loaded.
    jobs = []
    for path in EXAMPLES:
        rel = str(path)
        for fmt in MAGIC:
            jobs.append([rel, "-o", str(tmp_path / f"{path.stem}.{fmt}")])
        jobs.append([rel, "--params", "--direction", "TB", "--shapes", "-o", str(tmp_path / f"{path.stem}.params.svg")])
    code = (
        "import json, sys\n"
        "from catnet.cli import main\n"
        f"jobs = json.loads({json.dumps(json.dumps(jobs))})\n"
        "codes = [main(['render', *job]) for job in jobs]\n"
        "jax = sorted(m for m in sys.modules if m == 'jax' or m.startswith(('jax.', 'jaxlib', 'flax')))\n"
        "print(json.dumps({'codes': codes, 'jax': jax}))\n"
    )
    proc = _run(code)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["codes"] == [0] * len(jobs)
    assert result["jax"] == []
    for path in EXAMPLES:
        for fmt, magic in MAGIC.items():
            data = (tmp_path / f"{path.stem}.{fmt}").read_bytes()
            assert data.startswith(magic), (path.stem, fmt)
        assert b"<svg" in (tmp_path / f"{path.stem}.params.svg").read_bytes()


@needs_dot
@pytest.mark.parametrize("path", EXAMPLES, ids=IDS)
def test_graphviz_takes_the_dot_without_complaint(path: Path) -> None:
    rel = str(path)
    for kwargs in ({}, {"params": True}, {"direction": "TB", "depth": 1}):
        text = catnet.render(rel, format="dot", **kwargs)
        proc = subprocess.run(["dot", *DRAW, "-Tsvg"], input=text, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0 and proc.stderr == "", proc.stderr


def test_cli_prints_dot_and_tikz_and_reports_errors() -> None:
    cli = [sys.executable, "-m", "catnet", "render"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    ok = subprocess.run([*cli, "examples/digits_mlp.cat", "--depth", "0"], capture_output=True, text=True, cwd=ROOT, env=env, timeout=60)
    assert ok.returncode == 0 and ok.stdout.startswith('digraph "mlp" {')
    tex = subprocess.run([*cli, "examples/digits_mlp.cat", "--format", "tex", "--snippet"], capture_output=True, text=True, cwd=ROOT, env=env, timeout=60)
    assert tex.returncode == 0 and "\\begin{tikzpicture}" in tex.stdout and "\\documentclass" not in tex.stdout
    for args, code in [
        (["examples/missing.cat", "-o", "x.svg"], "E0001"),
        (["examples/digits_mlp.cat", "-o", "x.jpg"], "E0208"),
        (["examples/digits_mlp.cat", "--morphism", "nope"], "E0210"),
        (["examples/digits_mlp.cat", "--format", "png"], "E0208"),
    ]:
        bad = subprocess.run([*cli, *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=60)
        assert bad.returncode == 1, args
        assert f"error[{code}]" in bad.stderr and "Traceback" not in bad.stderr, bad.stderr
    usage = subprocess.run([*cli, "examples/digits_mlp.cat", "--depth", "-2"], capture_output=True, text=True, cwd=ROOT, env=env, timeout=60)
    assert usage.returncode == 2 and "Traceback" not in usage.stderr


def test_missing_graphviz_is_an_error_not_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    from catnet.render import output

    monkeypatch.setattr(output, "dot_program", lambda: None)
    with pytest.raises(catnet.CatnetError) as info:
        catnet.render(str(ROOT / "examples" / "digits_mlp.cat"), format="svg")
    assert "Graphviz" in info.value.message and info.value.help


@needs_dot
def test_diagrams_show_themselves_as_svg_in_notebooks() -> None:
    d = catnet.load(str(ROOT / "examples" / "residual.cat")).diagram()
    svg = d._repr_svg_()
    assert svg.startswith("<?xml") and "<svg" in svg and "layernorm" in svg


def _compile(tex: str, workdir: Path, name: str) -> Path:
    src = workdir / f"{name}.tex"
    src.write_text(tex, encoding="utf-8")
    proc = subprocess.run(
        [str(PDFLATEX), "-interaction=nonstopmode", "-halt-on-error", src.name],
        capture_output=True, text=True, cwd=workdir, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-2000:]
    pdf = workdir / f"{name}.pdf"
    assert pdf.read_bytes().startswith(b"%PDF")
    return pdf


def _has_standalone() -> bool:
    kpse = shutil.which("kpsewhich")
    if kpse is None:
        return False
    return subprocess.run([kpse, "standalone.cls"], capture_output=True, text=True).stdout.strip() != ""


@needs_latex
@pytest.mark.parametrize("path", EXAMPLES, ids=IDS)
def test_tikz_of_every_example_compiles(path: Path, tmp_path: Path) -> None:
    rel = str(path)
    for suffix, kwargs in (("", {}), ("-params", {"params": True, "direction": "TB", "shapes": True})):
        if _has_standalone():
            tex = catnet.render(rel, format="tex", **kwargs)
        else:
            # Without the standalone class (Debian's texlive-latex-extra),
            # the same picture is compiled inside a plain article.
            snippet = catnet.render(rel, format="tex", standalone=False, **kwargs)
            tex = "\\documentclass{article}\n\\usepackage{tikz}\n\\pagestyle{empty}\n\\begin{document}\n" + snippet + "\\end{document}\n"
        _compile(tex, tmp_path, path.stem + suffix)


@needs_latex
def test_tikz_snippet_inputs_into_a_paper(tmp_path: Path) -> None:
    catnet.render(str(ROOT / "examples" / "siamese.cat"), tmp_path / "figure.tex", params=True, standalone=False)
    paper = (
        "\\documentclass{article}\n\\usepackage{tikz}\n\\begin{document}\n"
        "\\begin{figure}\\centering\\resizebox{\\linewidth}{!}{\\input{figure.tex}}"
        "\\caption{A siamese network.}\\end{figure}\n\\end{document}\n"
    )
    _compile(paper, tmp_path, "paper")
