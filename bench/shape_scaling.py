"""How check time grows with the shapes that used to be quadratic.

Three families of programs, each at N = 1,000 and N = 10,000: N chained
definitions (each uses the one before it; also written last-first, and
generic in a size), an N-factor product `relu ⊗ relu ⊗ …` and `dense ⊗ …`
(whose widths are solved), and an N-way pairing `<relu, relu, …>`.  Prints
the median time to parse and check each, and the ratio N = 10,000 to
N = 1,000: linear growth gives about 10; the target is under 12.
Exit status 1 if a ratio is 12 or more.  Run: `python bench/shape_scaling.py`.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from catnet import loads  # noqa: E402


def chain(n: int, reverse: bool = False, generic: bool = False) -> str:
    dims, ty = ("[d]", "R[d]") if generic else ("", "A")
    lines = [f"morphism f{i}{dims} : {ty} -> {ty} = f{i - 1} ; relu" for i in range(1, n)]
    if reverse:
        lines.reverse()
    return "\n".join(["object A = R[4]", f"morphism f0{dims} : {ty} -> {ty} = relu", *lines]) + "\n"


def product(n: int, box: str = "relu") -> str:
    wires = " ⊗ ".join(["A"] * n)
    return f"object A = R[4]\nmorphism f : {wires} -> {wires} = {' ⊗ '.join([box] * n)}\n"


def pairing(n: int) -> str:
    return f"object A = R[4]\nmorphism f : A -> {' ⊗ '.join(['A'] * n)} = <{', '.join(['relu'] * n)}>\n"


FAMILIES: dict[str, Callable[[int], str]] = {
    "chained definitions": chain,
    "chained definitions, last first": lambda n: chain(n, reverse=True),
    "chained generic definitions": lambda n: chain(n, generic=True),
    "product of relu": product,
    "product of dense (widths solved)": lambda n: product(n, "dense"),
    "pairing": pairing,
}


def seconds(text: str, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        loads(text)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> int:
    loads(product(10))  # warm the parser tables
    worst = 0.0
    print(f"{'family':<36} {'N = 1,000':>10} {'N = 10,000':>11} {'ratio':>6}")
    for name, make in FAMILIES.items():
        small = seconds(make(1_000), 5)
        large = seconds(make(10_000), 3)
        ratio = large / small
        worst = max(worst, ratio)
        print(f"{name:<36} {small * 1000:>8.0f}ms {large * 1000:>9.0f}ms {ratio:>6.2f}")
    print(f"largest ratio {worst:.2f} (linear = 10, target < 12)")
    return 0 if worst < 12 else 1


if __name__ == "__main__":
    sys.exit(main())
