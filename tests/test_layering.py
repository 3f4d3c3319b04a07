"""Data flows one way: the IR imports no stage that comes after it."""

from __future__ import annotations

import ast

from conftest import ROOT

LATER = {"pretty", "render", "fmt", "lower", "summary", "train", "cli", "check", "budget"}


def test_the_ir_imports_no_later_stage() -> None:
    tree = ast.parse((ROOT / "catnet" / "ir.py").read_text(encoding="utf-8"))
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level >= 1:
            imported.update(alias.name for alias in node.names) if not node.module else imported.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[-1] for alias in node.names)
    assert not imported & LATER, f"catnet/ir.py imports {sorted(imported & LATER)}"


def test_diagrams_still_show_themselves() -> None:
    from catnet import loads

    d = loads("morphism f : R[4] -> R[2] = dense ; relu").diagram("f")
    assert str(d) == "(dense(features=2) : R[4] -> R[2]) ; (relu : R[2] -> R[2])"
