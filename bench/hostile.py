"""Time and peak memory of every hostile case, against the 2 s / 1 GB bounds.

Runs each case of ``tests/hostile_*.py`` in a fresh ``catnet`` process (as
``tests/test_hostile.py`` does) and prints a table: the case, its exit
status and code, wall seconds, peak resident megabytes, and what broke a
promise.  Exit status 1 if any case is over a bound or misbehaves.
Run: `python bench/hostile.py [NAME_SUBSTRING ...]`.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from hostile import MEGABYTES, SECONDS, all_cases, problems, run_catnet  # noqa: E402


def main(argv: list[str]) -> int:
    cases = [c for c in all_cases() if not argv or any(a in c.name for a in argv)]
    bad = 0
    slowest = (0.0, "")
    biggest = (0.0, "")
    print(f"{'case':<44} {'exit':>4} {'code':>6} {'seconds':>8} {'MB':>7}  problems")
    for case in cases:
        with tempfile.TemporaryDirectory() as tmp:
            args = case.setup(Path(tmp))
            result = run_catnet(args, Path(tmp), timeout=60, env=case.env)
        found = problems(case, result, SECONDS, MEGABYTES)
        bad += bool(found)
        slowest = max(slowest, (result.seconds, case.name))
        biggest = max(biggest, (result.megabytes, case.name))
        print(f"{case.name:<44} {result.status:>4} {case.code or '-':>6} {result.seconds:>8.2f} {result.megabytes:>7.0f}  {'; '.join(found)}")
    print(f"\n{len(cases)} cases, {bad} over a bound or misbehaving; slowest {slowest[1]} {slowest[0]:.2f} s; "
          f"largest {biggest[1]} {biggest[0]:.0f} MB")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
