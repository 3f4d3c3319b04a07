"""The architecture zoo: published models written from their papers.

Each file in ``examples/zoo/`` cites its paper and states its trainable
parameter count in its header.  ``catnet summary``'s total and the compiled
model's real ``nnx.Param`` count must both equal that figure exactly (the
real count is taken from ``nnx.eval_shape``, so no weight is drawn); the big
models run one forward pass in tests marked slow.
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import catnet
from catnet.cli import main
from conftest import ROOT

ZOO = ROOT / "examples" / "zoo"

#: file -> (the count its header states, an input batch for one forward pass, the output shape, slow)
MODELS = {
    "gpt2": (124_439_808, lambda: np.arange(8, dtype=np.int32)[None] % 50257, (1, 8, 50257), True),
    "resnet18": (11_689_512, lambda: np.ones((1, 224, 224, 3), np.float32), (1, 1000), True),
    "mlp_mixer": (59_880_472, lambda: np.ones((1, 224, 224, 3), np.float32), (1, 1000), True),
    "lstm_lm": (19_775_200, lambda: np.arange(6, dtype=np.int32)[None], (1, 6, 10000), True),
    "vae": (815_824, lambda: np.full((2, 784), 0.5, np.float32), (2, 784), False),
    "unet": (31_030_658, lambda: np.ones((1, 572, 572, 1), np.float32), (1, 388, 388, 2), True),
}


def _stated(name: str) -> int:
    """The parameter count written in the file's header comment."""
    header = []
    for line in (ZOO / f"{name}.cat").read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        header.append(line)
    text = " ".join(header)
    counts = re.findall(r"(\d{1,3}(?:,\d{3})+) (?:trainable )?parameters|(?:count|parameters)(?: of this architecture)? is (\d{1,3}(?:,\d{3})+)|Trainable parameters: (\d{1,3}(?:,\d{3})+)", text)
    found = {int(x.replace(",", "")) for group in counts for x in group if x}
    assert len(found) == 1, f"{name}.cat should state one exact count in its header, found {sorted(found)}"
    return found.pop()


def test_every_zoo_file_is_listed() -> None:
    assert sorted(p.stem for p in ZOO.glob("*.cat")) == sorted(MODELS)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_header_cites_paper_and_count(name: str) -> None:
    assert _stated(name) == MODELS[name][0]
    head = (ZOO / f"{name}.cat").read_text(encoding="utf-8")[:600]
    assert re.search(r"\((?:[A-Z]+ )?\d{4}\)|\d{4}\)", head), "the header cites the paper and its year"


@pytest.mark.parametrize("name", sorted(MODELS))
def test_summary_total_is_the_published_count(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["summary", str(ZOO / f"{name}.cat")]) == 0
    total = capsys.readouterr().out.strip().splitlines()[-1].split()
    assert total[0] == "total" and int(total[-1].replace(",", "")) == MODELS[name][0]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_compiled_param_count_is_the_published_count(name: str) -> None:
    model = nnx.eval_shape(lambda: catnet.compile(str(ZOO / f"{name}.cat"), rngs=nnx.Rngs(0)))
    leaves = jax.tree.leaves(nnx.state(model, nnx.Param))
    assert sum(int(np.prod(x.shape)) for x in leaves) == MODELS[name][0]


def _forward(name: str) -> None:
    count, make_input, shape, _ = MODELS[name]
    model = catnet.compile(str(ZOO / f"{name}.cat"), rngs=nnx.Rngs(0))
    model.eval()
    y = model(make_input())
    assert y.shape == shape
    assert bool(jnp.all(jnp.isfinite(y)))


@pytest.mark.parametrize("name", [n for n, m in sorted(MODELS.items()) if not m[3]])
def test_forward(name: str) -> None:
    _forward(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n, m in sorted(MODELS.items()) if m[3]])
def test_forward_full_size(name: str) -> None:
    _forward(name)
