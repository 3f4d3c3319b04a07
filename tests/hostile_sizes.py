"""Hostile cases for the checker's bounds: sizes, widths, chains, expansion, nesting.

Each case writes a generated file; the big ones are built here rather than
committed.  See ``tests/hostile.py`` for what every case must keep.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from hostile import Case


def _file(text: str, *args: str, command: str = "check") -> Callable[[Path], list[str]]:
    def setup(d: Path) -> list[str]:
        (d / "x.cat").write_text(text, encoding="utf-8")
        return [command, "x.cat", *args]

    return setup


def _chain(n: int, reverse: bool = False, generic: bool = False) -> str:
    """``n`` definitions, each using the previous one (listed last-first if ``reverse``)."""
    dims, ty = ("[d]", "R[d]") if generic else ("", "A")
    lines = [f"morphism f{i}{dims} : {ty} -> {ty} = f{i - 1} ; relu" for i in range(1, n)]
    if reverse:
        lines.reverse()
    return "\n".join(["object A = R[4]", f"morphism f0{dims} : {ty} -> {ty} = relu", *lines, f"main f{n - 1}"]) + "\n"


def _product(n: int) -> str:
    wires = " ⊗ ".join(["A"] * n)
    return f"object A = R[4]\nmorphism f : {wires} -> {wires} = {' ⊗ '.join(['relu'] * n)}\n"


def _pairing(n: int) -> str:
    return f"object A = R[4]\nmorphism f : A -> {' ⊗ '.join(['A'] * min(n, 20_000))} = <{', '.join(['relu'] * n)}>\n"


# Sizes that multiply out: each factor has five terms, three factors have
# 35 terms, and the next would have hundreds (348 bytes).
_POLY = (
    "morphism f[a, b, c, d] : R[(a + b + c + d + 1) * (a + b + c + d + 1) * (a + b + c + d + 1)"
    " * (a + b + c + d + 1) * (a + b + c + d + 1) * (a + b + c + d + 1)] -> R[4] = dense\n"
    "morphism g[a, b, c, d] : R[a + b + c + d] -> R[4] = dense\n"
)

# Sizes that multiply out through instantiation: each definition squares
# the size of the one before, until the degree passes the limit.
_SQUARES = """morphism s0[n] : R[n] -> R[n * n] = dense
morphism s1[n] : R[n] -> R[n * n * n * n] = s0[n] ; s0[n * n]
morphism s2[n] : R[n] -> R[4] = s1[n] ; s1[n * n * n * n] ; dense
"""

# Each definition uses the previous one twice: 2**40 boxes when opened.
_DOUBLING = "\n".join(
    ["object A = R[4]", "morphism f0 : A -> A = relu"]
    + [f"morphism f{i} : A -> A = f{i - 1} ; f{i - 1}" for i in range(1, 41)]
) + "\n"


# 100,000 lines whose first error is on line 2: found without reading the rest.
_LONG = "\n".join(["object A = R[4]", "morphism g : A -> A = rleu"]
                  + [f"morphism f{i} : A -> A = relu" for i in range(100_000)]) + "\n"


CASES = [
    Case("sizes-first-error-of-100k-lines", _file(_LONG), "E0201", contains=("x.cat:2:",)),
    Case("sizes-polynomial-blowup", _file(_POLY), "E0309", contains=("x.cat:1:",)),
    Case("sizes-squares-through-instances", _file(_SQUARES), "E0309"),
    Case("sizes-chain-10k-definitions", _file(_chain(10_000)), None, status=0),
    Case("sizes-chain-10k-definitions-reversed", _file(_chain(10_000, reverse=True)), None, status=0),
    Case("sizes-chain-3k-generic-definitions", _file(_chain(3_000, generic=True)), None, status=0),
    Case("sizes-chain-of-10k-objects", _file(
        "\n".join([f"object A{i} = A{i - 1}" for i in range(9_999, 0, -1)] + ["object A0 = R[4]", "morphism f : A9999 -> A0 = relu"]) + "\n"),
        None, status=0),
    Case("sizes-definition-cycle-10k", _file(
        "object A = R[4]\n" + "\n".join(f"morphism f{i} : A -> A = f{(i + 1) % 10_000}" for i in range(10_000)) + "\n"),
        "E0211"),
    Case("sizes-product-10k", _file(_product(10_000)), None, status=0),
    Case("sizes-pairing-10k", _file(_pairing(10_000)), None, status=0),
    Case("sizes-pairing-100k", _file(_pairing(100_000)), "E0310"),
    Case("sizes-doubling-definitions", _file(_DOUBLING), "E0310", contains=("x.cat:",)),
    Case("sizes-summary-of-10k-chain", _file(_chain(10_000), command="summary"), None, status=0),
    Case("sizes-render-of-10k-chain", _file(_chain(10_000), "--format", "dot", command="render"), None, status=0),
    Case("sizes-train-of-10k-chain", _file(_chain(10_000), "--data", "digits", command="train"), "E0106"),
]
