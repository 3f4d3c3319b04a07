"""How long a fresh ``catnet check`` of an example takes, against Python doing nothing.

Runs ``python -c pass`` and ``python -m catnet check FILE`` in fresh
processes, interleaved, and prints the medians.  Before timing it compiles
catnet's bytecode (``compileall``, as ``pip install`` does; an editable
install under ``PYTHONDONTWRITEBYTECODE`` would otherwise compile every
module on every run) and checks each file once, so the parser's tables are
in the cache (``$CATNET_CACHE/parser``) as they are after the first run.

Run: ``python bench/check_startup.py [FILE ...]`` (default: every example);
target: median under 0.2 s.
"""

from __future__ import annotations

import compileall
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = 15


def timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT, check=False)
    return time.perf_counter() - t0


def main() -> None:
    files = sys.argv[1:] or sorted(str(p.relative_to(ROOT)) for p in (ROOT / "examples").glob("*.cat"))
    compileall.compile_dir(str(ROOT / "catnet"), quiet=1)
    python = sys.executable
    for f in files:
        subprocess.run([python, "-m", "catnet", "check", f], stdout=subprocess.DEVNULL, cwd=ROOT, check=True)
    nothing, checks = [], {f: [] for f in files}
    for _ in range(RUNS):
        nothing.append(timed([python, "-c", "pass"]))
        for f in files:
            checks[f].append(timed([python, "-m", "catnet", "check", f]))
    base = statistics.median(nothing)
    print(f"python -c pass: {base * 1000:.0f} ms (median of {RUNS})")
    worst = 0.0
    for f, ts in checks.items():
        m = statistics.median(ts)
        worst = max(worst, m)
        print(f"catnet check {f:<28} {m * 1000:5.0f} ms  ({m / base:.1f}× python -c pass)")
    print(f"slowest median: {worst * 1000:.0f} ms; under 0.2 s: {'yes' if worst < 0.2 else 'NO'}")


if __name__ == "__main__":
    main()
