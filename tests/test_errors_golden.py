"""Golden diagnostics: each tests/golden/errors/NAME.cat fails with NAME.err."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from catnet import CatnetError, load
from catnet.errors import CODES

from conftest import ROOT, golden

HERE = Path(__file__).resolve().parent
CASES = sorted((HERE / "golden" / "errors").glob("*.cat"))


def _diagnostic(case: Path) -> str:
    rel = os.path.relpath(case, HERE)
    cwd = os.getcwd()
    os.chdir(HERE)
    try:
        with pytest.raises(CatnetError) as info:
            load(rel)
    finally:
        os.chdir(cwd)
    return info.value.render() + "\n"


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 30


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_error_golden(case: Path) -> None:
    text = _diagnostic(case)
    golden(case.with_suffix(".err"), text)
    code = text.split("error[", 1)[1][:5]
    assert code in CODES
    # Every diagnostic is located: file:line:col (an import cycle is
    # reported at the import that closes it, which may be in another file).
    assert text.startswith(os.path.join("golden", "errors", "")), text
    assert text.split(":", 3)[1].isdigit() and text.split(":", 3)[2].isdigit()


@pytest.mark.parametrize("name", ["compose_mismatch", "syntax_unclosed", "not_utf8", "empty", "import_cycle_a"])
def test_cli_exit_code_and_no_traceback(name: str) -> None:
    case = HERE / "golden" / "errors" / f"{name}.cat"
    proc = subprocess.run(
        [sys.executable, "-m", "catnet", "check", str(case)], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert proc.returncode == 1
    assert "error[E" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_every_code_is_documented() -> None:
    doc = (ROOT / "docs" / "errors.md").read_text(encoding="utf-8")
    for code in CODES:
        assert f"## {code}" in doc, f"{code} is missing from docs/errors.md"
