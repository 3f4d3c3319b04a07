"""Measure the intrinsic-dimension and curvature estimators: speed, accuracy, error bars.

- ``timing``: TwoNN, MLE and a bootstrapped estimate on 10⁴ points in 10³
  dimensions (a 5-sphere), warm (the second run), with the peak memory of
  the process; and the local curvature of the same cloud.
- ``accuracy``: relative error of TwoNN and MLE on d-spheres in R^100
  against the number of points, over seeds 0–4 (the mean and the worst).
- ``bootstrap``: the bootstrap standard deviation of :func:`estimate`
  beside the spread of the estimate over 20 independent draws.
- ``curvature``: the median curvature estimate on a unit 2-sphere against
  noise and the number of neighbours.

    python bench/intrinsic_dimension.py [timing|accuracy|bootstrap|curvature ...]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from catnet.analysis import curvature, intrinsic, manifolds  # noqa: E402


def _warm(call, *args, **kwargs) -> tuple[float, object]:
    """Seconds of the second of two runs of ``call`` (the first compiles), and its result."""
    call(*args, **kwargs)
    start = time.perf_counter()
    result = call(*args, **kwargs)
    return time.perf_counter() - start, result


def timing() -> None:
    points = manifolds.sphere(10_000, 5, D=1000).points
    print("10,000 points of a 5-sphere in R^1000 (warm runs)")
    for name, call, kwargs in [
        ("nearest, k = 20", intrinsic.nearest, {"k": 20}),
        ("twonn", intrinsic.twonn, {}),
        ("mle, k = 20", intrinsic.mle, {}),
        ("estimate twonn, 20 resamples", intrinsic.estimate, {"method": "twonn"}),
        ("estimate mle, 20 resamples", intrinsic.estimate, {"method": "mle"}),
        ("local_curvature, d = 5", curvature.local_curvature, {"d": 5}),
    ]:
        seconds, result = _warm(call, points, **kwargs)
        shown = f"{result:.3f}" if isinstance(result, float) else ""
        if isinstance(result, intrinsic.Estimate):
            shown = f"{result.value:.3f} ± {result.std:.3f}"
        if isinstance(result, curvature.Curvature):
            shown = f"median {result.median:.3f}"
        print(f"  {name:32s} {seconds:7.2f} s  {shown}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"  peak memory of the process: {peak:.2f} GiB")


def accuracy() -> None:
    print("relative error on d-spheres in R^100, seeds 0-4: mean / worst")
    for d in (2, 5, 10):
        for n in (1000, 2000, 4000, 8000):
            errors = np.array(
                [
                    [intrinsic.twonn(points) / d - 1, intrinsic.mle(points) / d - 1]
                    for points in (manifolds.sphere(n, d, seed=seed).points for seed in range(5))
                ]
            )
            worst = errors[np.argmax(np.abs(errors), axis=0), [0, 1]]
            print(
                f"  d = {d:2d}  n = {n:5d}   twonn {errors[:, 0].mean():+.3f} / {worst[0]:+.3f}"
                f"   mle {errors[:, 1].mean():+.3f} / {worst[1]:+.3f}"
            )


def bootstrap() -> None:
    print("2,000 points of d-spheres: std over 20 independent draws vs the bootstrap std of one draw")
    for d in (2, 5, 10):
        for method in intrinsic.METHODS:
            draws = [
                intrinsic.estimate(manifolds.sphere(2000, d, seed=seed).points, method, bootstrap=2).value
                for seed in range(100, 120)
            ]
            one = intrinsic.estimate(manifolds.sphere(2000, d, seed=0).points, method, bootstrap=50)
            print(
                f"  d = {d:2d} {method:5s}  draws {np.mean(draws):6.3f} ± {np.std(draws, ddof=1):.3f}"
                f"   bootstrap {one.value:6.3f} ± {one.std:.3f}  90% [{one.low:.3f}, {one.high:.3f}]"
            )


def curvature_table() -> None:
    print("median (5%-95%) curvature of 2,000 points of the unit 2-sphere in R^100 (true 1)")
    for noise in (0.0, 0.001, 0.01):
        points = manifolds.sphere(2000, 2, noise=noise).points
        cells = []
        for k in (None, 50, 100):
            result = curvature.local_curvature(points, 2, k=k)
            cells.append(f"k = {result.k:3d}: {result.median:6.3f} ({result.low:.2f}-{result.high:.2f})")
        print(f"  noise {noise:5.3f}   " + "   ".join(cells))


PARTS = {"timing": timing, "accuracy": accuracy, "bootstrap": bootstrap, "curvature": curvature_table}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("parts", nargs="*", metavar="part", help=f"what to measure: {', '.join(PARTS)} (all by default)")
    parts = parser.parse_args().parts or list(PARTS)
    unknown = [part for part in parts if part not in PARTS]
    if unknown:
        parser.error(f"unknown part {', '.join(unknown)}; choose from {', '.join(PARTS)}")
    for part in parts:
        PARTS[part]()


if __name__ == "__main__":
    main()
