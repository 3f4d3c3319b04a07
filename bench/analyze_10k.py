"""How long `catnet analyze` takes on 10⁴ samples of the digits CNN (13,706 parameters); the target is under a minute.

The digits have 1,797 images, so 10,000 are drawn from them with a small
random rotation (±10°) and sub-pixel shift (±1 px), bilinear, labels kept:
a continuous augmentation (integer shifts and pixel noise make near
duplicates, which the estimators read as the noise's dimension).

    python bench/analyze_10k.py [--checkpoint RUN] [--out DIR]

Without ``--checkpoint`` it trains the CNN for 10 epochs first (not timed).
Prints the wall time of the whole `catnet analyze` command (with its
defaults: intrinsic dimension, data curvature and loss curvature), its
intrinsic dimensions and data curvature across the wires (docs/analysis.md).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "digits_cnn.cat"


def augmented_digits(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` digits, each a random original turned by ±10° and shifted by ±1 px (bilinear), in [0, 1]."""
    from scipy import ndimage
    from sklearn.datasets import load_digits

    d = load_digits()
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(d.target), n)
    out = np.empty((n, 8, 8))
    for i, j in enumerate(idx):
        img = ndimage.rotate(d.images[j] / 16.0, rng.uniform(-10, 10), reshape=False, order=1, mode="constant")
        out[i] = ndimage.shift(img, rng.uniform(-1, 1, 2), order=1, mode="constant")
    return np.clip(out, 0, 1).reshape(n, 64).astype(np.float32), d.target[idx].astype(np.int64)


def catnet(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "catnet", *args], check=True, cwd=ROOT)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--progress", action="store_true", help="show analyze's progress lines (the time of each step)")
    parser.add_argument("--checkpoint", type=Path, default=None, help="a `catnet train` run of examples/digits_cnn.cat")
    parser.add_argument("--out", type=Path, default=None, help="where analyze writes (default: a temporary folder)")
    parser.add_argument("--samples", type=int, default=10_000, help="examples analyzed (default 10000)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "digits10k.npz"
        x, y = augmented_digits(args.samples)
        np.savez(data, x=x, y=y)
        run = args.checkpoint
        if run is None:
            run = Path(tmp) / "run"
            catnet("train", str(EXAMPLE), "--data", "digits", "--epochs", "10", "--seed", "0", "--out", str(run), "--quiet")
        out = args.out or Path(tmp) / "analysis"
        start = time.perf_counter()
        catnet("analyze", str(EXAMPLE), "--checkpoint", str(run), "--data", str(data), "--samples", str(args.samples),
               "-o", str(out), *([] if args.progress else ["-q"]))
        seconds = time.perf_counter() - start
        report = json.loads((out / "analysis.json").read_text(encoding="utf-8"))
    print(f"catnet analyze, {args.samples:,} samples of the digits CNN: {seconds:.1f} s (target < 60 s)")
    for wire in report["wires"]:
        cells = [f"{m} {wire[m]['value']:.2f} [{wire[m]['low']:.2f}, {wire[m]['high']:.2f}]" for m in ("twonn", "mle") if wire.get(m)]
        c = wire.get("curvature")
        if c:
            cells.append(f"curvature (d = {c['d']}) {c['median']:.3g}, × radius {c['scaled_median']:.2f}")
        print(f"  {wire['name']:<12} {wire['features']:>5} features  " + "   ".join(cells))


if __name__ == "__main__":
    main()
