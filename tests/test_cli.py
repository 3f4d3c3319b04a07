"""The command line: exit codes, output, help, fmt --write/--check."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from catnet.cli import main

from conftest import EXAMPLES, ROOT


def test_check_lists_types(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(ROOT / "examples" / "digits_mlp.cat")]) == 0
    out = capsys.readouterr().out
    assert "mlp     : Image -> Logits   (R[64] -> R[10])  [main]" in out
    assert "encoder : Image -> Hidden   (R[64] -> R[128])" in out


def test_check_all_examples(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", *map(str, EXAMPLES)]) == 0
    out = capsys.readouterr().out
    assert out.count(": ok") == len(EXAMPLES)


def test_check_failure_exit_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.cat"
    bad.write_text("morphism f : R[4] -> R[4] = rleu\n")
    good = ROOT / "examples" / "digits_mlp.cat"
    assert main(["check", str(good), str(bad)]) == 1
    err = capsys.readouterr().err
    assert "error[E0201]" in err and "1 of 2 files failed" in err


def test_fmt_check_and_write(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "x.cat"
    f.write_text("object V=R[4]\nmorphism f:V->V=relu;tanh\n")
    assert main(["fmt", "--check", str(f)]) == 1
    assert main(["fmt", str(f)]) == 0
    assert capsys.readouterr().out == "object V = R[4]\nmorphism f : V -> V = relu ; tanh\n"
    assert main(["fmt", "--write", str(f)]) == 0
    assert f.read_text() == "object V = R[4]\nmorphism f : V -> V = relu ; tanh\n"
    assert main(["fmt", "--check", str(f)]) == 0
    assert not list(tmp_path.glob(".*tmp"))


def test_fmt_bad_file_keeps_it(tmp_path: Path) -> None:
    f = tmp_path / "x.cat"
    f.write_text("morphism f : = relu\n")
    assert main(["fmt", "--write", str(f)]) == 1
    assert f.read_text() == "morphism f : = relu\n"


def test_help_and_unknown_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for cmd in ("check", "fmt", "summary", "render", "train"):
        assert cmd in out
    with pytest.raises(SystemExit) as info:
        main(["frobnicate"])
    assert info.value.code == 2


def test_python_dash_m() -> None:
    proc = subprocess.run([sys.executable, "-m", "catnet", "check", "-q", str(ROOT / "examples" / "residual.cat")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout == ""


def test_missing_file_is_a_diagnostic(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "does/not/exist.cat"]) == 1
    assert "error[E0001]: no such file" in capsys.readouterr().err


def test_every_command_names_its_definition_the_same_way() -> None:
    """``--entry``, ``--morphism`` and ``-m`` are one option, ``args.entry``, wherever a command takes a definition."""
    import argparse
    import importlib

    from catnet.cli import COMMANDS

    takes = []
    for name, (module_name, _) in COMMANDS.items():
        parser = argparse.ArgumentParser()
        importlib.import_module(module_name).configure(parser)
        chosen = [a for a in parser._actions if {"--entry", "--morphism", "-m"} & set(a.option_strings)]
        if not chosen:
            continue
        takes.append(name)
        (action,) = chosen
        assert set(action.option_strings) == {"--entry", "--morphism", "-m"} and action.dest == "entry", name
    assert {"render", "summary", "train", "eval", "predict", "export", "analyze", "verify", "sample"} <= set(takes)
    args = argparse.ArgumentParser()
    importlib.import_module(COMMANDS["render"][0]).configure(args)
    assert args.parse_args(["x.cat", "-m", "net"]).entry == args.parse_args(["x.cat", "--entry", "net"]).entry == "net"
