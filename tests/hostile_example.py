"""Hostile-case smoke: a plain bad file (kept as the pattern for the other modules)."""

from __future__ import annotations

from pathlib import Path

from hostile import Case


def _unknown_name(d: Path) -> list[str]:
    (d / "bad.cat").write_text("object A = R[4]\nmorphism f : A -> A = rleu\n")
    return ["check", "bad.cat"]


CASES = [Case("unknown-name", _unknown_name, "E0201", contains=("bad.cat:2:",))]
