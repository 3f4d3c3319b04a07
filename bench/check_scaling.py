"""How check time grows with program size.

Generates programs with 1k, 10k and 100k boxes written out in the file —
definitions of 50 boxes each (residual pieces `copy ; ((dense ; relu) ⊗ id)
; add ; layernorm`, every box spelled in the text), chained by a top-level
morphism — and prints the median time to parse and check each (5 runs of
1k, 15 of 10k, 5 of 100k), the ratio 100k/10k (linear growth gives about
10; each 100k run is compared with the 10k runs just before it), and
whether the targets hold: 100k boxes in under 3 s, a ratio of at most 11.
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


def measure(text: str, repeats: int) -> tuple[list[float], int]:
    """``repeats`` timings of checking ``text``, and the primitive boxes of the result."""
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
    return times, n


def main() -> None:
    loads(program(100))  # warm the parser tables
    texts = {size: program(size) for size in (1_000, 10_000, 100_000)}
    small, n_small = measure(texts[1_000], 5)
    # The ratio pairs runs made back to back: each of five rounds checks 10k
    # boxes three times, then 100k once, so a slow spell of this shared machine slows
    # both sides of a round's ratio rather than one of them.
    mid: list[float] = []
    big: list[float] = []
    ratios: list[float] = []
    n_mid = n_big = 0
    for _ in range(5):
        times, n_mid = measure(texts[10_000], 3)
        (t,), n_big = measure(texts[100_000], 1)
        mid += times
        big.append(t)
        ratios.append(t / statistics.median(times))
    rows = ((1_000, statistics.median(small), n_small), (10_000, statistics.median(mid), n_mid),
            (100_000, statistics.median(big), n_big))
    for size, t, n in rows:
        print(f"{size:>7,} boxes written ({n:,} primitive boxes in the IR): check {t * 1000:8.1f} ms")
    ratio = statistics.median(ratios)
    print(f"ratio 100k/10k: {ratio:.2f}  (linear = 10; the median of five rounds: "
          + ", ".join(f"{r:.2f}" for r in ratios) + ")")
    print(f"10k boxes under 1 s: {'yes' if rows[1][1] < 1.0 else 'NO'}")
    print(f"100k boxes under 3 s: {'yes' if rows[2][1] < 3.0 else 'NO'}")
    print(f"ratio at most 11: {'yes' if ratio <= 11 else 'NO'}")


if __name__ == "__main__":
    main()
