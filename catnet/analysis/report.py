"""The numbers of ``catnet analyze`` from a compiled model and arrays: the Python API of the command.

:func:`analyze` runs what the command runs, on a model already compiled
and trained and on examples already loaded, and returns what
``analysis.json`` holds under ``examples``, ``wires`` and ``hessian``;
:func:`catnet.analysis.plots.draw` draws the figures from it::

    from catnet.analysis import report, plots
    numbers = report.analyze(model, x, y, loss="cross_entropy")
    plots.draw(numbers, "analysis/", title="digits CNN")

Each step is a function of its own (:func:`intrinsic_rows`,
:func:`data_curvature`, :func:`loss_curvature`) for a caller who wants one.
"""

from __future__ import annotations

import math
import time
from typing import Any, Sequence, TextIO

import numpy as np

from .errors import AnalysisError

#: The estimators, in the order they are reported.
METHODS = ("twonn", "mle")
#: The largest intrinsic dimension whose data curvature is estimated: the
#: local quadratic fit in ``d`` tangent directions has ``1 + d + d(d+1)/2``
#: coefficients per normal direction, so at d = 12 each point already takes
#: 273 neighbours, a neighbourhood too wide to call local on 10⁴ points.
MAX_CURVATURE_DIM = 12


class Progress:
    """Plain progress lines, each with the seconds since the start, on ``stream`` (none when it is ``None``).

    ``catnet analyze`` passes stderr (and ``None`` with ``--quiet``), as
    ``catnet train`` prints its epochs.
    """

    def __init__(self, stream: TextIO | None) -> None:
        self.stream = stream
        self.started = time.perf_counter()

    def line(self, text: str) -> None:
        if self.stream is not None:
            self.stream.write(f"{text}  ({time.perf_counter() - self.started:.1f}s)\n")
            self.stream.flush()


def _finite(value: float) -> float | None:
    """A number for JSON: ``None`` for NaN and infinities (JSON has neither)."""
    return float(value) if math.isfinite(value) else None


def _listed(values: Any) -> Any:
    """An array as nested lists of JSON numbers."""
    array = np.asarray(values, np.float64)
    if array.ndim == 0:
        return _finite(float(array))
    return [_listed(v) for v in array]


def intrinsic_rows(acts: dict[str, np.ndarray], bootstrap: int, seed: int, progress: Progress) -> list[dict[str, Any]]:
    """Each wire's TwoNN and MLE estimates (``None`` with the error where an estimator refused)."""
    from .intrinsic import estimate

    rows = []
    for i, (name, x) in enumerate(acts.items()):
        row: dict[str, Any] = {"name": name, "features": int(x.shape[1]), "errors": {}}
        shown = []
        for method in METHODS:
            try:
                e = estimate(x, method=method, bootstrap=bootstrap, seed=seed)
            except AnalysisError as error:
                row[method] = None
                row["errors"][method] = str(error)
                shown.append(f"{method} failed: {error}")
                continue
            row[method] = {"value": _finite(e.value), "std": _finite(e.std), "low": _finite(e.low), "high": _finite(e.high), "n": e.n}
            shown.append(f"{method} {e.value:.2f} ± {e.std:.2f}")
        progress.line(f"intrinsic dimension [{i + 1}/{len(acts)}] {name} ({x.shape[1]} features): " + ", ".join(shown))
        rows.append(row)
    return rows


def data_curvature(acts: dict[str, np.ndarray], rows: list[dict[str, Any]], points: int, seed: int, progress: Progress) -> None:
    """Each wire's data curvature, in the dimension TwoNN found there, into ``rows[i]["curvature"]``.

    Fits at ``points`` base points drawn with ``seed`` (their neighbours come
    from every sample).  A wire is skipped, with the reason in its
    ``errors``, when it has no dimension estimate, a dimension above
    :data:`MAX_CURVATURE_DIM`, no normal direction (d ≥ its width), or too
    few points for the fit.  Besides the curvature in the wire's own units,
    the row holds it times the wire's RMS radius (the root mean square
    distance of its activations from their mean): 1 on a round sphere
    centred at the mean, whatever its size, so layers of different scale
    compare.
    """
    from .curvature import local_curvature

    for i, (row, (name, x)) in enumerate(zip(rows, acts.items())):
        row["curvature"] = None
        found = row["twonn"] or row["mle"]
        if found is None or found["value"] is None:
            row["errors"]["curvature"] = "no intrinsic dimension was estimated, and the fit needs one"
            continue
        d = max(1, round(found["value"]))
        width = int(x.shape[1])
        reason = None
        if d > MAX_CURVATURE_DIM:
            reason = (f"its intrinsic dimension ≈ {d} is above {MAX_CURVATURE_DIM}: a quadratic fit in {d} tangent "
                      f"directions needs {3 * (1 + d + d * (d + 1) // 2)} neighbours per point, too wide a neighbourhood")
        elif d >= width:
            reason = f"its intrinsic dimension ≈ {d} fills its {width} features: no normal direction, no curvature to see"
        if reason is None:
            base = np.sort(np.random.default_rng(seed).choice(x.shape[0], min(points, x.shape[0]), replace=False))
            try:
                c = local_curvature(x, d, at=base)
            except AnalysisError as error:
                reason = str(error)
        if reason is not None:
            row["errors"]["curvature"] = reason
            progress.line(f"data curvature [{i + 1}/{len(acts)}] {name}: skipped: {reason}")
            continue
        spread = x.astype(np.float64) - x.mean(axis=0, dtype=np.float64)
        radius = float(np.sqrt(np.mean(np.sum(spread**2, axis=1))))
        row["curvature"] = {
            "d": d, "k": c.k, "points": int(c.values.shape[0]),
            "median": _finite(c.median), "mean": _finite(c.mean), "low": _finite(c.low), "high": _finite(c.high),
            "radius": _finite(radius),
            "scaled_median": _finite(c.median * radius), "scaled_low": _finite(c.low * radius), "scaled_high": _finite(c.high * radius),
        }
        progress.line(f"data curvature [{i + 1}/{len(acts)}] {name} (d = {d}, k = {c.k}): median {c.median:.4g} "
                      f"[{c.low:.3g}, {c.high:.3g}], × RMS radius {radius:.3g} = {c.median * radius:.3g}")


