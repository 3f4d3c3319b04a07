"""Every hostile case ends as promised: the expected code, no traceback, bounded time and memory.

The cases are data (``tests/hostile_*.py``); see ``tests/hostile.py``.  The
time bound here is a hang guard with slack for noisy machines (the 2 s
figure itself is measured by ``bench/hostile.py``); the memory bound is
the real one, 1 GB of peak resident memory.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hostile import MEGABYTES, all_cases, problems, run_catnet

CASES = all_cases()

#: A hang guard, not a speed target: the bench measures the 2 s bound.
GUARD_SECONDS = 20.0


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_case(case, tmp_path: Path) -> None:  # noqa: ANN001
    args = case.setup(tmp_path)
    result = run_catnet(args, tmp_path, timeout=GUARD_SECONDS * 3, env=case.env)
    found = problems(case, result, GUARD_SECONDS, MEGABYTES)
    assert not found, f"{case.name}: {'; '.join(found)}\n--- stderr ---\n{result.stderr[-3000:]}"
