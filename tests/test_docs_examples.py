"""Every example in the language reference checks (or fails as it says).

A fenced block in ``docs/language.md`` (or another page of :data:`PAGES`) whose info string is ``cat`` must be
accepted by ``catnet check``; ``cat error CODE`` must be refused with that
code; ``cat file=PATH`` is saved under ``PATH`` (for the examples that
import it) and checked too.  Other blocks (``console``, ``text``, ``lark``,
``python``) are not ``.cat`` files.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import catnet
from catnet.errors import CatnetError
from conftest import ROOT

PAGES = ("language.md", "symmetry.md")
_FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```", re.S | re.M)


def _examples(page: str) -> list[tuple[int, str, str]]:
    text = (ROOT / "docs" / page).read_text(encoding="utf-8")
    out = []
    for m in _FENCE.finditer(text):
        info = m.group(1).strip()
        if info.split(" ")[0] == "cat":
            out.append((text.count("\n", 0, m.start()) + 1, info, m.group(2)))
    return out


def _cases() -> list[tuple[str, list[tuple[int, str, str]]]]:
    return [(page, _examples(page)) for page in PAGES]


@pytest.mark.parametrize("page, examples", _cases(), ids=PAGES)
def test_every_example_checks(page: str, examples: list[tuple[int, str, str]], tmp_path: Path) -> None:
    assert len(examples) > (20 if page == "language.md" else 2), "the fences were not found"
    failures = []
    for i, (line, info, body) in enumerate(examples):
        words = info.split()
        named = next((w[5:] for w in words if w.startswith("file=")), None)
        path = tmp_path / (named or f"example_{i}.cat")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body, encoding="utf-8")
        expected = words[2] if len(words) >= 3 and words[1] == "error" else None
        try:
            catnet.load(str(path))
        except CatnetError as e:
            if e.code != expected:
                failures.append(f"{page}:{line}: {e.code}: {e.message}")
            continue
        if expected is not None:
            failures.append(f"{page}:{line}: expected {expected}, but it checks")
    assert not failures, "\n".join(failures)
