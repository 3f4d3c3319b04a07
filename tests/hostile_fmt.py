"""Hostile cases for ``catnet fmt``: long chains and ``--write`` on files that must keep what they are.

The chains are refused by the parser (E0106) before the formatter sees
them; ``fmt`` itself prints such ASTs without recursion (see
``tests/test_fmt.py``).  ``--write`` through a symbolic link and on a file
with its own mode succeed here (their effect on the file is asserted in
``tests/test_fmt.py``); a read-only file is refused and left unchanged.
"""

from __future__ import annotations

import os
from pathlib import Path

from hostile import Case

N = 1000
MESSY = "object   A=R[ 4 ]\nmorphism f:A->A=relu;tanh\n"


def _write(d: Path, text: str) -> None:
    (d / "x.cat").write_text(text, encoding="utf-8")


def _size_sum(d: Path) -> list[str]:
    _write(d, "object A = R[" + " + ".join(["1"] * N) + "]\n")
    return ["fmt", "x.cat"]


def _repeat_chain(d: Path) -> list[str]:
    _write(d, "morphism f : R[4] -> R[4] = " + "repeat 2 " * N + "relu\n")
    return ["fmt", "x.cat"]


def _wire_sum(d: Path) -> list[str]:
    _write(d, "morphism f(x : R[4]) -> R[4] {\n  return " + " + ".join(["x"] * N) + "\n}\n")
    return ["fmt", "x.cat"]


def _argument_sum(d: Path) -> list[str]:
    _write(d, "morphism f : R[4] -> R[4] = dropout(" + " + ".join(["1"] * N) + ")\n")
    return ["fmt", "x.cat"]


def _write_symlink(d: Path) -> list[str]:
    (d / "real").mkdir()
    (d / "real" / "net.cat").write_text(MESSY, encoding="utf-8")
    os.symlink(Path("real") / "net.cat", d / "link.cat")
    return ["fmt", "--write", "link.cat"]


def _write_mode(d: Path) -> list[str]:
    _write(d, MESSY)
    os.chmod(d / "x.cat", 0o640)
    return ["fmt", "--write", "x.cat"]


def _write_read_only(d: Path) -> list[str]:
    _write(d, MESSY)
    os.chmod(d / "x.cat", 0o444)
    return ["fmt", "--write", "x.cat"]


def _long_file_early_error(d: Path) -> list[str]:
    # Found by bench/fuzz.py (seed 2): a 900 KB file whose error is on line 2
    # took 2.2 s to report, because the whole file was parsed first.
    nested = "relu"
    for _ in range(101):
        nested = f"({nested} : A -> A)"  # 101 nested ascriptions: one level more than the parser allows
    lines = ["object A = R[4]", f"morphism f : A -> A = {nested}"]
    lines += [f"morphism g{i} : A -> A = relu ; (tanh : A -> A) ; relu" for i in range(20_000)]
    _write(d, "\n".join(lines) + "\n")
    return ["fmt", "x.cat"]


CASES = [
    Case("fmt-first-error-of-a-long-file", _long_file_early_error, "E0106", contains=("x.cat:2:",)),
    Case("fmt-size-sum-1000", _size_sum, "E0106", contains=("x.cat:1:",)),
    Case("fmt-repeat-chain-1000", _repeat_chain, "E0106", contains=("x.cat:1:",)),
    Case("fmt-wire-sum-1000", _wire_sum, "E0106", contains=("x.cat:2:",)),
    Case("fmt-argument-sum-1000", _argument_sum, "E0106", contains=("x.cat:1:",)),
    Case("fmt-write-through-symlink", _write_symlink, None, status=0),
    Case("fmt-write-keeps-mode", _write_mode, None, status=0),
    Case("fmt-write-read-only-file", _write_read_only, "E0001", contains=("x.cat:1:1", "read-only")),
]
