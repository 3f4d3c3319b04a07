"""The figures of ``catnet analyze``, drawn with matplotlib from the numbers of ``analysis.json``.

Each function takes plain numbers (what the JSON holds) and a path, and
writes one PNG.  Figures are drawn on a ``matplotlib.figure.Figure`` with
the Agg canvas, never through ``pyplot``: no global state, no display
needed, and importing this module costs nothing (matplotlib is imported
inside the functions).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Sequence

#: Resolution of the PNGs.
DPI = 150

#: The figures, by key of ``analysis.json``'s ``figures``.
FIGURES = {
    "intrinsic_dimension": "intrinsic_dimension.png",
    "data_curvature": "data_curvature.png",
    "hessian_spectrum": "hessian_spectrum.png",
    "loss_slice_1d": "loss_slice_1d.png",
    "loss_slice_2d": "loss_slice_2d.png",
}


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: str | Path) -> None:
    fig.tight_layout()
    fig.savefig(path, format="png")


def intrinsic_dimension(layers: Sequence[str], estimates: Mapping[str, Sequence[Mapping[str, float] | None]], path: str | Path, title: str = "") -> None:
    """Intrinsic dimension across the layers: one line per estimator, 90% bootstrap intervals as error bars.

    ``estimates[method][i]`` is the estimate of layer ``i`` (keys ``value``,
    ``low``, ``high``) or ``None`` where the estimator failed on that layer.
    """
    fig = _figure(max(5.0, 0.6 * len(layers) + 2.0), 3.6)
    ax = fig.add_subplot(1, 1, 1)
    markers = {"twonn": "o", "mle": "s"}
    labels = {"twonn": "TwoNN", "mle": "MLE (Levina–Bickel)"}
    for offset, (method, rows) in zip((-0.06, 0.06), estimates.items()):
        xs = [i + offset for i, r in enumerate(rows) if r is not None]
        ys = [r["value"] for r in rows if r is not None]
        low = [max(r["value"] - r["low"], 0.0) for r in rows if r is not None]
        high = [max(r["high"] - r["value"], 0.0) for r in rows if r is not None]
        ax.errorbar(xs, ys, yerr=[low, high], marker=markers.get(method, "^"), capsize=3, label=labels.get(method, method))
    ax.set_xticks(range(len(layers)))
    ax.set_xticklabels(layers, rotation=30 if len(layers) > 4 else 0, ha="right" if len(layers) > 4 else "center")
    ax.set_ylabel("intrinsic dimension")
    ax.set_xlabel("wire (in the order of the forward pass)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title)
    _save(fig, path)


def data_curvature(layers: Sequence[str], rows: Sequence[Mapping[str, float] | None], path: str | Path, title: str = "") -> None:
    """The data's curvature across the layers, in units of each wire's spread.

    ``rows[i]`` is layer ``i``'s curvature (keys ``scaled_median``,
    ``scaled_low``, ``scaled_high``: the median and 5th/95th percentiles of
    the base points' curvature times the wire's RMS radius) or ``None``
    where it was not estimated.
    """
    fig = _figure(max(5.0, 0.6 * len(layers) + 2.0), 3.6)
    ax = fig.add_subplot(1, 1, 1)
    xs = [i for i, r in enumerate(rows) if r is not None]
    ys = [r["scaled_median"] for r in rows if r is not None]
    low = [max(r["scaled_median"] - r["scaled_low"], 0.0) for r in rows if r is not None]
    high = [max(r["scaled_high"] - r["scaled_median"], 0.0) for r in rows if r is not None]
    ax.errorbar(xs, ys, yerr=[low, high], marker="o", capsize=3, linestyle="-")
    for i, r in enumerate(rows):
        if r is not None:
            ax.annotate(f"d={int(r['d'])}", (i, r["scaled_median"]), textcoords="offset points", xytext=(6, 4), fontsize=7)
    ax.set_xticks(range(len(layers)))
    ax.set_xticklabels(layers, rotation=30 if len(layers) > 4 else 0, ha="right" if len(layers) > 4 else "center")
    ax.set_xlim(-0.5, len(layers) - 0.5)
    ax.set_ylabel("curvature × RMS radius\n(median, 5–95% of points)")
    ax.set_xlabel("wire (in the order of the forward pass)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.set_title(title or "curvature of the data along the wires")
    _save(fig, path)


def hessian_spectrum(eigenvalues: Sequence[float], path: str | Path, trace: float | None = None, title: str = "") -> None:
    """The top Hessian eigenvalues, largest first, on a symmetric-log axis (they may be negative)."""
    fig = _figure(5.0, 3.6)
    ax = fig.add_subplot(1, 1, 1)
    ranks = list(range(1, len(eigenvalues) + 1))
    ax.stem(ranks, list(eigenvalues), basefmt=" ")
    positive = [abs(v) for v in eigenvalues if v != 0 and math.isfinite(v)]
    ax.set_yscale("symlog", linthresh=min(positive) if positive else 1.0)
    ax.set_xlabel("rank")
    ax.set_ylabel("eigenvalue")
    ax.set_xticks(ranks)
    ax.axhline(0.0, color="grey", linewidth=0.8)
    ax.grid(alpha=0.3)
    heading = title or "Hessian spectrum (top eigenvalues)"
    if trace is not None:
        heading += f"\ntrace ≈ {trace:.4g}"
    ax.set_title(heading)
    _save(fig, path)


def loss_slice_1d(coords: Sequence[float], losses: Sequence[float], path: str | Path, title: str = "") -> None:
    """The loss along one filter-normalized direction through the trained parameters."""
    fig = _figure(5.0, 3.6)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(list(coords), [v if math.isfinite(v) else math.nan for v in losses], marker=".")
    ax.axvline(0.0, color="grey", linewidth=0.8)
    ax.set_xlabel("step along the direction (filter norms)")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax.set_title(title or "loss along a random filter-normalized direction")
    _save(fig, path)


def loss_slice_2d(coords: Sequence[float], losses: Sequence[Sequence[float]], path: str | Path, title: str = "") -> None:
    """The loss on the plane of two filter-normalized directions, as filled contours of ``log10`` loss."""
    import numpy as np

    grid = np.asarray(losses, np.float64)
    grid = np.where(np.isfinite(grid) & (grid > 0), grid, np.nan)
    fig = _figure(4.6, 4.0)
    ax = fig.add_subplot(1, 1, 1)
    c = np.asarray(coords, np.float64)
    shown = ax.contourf(c, c, np.log10(grid).T, levels=20)
    fig.colorbar(shown, ax=ax, label="log10 loss")
    ax.plot([0.0], [0.0], marker="+", color="white")
    ax.set_xlabel("direction 1")
    ax.set_ylabel("direction 2")
    ax.set_title(title or "loss on a random filter-normalized plane")
    _save(fig, path)


def draw(report: Mapping[str, Any], folder: str | Path, title: str = "") -> dict[str, str]:
    """Draw every figure ``report`` has numbers for into ``folder`` (which must exist).

    ``report`` is what :func:`catnet.analysis.report.analyze` returns (or
    ``analysis.json`` read back); ``null`` numbers are drawn as gaps.
    Returns the file names written, by key of :data:`FIGURES`.
    """
    from .report import METHODS

    def numbers(values: Sequence[float | None]) -> list[float]:
        return [math.nan if v is None else v for v in values]

    folder = Path(folder)
    title = title or "analysis"
    written: dict[str, str] = {}
    rows = report["wires"]
    names = [r["name"] for r in rows]
    intrinsic_dimension(names, {m: [r[m] for r in rows] for m in METHODS}, folder / FIGURES["intrinsic_dimension"], title)
    written["intrinsic_dimension"] = FIGURES["intrinsic_dimension"]
    curved = [c if c is not None and c["scaled_median"] is not None else None for c in (r.get("curvature") for r in rows)]
    if any(c is not None for c in curved):
        data_curvature(names, curved, folder / FIGURES["data_curvature"], f"{title}: curvature of the data")
        written["data_curvature"] = FIGURES["data_curvature"]
    h = report.get("hessian")
    if h is not None:
        hessian_spectrum(numbers(h["top_eigenvalues"]), folder / FIGURES["hessian_spectrum"], h["trace"]["value"],
                         f"{title}: Hessian spectrum")
        loss_slice_1d(h["slice_1d"]["coords"], numbers(h["slice_1d"]["losses"]), folder / FIGURES["loss_slice_1d"],
                      f"{title}: loss along a random direction")
        loss_slice_2d(h["slice_2d"]["coords"], [numbers(row) for row in h["slice_2d"]["losses"]], folder / FIGURES["loss_slice_2d"],
                      f"{title}: loss on a random plane")
        written.update({k: FIGURES[k] for k in ("hessian_spectrum", "loss_slice_1d", "loss_slice_2d")})
    return written
