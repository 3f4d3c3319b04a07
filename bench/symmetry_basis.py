"""Time the equivariant basis solve: ``64·regular(D4) → 64·regular(D4)``, cold and from the cache.

Each measurement runs in a fresh process (so nothing is in memory) with
its own cache folder: *cold* solves with an empty cache, *cache* reads what
the cold run wrote.  Targets (issue 10): under 1 s cold, under 50 ms from
the cache.  The time printed is of the solve alone, after the imports.

    python bench/symmetry_basis.py [--copies 64] [--group D4] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_ONE = """
import time
from catnet.symmetry import basis, groups, reps
g = groups.parse({group!r})
r = reps.regular(g) * {copies}
t = time.perf_counter()
b = basis.solve(r, r)
print(time.perf_counter() - t, b.size)
"""


def _run(group: str, copies: int, cache: str) -> tuple[float, int]:
    env = dict(os.environ, CATNET_CACHE=cache, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-c", _ONE.format(group=group, copies=copies)], env=env,
                         capture_output=True, text=True, check=True).stdout.split()
    return float(out[0]), int(out[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--group", default="D4")
    parser.add_argument("--copies", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    cold, cached = [], []
    size = 0
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory(prefix="catnet-bases-") as cache:
            seconds, size = _run(args.group, args.copies, cache)
            cold.append(seconds)
            cached.append(_run(args.group, args.copies, cache)[0])
    name = f"{args.copies}·regular({args.group}) → {args.copies}·regular({args.group})"
    print(f"{name}: {size:,} free parameters")
    print(f"cold   median {statistics.median(cold) * 1e3:8.2f} ms   (target < 1000 ms)")
    print(f"cache  median {statistics.median(cached) * 1e3:8.2f} ms   (target <   50 ms)")


if __name__ == "__main__":
    main()
