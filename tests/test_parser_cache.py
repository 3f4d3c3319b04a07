"""lark is loaded only when needed, and its tables come from the cache on disk (``$CATNET_CACHE/parser``) when they can."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import ROOT

# Texts the fast parser declines (a keyword as a name, a syntax error), so lark's tables are needed.
PROBE = ("from catnet import syntax\n"
         "print(syntax.parse('morphism in : R[1] -> R[1] = id').decls[0].name)\n"
         "try:\n"
         "    syntax.parse('morphism f : R[1] -> = id')\n"
         "except Exception as e:\n"
         "    print(type(e).__name__, e.code)\n")


def run(cache: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, CATNET_CACHE=cache, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120, check=False)


def test_tables_are_stored_once_and_read_back(tmp_path):
    first = run(str(tmp_path))
    assert first.returncode == 0 and first.stderr == "", first.stderr
    (entry,) = (tmp_path / "parser").iterdir()
    assert entry.suffix == ".pickle" and entry.stat().st_size > 1000
    stamp = entry.stat().st_mtime_ns
    second = run(str(tmp_path))
    assert second.stdout == first.stdout and second.stderr == ""
    assert [p.name for p in (tmp_path / "parser").iterdir()] == [entry.name]  # read, not written again
    assert entry.stat().st_mtime_ns == stamp
    assert first.stdout == "in\nCatnetError E0101\n"


def test_a_damaged_or_unwritable_cache_is_built_around(tmp_path):
    first = run(str(tmp_path))
    (entry,) = (tmp_path / "parser").iterdir()
    entry.write_bytes(b"not a pickle")
    again = run(str(tmp_path))
    assert again.stdout == first.stdout and again.stderr == ""
    assert entry.stat().st_size > 1000  # built and stored again
    blocked = tmp_path / "file"
    blocked.write_text("a file where the cache folder would be")
    plain = run(str(blocked))
    assert plain.stdout == first.stdout and plain.stderr == ""


def test_lark_is_imported_only_for_what_the_fast_parser_declines():
    probe = ("import sys\n"
             "from catnet import check\n"
             "check.check_file('examples/transformer.cat')\n"
             "print('lark' in sys.modules)\n"
             "from catnet import syntax\n"
             "syntax.parse('morphism in : R[1] -> R[1] = id')\n"
             "print('lark' in sys.modules)\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", probe], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert done.stdout == "False\nTrue\n", done.stderr
