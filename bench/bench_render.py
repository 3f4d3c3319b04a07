"""Benchmark: how long `catnet render` takes, end to end and by stage.

The end-to-end time is what a user waits for: a fresh `python -m catnet
render` process (interpreter start, imports, checking the file, layout,
Graphviz) drawing an example to SVG and to TikZ.  The stage times are
measured in one warm process: checking, IR -> graph, graph -> DOT, DOT ->
SVG with `dot`, graph -> TikZ.  It also confirms that rendering never
imports JAX.

    python bench/bench_render.py [--file examples/transformer.cat] [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _cli(args: list[str]) -> float:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "catnet", "render", *args], cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"catnet render {' '.join(args)} failed:\n{proc.stderr}")
    return elapsed


def _best(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", default="examples/transformer.cat")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        print(f"catnet render {args.file}, {args.runs} fresh processes each (median / min):")
        for out, extra in (("out.svg", []), ("out.png", []), ("out.tex", []), ("out.svg", ["--params", "--depth", "1"])):
            times = [_cli([args.file, *extra, "-o", str(Path(tmp) / out)]) for _ in range(args.runs)]
            label = f"-o {out} {' '.join(extra)}".strip()
            print(f"  {label:<28} {statistics.median(times):6.3f} s / {min(times):6.3f} s")

    import catnet
    from catnet.render import graph
    from catnet.render.dot import to_dot
    from catnet.render.output import run_dot
    from catnet.render.tikz import to_tikz

    module = catnet.load(args.file)
    diagram = module.diagram()
    g = graph.build(diagram, name=module.entry_name())
    dot = to_dot(g)
    print("stages in one warm process (best of runs):")
    stages = [
        ("check the file", lambda: catnet.load(args.file)),
        ("IR -> graph", lambda: graph.build(diagram, name=module.entry_name())),
        ("graph -> DOT", lambda: to_dot(g)),
        ("graph -> TikZ (layout)", lambda: to_tikz(g)),
        ("DOT -> SVG (dot)", lambda: run_dot(dot, "svg")),
    ]
    for name, fn in stages:
        print(f"  {name:<28} {_best(fn, args.runs) * 1000:8.1f} ms")
    jax = sorted(m for m in sys.modules if m == "jax" or m.startswith("jax."))
    print(f"JAX imported: {'yes: ' + ', '.join(jax[:3]) if jax else 'no'}")
    return 1 if jax else 0


if __name__ == "__main__":
    raise SystemExit(main())
