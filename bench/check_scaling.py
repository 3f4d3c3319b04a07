"""How check time grows with program size.

Generates programs with 1k, 10k and 100k boxes written out in the file —
definitions of 50 boxes each (residual pieces `copy ; ((dense ; relu) ⊗ id)
; add ; layernorm`, every box spelled in the text), chained by a top-level
morphism — and prints the median time to parse and check each (5 runs of
the small ones, 3 of 100k), the ratio 100k/10k (linear growth gives about
10), and whether 100k boxes check in under 3 s.
Run: `python bench/check_scaling.py`.
"""

from __future__ import annotations

import gc
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from catnet import loads  # noqa: E402


PIECE = "copy ; ((dense ; relu) ⊗ id) ; add ; layernorm"  # 5 boxes, `id` is a wire


def program(boxes: int) -> str:
    """A file with ``boxes`` boxes written out, 50 to a definition."""
    pieces = max(1, boxes // 5)
    per_def = 10
    lines = ["object V = R[32]"]
    names = []
    for i in range(0, pieces, per_def):
        n = min(per_def, pieces - i)
        name = f"stage{i // per_def}"
        lines.append(f"morphism {name} : V -> V = " + " ; ".join([PIECE] * n))
        names.append(name)
    lines.append("morphism net : V -> V = " + " ; ".join(names))
    lines.append("main net")
    return "\n".join(lines) + "\n"


def count_boxes(module) -> int:  # noqa: ANN001
    d = module.diagram("net")
    return sum(1 for b in d.all_boxes() if b.kind != "composite")


def measure(boxes: int, repeats: int) -> tuple[float, int]:
    text = program(boxes)
    times = []
    n = 0
    m = None
    for _ in range(repeats):
        # The previous run's module is freed (and the collector run) before
        # the clock starts: freeing a big module is not part of checking one.
        m = None
        gc.collect()
        t0 = time.perf_counter()
        m = loads(text)
        times.append(time.perf_counter() - t0)
        n = count_boxes(m)
    return statistics.median(times), n


def main() -> None:
    loads(program(100))  # warm the parser tables
    results = {}
    for size, repeats in ((1_000, 5), (10_000, 5), (100_000, 3)):
        t, n = measure(size, repeats)
        results[size] = t
        print(f"{size:>7,} boxes written ({n:,} primitive boxes in the IR): check {t * 1000:8.1f} ms")
    print(f"ratio 100k/10k: {results[100_000] / results[10_000]:.2f}  (linear = 10)")
    print(f"10k boxes under 1 s: {'yes' if results[10_000] < 1.0 else 'NO'}")
    print(f"100k boxes under 3 s: {'yes' if results[100_000] < 3.0 else 'NO'}")
    print(f"ratio at most 11: {'yes' if results[100_000] / results[10_000] <= 11 else 'NO'}")


if __name__ == "__main__":
    main()