def loss_curvature(
    model: Any, inputs: tuple[np.ndarray, ...], target: np.ndarray, loss: str, k: int, probes: int, seed: int, progress: Progress
) -> dict[str, Any]:
    """The Hessian's top eigenvalues and trace, and the 1-D and 2-D loss slices, at the trained weights."""
    from . import hessian

    problem = hessian.problem_from_model(model, inputs if len(inputs) > 1 else inputs[0], target, loss=loss)
    n = int(problem.flat().shape[0])
    k = min(k, n)
    pairs = hessian.top_eigenvalues(problem, k=k, seed=seed)
    assert isinstance(pairs, hessian.Eigenpairs)
    progress.line(f"hessian: top {k} eigenvalues of {n:,} parameters, largest {pairs.values[0]:.4g}")
    tr = hessian.trace(problem, samples=probes, seed=seed)
    assert isinstance(tr, hessian.TraceEstimate)
    progress.line(f"hessian: trace {tr.value:.4g} ± {tr.stderr:.2g} ({tr.samples} probes)")
    one = hessian.loss_slice(problem, dims=1, seed=seed)
    two = hessian.loss_slice(problem, dims=2, seed=seed)
    progress.line(f"loss slices: 1-D {len(one.coords)} points, 2-D {len(two.coords)}×{len(two.coords)}, loss at the weights {one.center:.4g}")
    return {
        "loss": loss,
        "examples": int(inputs[0].shape[0]),
        "parameters": n,
        "top_eigenvalues": _listed(pairs.values),
        "trace": {"value": _finite(tr.value), "stderr": _finite(tr.stderr), "probes": tr.samples},
        "slice_1d": {"coords": _listed(one.coords), "losses": _listed(one.losses), "center": _finite(one.center)},
        "slice_2d": {"coords": _listed(two.coords), "losses": _listed(two.losses), "center": _finite(two.center)},
    }


def analyze(
    model: Any,
    x: Any,
    target: Any = None,
    *,
    loss: str | None = None,
    wires: Sequence[str] | None = None,
    bootstrap: int = 20,
    data_curvature_points: int | None = 1000,
    hessian: bool = True,
    hessian_k: int = 10,
    hessian_samples: int = 1000,
    probes: int = 50,
    seed: int = 0,
    batch_size: int = 1024,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Intrinsic dimension and data curvature of named wires, and the loss curvature, of ``model`` on ``x``.

    ``x`` is the examples (one array, or a tuple with one array per input
    wire; the first axis counts examples).  ``wires`` are named as ``catnet
    summary`` names the boxes (default: every definition's output, the
    input and the output; see :mod:`catnet.analysis.activations`).
    ``data_curvature_points`` base points per wire get a curvature fit
    (``None``: none).  With ``target`` (one per example) and ``hessian``,
    the loss ``loss`` (``"cross_entropy"`` for integer labels, ``"mse"``;
    by default chosen from the target's dtype) is measured on the first
    ``hessian_samples`` examples.

    Returns ``{"examples": n, "wires": [row, …], "hessian": {…} or None}``,
    each row as ``analysis.json`` holds it (docs/analysis.md).  A wire an
    estimator refuses keeps the reason in its ``errors``; when every wire
    is refused, or the loss curvature cannot be measured, an
    :class:`~catnet.analysis.errors.AnalysisError` says why (its ``step``
    is ``"intrinsic"`` or ``"hessian"``).  An unknown wire is E0201 and
    inputs that do not fit the model E0802, as ``collect`` reports them.
    """
    from . import activations

    progress = progress or Progress(None)
    inputs = tuple(x) if isinstance(x, (tuple, list)) else (x,)
    chosen = activations.select(model.diagram, wires)
    acts = activations.collect(model, inputs if len(inputs) > 1 else inputs[0], [w.name for w in chosen], batch_size=batch_size)
    n = int(np.shape(inputs[0])[0])
    progress.line(f"collected {len(acts)} wires on {n} examples")
    rows = intrinsic_rows(acts, bootstrap, seed, progress)
    failed = [r for r in rows if all(r[m] is None for m in METHODS)]
    if len(failed) == len(rows):
        first = failed[0]
        raise AnalysisError(f"no intrinsic dimension could be estimated on any wire; `{first['name']}`: "
                            f"{next(iter(first['errors'].values()))}", step="intrinsic")
    kinds = {w.name: w for w in chosen}
    for r in rows:
        r["type"], r["kind"] = kinds[r["name"]].type, kinds[r["name"]].kind
    if data_curvature_points is not None:
        data_curvature(acts, rows, data_curvature_points, seed, progress)
    curvature = None
    if hessian and target is not None:
        m = min(hessian_samples, n)
        target = np.asarray(target)
        if loss is None:
            loss = "cross_entropy" if np.issubdtype(target.dtype, np.integer) else "mse"
        try:
            curvature = loss_curvature(model, tuple(np.asarray(a)[:m] for a in inputs), target[:m], loss, hessian_k, probes, seed, progress)
        except AnalysisError as error:
            raise AnalysisError(f"the loss curvature cannot be measured: {error}", step="hessian") from None
    return {"examples": n, "wires": rows, "hessian": curvature}
