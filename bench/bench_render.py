"""Benchmark: how long `catnet render` takes, end to end and by stage.

The end-to-end time is what a user waits for: a fresh `python -m catnet
render` process (interpreter start, imports, checking the file, layout,
Graphviz) drawing an example to SVG and to TikZ.  The stage times are
measured in one warm process: checking, IR -> graph, graph -> DOT, DOT ->
SVG with `dot`, graph -> TikZ.  It also confirms that rendering never
imports JAX.

The targets: every example draws to SVG in under 1 s in a fresh process,
and twelve unrolled transformer blocks (each block its own nested box,
wrapped into rows to fit the page) in under 2 s.  The script exits 1 when
a target is missed.

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


#: Targets for a fresh process drawing to SVG, in seconds.
EXAMPLE_TARGET, DEEP_TARGET = 1.0, 2.0


def unrolled(blocks: int) -> str:
    """The transformer example with its block written out ``blocks`` times, each its own box."""
    text = (ROOT / "examples" / "transformer.cat").read_text(encoding="utf-8")
    chain = " ; ".join(["block"] * blocks)
    return text.replace("main encoder", f"morphism deep : Tokens -> Logits =\n  embed(vocab=256) ; {chain} ; layernorm ; dense\n\nmain deep")


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

    missed = []
    with tempfile.TemporaryDirectory() as tmp:
        print(f"catnet render {args.file}, {args.runs} fresh processes each (median / min):")
        for out, extra in (("out.svg", []), ("out.png", []), ("out.tex", []), ("out.svg", ["--params", "--depth", "1"])):
            times = [_cli([args.file, *extra, "-o", str(Path(tmp) / out)]) for _ in range(args.runs)]
            label = f"-o {out} {' '.join(extra)}".strip()
            print(f"  {label:<28} {statistics.median(times):6.3f} s / {min(times):6.3f} s")
        print(f"every example to SVG, fresh processes (median of 3; target {EXAMPLE_TARGET:g} s):")
        for path in sorted((ROOT / "examples").glob("*.cat")):
            median = statistics.median(_cli([str(path), "-o", str(Path(tmp) / "x.svg")]) for _ in range(3))
            print(f"  {path.name:<28} {median:6.3f} s")
            if median > EXAMPLE_TARGET:
                missed.append(path.name)
        deep = Path(tmp) / "deep.cat"
        deep.write_text(unrolled(12), encoding="utf-8")
        for extra in ([], ["--params"]):
            median = statistics.median(_cli([str(deep), *extra, "-o", str(Path(tmp) / "deep.svg")]) for _ in range(3))
            label = " ".join(["12 unrolled blocks", *extra])
            print(f"  {label:<28} {median:6.3f} s (target {DEEP_TARGET:g} s)")
            if median > DEEP_TARGET:
                missed.append(label)

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
    if missed:
        print(f"missed the target: {', '.join(missed)}")
    return 1 if jax or missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
