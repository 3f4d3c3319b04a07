"""The figures of docs/bundles.md: fibers drawn by trained trivializations against the true ones.

Train first (the commands of docs/bundles.md), then:

    python bench/bundle_figures.py RUN_TORUS RUN_IRIS

RUN_* are the `--out` folders of `catnet train` (newest checkpoint is used).
Writes docs/figures/bundle_torus_fibers.png, bundle_torus_latent.png and bundle_iris.png.
"""

from __future__ import annotations

import sys
from pathlib import Path

import jax
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from flax import nnx

import catnet
from catnet.bundles import datasets, sample
from catnet.train import restore

ROOT = Path(__file__).resolve().parents[1] if (Path(__file__).resolve().parents[1] / "examples").exists() else Path.cwd()
FIGURES = ROOT / "docs" / "figures"


def load(example: str, run: str) -> object:
    model = catnet.compile(str(ROOT / "examples" / example), "chart", rngs=nnx.Rngs(0))
    restore(model, run)
    model.eval()
    return model


def torus(run: str) -> None:
    data = datasets.DATASETS["torus"]
    x, b = data.arrays(0)
    model = load("bundle_torus.cat", run)
    angles = [0.0, 0.5 * np.pi, 0.9 * np.pi, 1.4 * np.pi]
    colors = ["tab:red", "tab:blue", "tab:green", "tab:purple"]
    fig = plt.figure(figsize=(11, 4.8))
    ax = fig.add_subplot(1, 2, 1, projection="3d")
    ax.scatter(*x[::4].T, s=1, c="0.8", alpha=0.4)
    for phi, c in zip(angles, colors):
        base = 2.0 * np.array([np.cos(phi), np.sin(phi)], np.float32)
        xs = np.asarray(sample(model, base, 500, jax.random.PRNGKey(0)))
        true = data.fiber(base, 200)
        ax.scatter(*xs.T, s=2, c=c)
        ax.plot(*np.vstack([true, true[:1]]).T, c="k", lw=0.8)
        ax.scatter(*np.r_[base, 0.0], c=c, marker="x", s=40)
    ax.set_title("500 samples over 4 base points (colours)\nand the true fibers (black)")
    ax.set_box_aspect((1, 1, 0.3))
    ax.view_init(elev=35, azim=-60)
    ax.set_axis_off()
    ax2 = fig.add_subplot(1, 2, 2)
    for phi, c in zip(angles, colors):
        base = 2.0 * np.array([np.cos(phi), np.sin(phi)], np.float32)
        xs = np.asarray(sample(model, base, 500, jax.random.PRNGKey(0)))
        # the tube's cross-section at the base point: distance from the axis minus 2, and height
        u = np.linalg.norm(xs[:, :2], axis=1) - 2.0
        ax2.scatter(u, xs[:, 2], s=2, c=c, label=f"φ = {phi / np.pi:.1f}π")
    t = np.linspace(0, 2 * np.pi, 200)
    ax2.plot(0.5 * np.cos(t), 0.5 * np.sin(t), c="k", lw=0.8, label="true fiber")
    ax2.set_aspect("equal")
    ax2.set_xlabel("distance from the axis − 2")
    ax2.set_ylabel("height")
    ax2.set_title("the same samples in the tube's cross-section")
    ax2.legend(fontsize=7, loc="upper right", markerscale=4)
    fig.tight_layout()
    fig.savefig(FIGURES / "bundle_torus_fibers.png", dpi=110)
    plt.close(fig)

    # the trivialization's fiber coordinate of held-out points, against the circle prior
    (b_hat, z), _ = model.forward_log_det(x[3200:], condition=b[3200:])
    z = np.asarray(z)
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.scatter(*z.T, s=2, c="tab:blue")
    ax.plot(np.cos(t), np.sin(t), c="k", lw=0.8)
    ax.set_aspect("equal")
    ax.set_title("fiber coordinate of 800 held-out points\n(black: the circle prior's mean radius)", fontsize=9)
    fig.tight_layout()
    fig.savefig(FIGURES / "bundle_torus_latent.png", dpi=110)
    plt.close(fig)


def iris(run: str) -> None:
    data = datasets.DATASETS["iris"]
    x, b = data.arrays(0)
    model = load("bundle_iris.cat", run)
    test = b[-30:]
    picks = [test[i] for i in (0, 1, 2)]
    colors = ["tab:red", "tab:blue", "tab:green"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
    for k, (ax, name) in enumerate(zip(axes, ["sepal", "petal"])):
        ax.scatter(x[:, 2 * k], x[:, 2 * k + 1], s=8, c="0.75", label="the 150 flowers")
        for base, c in zip(picks, colors):
            xs = np.asarray(sample(model, base, 500, jax.random.PRNGKey(0)))
            ax.scatter(xs[:, 2 * k], xs[:, 2 * k + 1], s=2, c=c, alpha=0.5, label=f"size ({base[0]:.2f}, {base[1]:.2f}) cm")
            length = np.linspace(max(0.05, xs[:, 2 * k].min() - 0.5), xs[:, 2 * k].max() + 0.5, 100)
            ax.plot(length, base[k] ** 2 / length, c=c, lw=0.8)
        ax.set_xlabel(f"{name} length (cm)")
        ax.set_ylabel(f"{name} width (cm)")
        ax.set_title(f"{name}s of sampled flowers; lines: length · width = size²", fontsize=9)
    lo = np.min(x[:, 3]) - 0.3
    axes[1].set_ylim(lo, np.max(x[:, 3]) + 0.5)
    axes[0].set_ylim(np.min(x[:, 1]) - 0.5, np.max(x[:, 1]) + 0.5)
    axes[0].legend(fontsize=7, markerscale=3)
    fig.tight_layout()
    fig.savefig(FIGURES / "bundle_iris.png", dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    torus(sys.argv[1])
    iris(sys.argv[2])
