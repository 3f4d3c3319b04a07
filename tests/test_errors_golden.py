"""Golden diagnostics: each tests/golden/errors/NAME.cat fails with NAME.err."""

from __future__ import annotations

import json
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


def _error(case: Path) -> CatnetError:
    rel = os.path.relpath(case, HERE)
    cwd = os.getcwd()
    os.chdir(HERE)
    try:
        with pytest.raises(CatnetError) as info:
            load(rel)
    finally:
        os.chdir(cwd)
    return info.value


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 30


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_error_golden(case: Path) -> None:
    error = _error(case)
    text = error.render() + "\n"
    golden(case.with_suffix(".err"), text)
    # The same diagnostic as data (catnet check --format json), in its own golden file.
    data = error.to_json(os.path.relpath(case, HERE))
    golden(case.with_suffix(".json"), json.dumps(data, ensure_ascii=False, indent=2) + "\n")
    assert list(data) == ["file", "range", "severity", "code", "title", "message", "notes", "help"]
    assert data["code"] == text.split("error[", 1)[1][:5] and data["title"] == CODES[data["code"]]
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


def test_check_writes_json_for_editors() -> None:
    """``catnet check --format json``: one document, every file with its diagnostics, exit 1 if any failed."""
    bad = HERE / "golden" / "errors" / "compose_mismatch.cat"
    proc = subprocess.run(
        [sys.executable, "-m", "catnet", "check", "--format", "json", "examples/residual.cat", str(bad)],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )
    assert proc.returncode == 1 and proc.stderr == ""
    doc = json.loads(proc.stdout)
    assert doc["schema"] == "catnet-check/1"
    good, failed = doc["files"]
    assert good["ok"] and good["diagnostics"] == [] and good["entry"] == "resnet"
    assert {"name": "resnet", "type": "Image -> Logits"} in good["definitions"]
    (diag,) = failed["diagnostics"]
    assert not failed["ok"] and diag["code"] == "E0301" and diag["file"] == str(bad)
    assert diag["range"]["start"] == {"line": 8, "column": 34}
    assert diag["range"]["end"]["column"] == 48


def test_every_code_is_documented() -> None:
    doc = (ROOT / "docs" / "errors.md").read_text(encoding="utf-8")
    for code in CODES:
        assert f"## {code}" in doc, f"{code} is missing from docs/errors.md"
