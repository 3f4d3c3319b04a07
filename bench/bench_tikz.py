"""Benchmark: TikZ output of large diagrams against DOT output of the same file.

Acceptance 3 of issue 7: TikZ output of a 10,000-box chain within 3× the
DOT time.  For each size N (1,000 and 10,000 boxes) and each shape of file,

- ``chain``: one definition ``relu ; relu ; …`` of N boxes, and
- ``defs``: N/10 definitions of 10 boxes each, composed by an entry,

it times a fresh ``python -m catnet render FILE -o out.dot`` and
``-o out.tex`` (what a user waits for: start, imports, checking, drawing),
takes the best of ``--runs`` for each, and prints both and the ratio
TikZ/DOT.  On the default page (6.5 in) the TikZ layout wraps a chain
into rows: the 10,000-box chain is some 900 rows, laid out in one pass.  Both are measured in the same run, on the same machine.  Exit
status 1 if a 10,000-box ratio is over 3.

    python bench/bench_tikz.py [--runs 3] [--sizes 1000 10000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: The bound of acceptance 3 (TikZ time over DOT time, 10,000 boxes).
BOUND = 3.0


def chain(n: int) -> str:
    """One definition of ``n`` boxes in a row."""
    return "morphism f : R[4] -> R[4] = " + " ; ".join(["relu"] * n) + "\n"


def defs(n: int) -> str:
    """``n // 10`` definitions of 10 boxes, composed in a row by the entry."""
    k = max(1, n // 10)
    lines = ["object A = R[4]"]
    lines += [f"morphism g{i} : A -> A = " + " ; ".join(["relu"] * 10) for i in range(k)]
    lines.append("morphism net : A -> A = " + " ; ".join(f"g{i}" for i in range(k)))
    lines.append("main net")
    return "\n".join(lines) + "\n"


def _render(path: Path, out: Path) -> float:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "catnet", "render", str(path), "-o", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"catnet render {path.name} -o {out.name} failed:\n{proc.stderr}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="fresh processes per measurement (the best is kept)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000], help="numbers of boxes")
    args = parser.parse_args()
    worst = 0.0
    print(f"catnet render, best of {args.runs} fresh processes:")
    print(f"  {'file':<8} {'boxes':>6} {'DOT s':>8} {'TikZ s':>8} {'TikZ/DOT':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        for n in args.sizes:
            for name, make in (("chain", chain), ("defs", defs)):
                src = d / f"{name}{n}.cat"
                src.write_text(make(n), encoding="utf-8")
                dot = min(_render(src, d / "out.dot") for _ in range(args.runs))
                tikz = min(_render(src, d / "out.tex") for _ in range(args.runs))
                ratio = tikz / dot
                if n >= 10000:
                    worst = max(worst, ratio)
                print(f"  {name:<8} {n:>6} {dot:>8.2f} {tikz:>8.2f} {ratio:>9.2f}")
    if worst:
        print(f"worst 10,000-box ratio {worst:.2f} (bound {BOUND:g}): {'ok' if worst <= BOUND else 'OVER'}")
    return 1 if worst > BOUND else 0


if __name__ == "__main__":
    raise SystemExit(main())
