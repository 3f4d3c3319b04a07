"""How much memory a model needs, from its IR alone, before anything is built.

``catnet.compile`` and ``catnet train`` ask :func:`require_fits` first, so a
model that cannot fit ends in a located E0603 naming its biggest boxes
instead of an allocation failure inside XLA.  JAX-free; when JAX is already
loaded, the default device's memory limit is what must suffice.

The estimate (:func:`estimate`), in float32 values of 4 bytes:

* **parameters** by the summary's rules (``catnet.summary``): each
  generator's count from :func:`catnet.summary.generator_params`, every
  box occurrence fresh weights, ``repeat n`` ``n`` copies, a ``shared``
  instance once however often it is used;
* **activations**: the elements of the domain wires and of every output
  wire a box computes (aliases such as ``copy`` and ``swap`` cost
  nothing), at each use of a shared instance, times the batch.  A forward
  pass reuses one run's buffers for every run of a ``repeat`` or ``scan``
  body; training keeps them all (``n`` runs of ``repeat n``, one per step
  of a ``scan`` of known length).  A size known only from the inputs (a
  free sequence length ``T``) counts as 1, so the estimate is a lower
  bound there;
* **training** keeps gradients and Adam's two moments with the weights
  (parameters × 4) and the forward values with their gradients for the
  backward pass (activations × 2).

Counts are exact Python integers, so 10¹⁶ parameters under nested
``repeat`` are counted, not overflowed.  The IR shares a definition's body
between its uses, so the walk visits each distinct box once and carries
how often it occurs (a product of ``repeat`` counts), instead of expanding
the tree: its cost grows with the file, not with the model, and it keeps
no Python recursion, whatever the nesting depth.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from . import dims
from .errors import CatnetError
from .ir import Box, Diagram, Ob, Span
from .lower import names
from .summary import generator_params

#: Bytes of one value (float32 weights and activations, int32 ids).
VALUE_BYTES = 4
#: Training keeps the weights, their gradients and Adam's two moments.
TRAIN_PARAM_FACTOR = 4
#: Training keeps each forward value and its gradient for the backward pass.
TRAIN_ACTIVATION_FACTOR = 2
#: Structural boxes whose outputs are their inputs: no new memory.
ALIASES = frozenset({"id", "swap", "copy", "discard", "fst", "snd"})


@dataclass(frozen=True)
class Heavy:
    """One generator as written in the source, with every parameter it brings.

    ``copies`` is how many parameter sets it owns in the model (``repeat``
    counts, uses in several definitions); ``params`` is their total.
    """

    name: str
    span: Span | None
    params: int
    copies: int

    def where(self, file: str | None = None) -> str:
        """``line:column``, with the file in front when it is not ``file``."""
        if self.span is None:
            return "an unknown place"
        at = f"{self.span.line}:{self.span.column}"
        return at if self.span.file == file else f"{self.span.file}:{at}"


@dataclass(frozen=True)
class Estimate:
    """The memory a model needs; sizes in values, ``bytes`` in bytes."""

    params: int
    activations: int  # elements computed for one example
    batch: int
    training: bool
    heavy: tuple[Heavy, ...]  # generators with parameters, biggest first

    @property
    def param_bytes(self) -> int:
        return self.params * VALUE_BYTES * (TRAIN_PARAM_FACTOR if self.training else 1)

    @property
    def activation_bytes(self) -> int:
        return self.activations * self.batch * VALUE_BYTES * (TRAIN_ACTIVATION_FACTOR if self.training else 1)

    @property
    def bytes(self) -> int:
        return self.param_bytes + self.activation_bytes


def _elements(ob: Ob) -> int:
    """Values of one wire for one example; unknown symbols count as 1."""
    n = 1
    for d in ob.shape:
        v = dims.subst(d, {s: 1 for s in dims.symbols(d)})
        n *= max(int(v), 1)  # type: ignore[arg-type]
    return n


def _children(box: Box) -> Iterable[Box]:
    if box.kind in ("generator", "structural") or box.body is None:
        return ()
    return (layer.box for layer in box.body.layers)


def _copies_per_use(box: Box) -> int:
    """How many parameter sets of its body a box owns (Para: ``repeat n`` owns ``n``)."""
    return int(box.kwargs["n"]) if box.kind == "repeat" else 1  # type: ignore[arg-type]


def _once(box: Box) -> int:
    return 1


def _runs_per_use(box: Box) -> int:
    """How often a box runs its body each time it runs."""
    if box.kind == "repeat":
        return int(box.kwargs["n"])  # type: ignore[arg-type]
    if box.kind == "scan" and box.dom.obs and box.dom.obs[0].shape:
        length = box.dom.obs[0].shape[0]
        return length if isinstance(length, int) else 1
    return 1


def _counts(roots: Iterable[tuple[Box, int]], *, into_shared: bool, per_use: Callable[[Box], int]) -> dict[int, tuple[Box, int]]:
    """How often each distinct box (by identity) occurs, from weighted roots.

    A topological walk over the boxes as the IR shares them: a box's count
    is the sum over its parents of the parent's count times ``per_use``.
    Unless ``into_shared``, edges into boxes with a ``shared`` name are not
    followed (their instance is a root of its own).
    """
    roots = list(roots)
    nodes: dict[int, Box] = {}
    indegree: dict[int, int] = {}
    stack = [b for b, _ in roots]
    for b in stack:
        indegree.setdefault(id(b), 0)
    while stack:
        box = stack.pop()
        if id(box) in nodes:
            continue
        nodes[id(box)] = box
        for child in _children(box):
            if child.shared is not None and not into_shared:
                continue
            indegree[id(child)] = indegree.get(id(child), 0) + 1
            if id(child) not in nodes:
                stack.append(child)
    count: dict[int, int] = {}
    for b, n in roots:
        count[id(b)] = count.get(id(b), 0) + n
    ready = [i for i in nodes if indegree[i] == 0]
    out: dict[int, tuple[Box, int]] = {}
    while ready:
        i = ready.pop()
        box, n = nodes[i], count.get(i, 0)
        out[i] = (box, n)
        factor = per_use(box)
        for child in _children(box):
            if child.shared is not None and not into_shared:
                continue
            count[id(child)] = count.get(id(child), 0) + n * factor
            indegree[id(child)] -= 1
            if indegree[id(child)] == 0:
                ready.append(id(child))
    return out


def estimate(diagram: Diagram, *, batch: int = 1, training: bool = False) -> Estimate:
    """The parameters and activations of the model of a checked diagram.

    Parameter sizes must be numbers (``check.require_lowerable`` makes sure;
    a symbolic one raises its E0304 here too).
    """
    top = [(layer.box, 1) for layer in diagram.layers]
    unshared = [(b, n) for b, n in top if b.shared is None]
    own = _counts(unshared + [(b, 1) for b in names.shared_instances(diagram).values()], into_shared=False, per_use=_copies_per_use)
    # Generators with parameters, grouped by where they are written.
    totals: dict[tuple[str, str, int, int], tuple[Box, int, int]] = {}
    params = 0
    for box, n in own.values():
        each = generator_params(box) if box.kind == "generator" and n else 0
        if each == 0:
            continue
        params += n * each
        sp = box.span
        key = (box.name, sp.file, sp.line, sp.column) if sp is not None else (box.name, "", 0, 0)
        first, total, copies = totals.get(key, (box, 0, 0))
        totals[key] = (first, total + n * each, copies + n)
    # Training keeps every step's values of a `repeat` or `scan` for the
    # backward pass; a forward pass reuses one step's buffers.
    runs = _counts(top, into_shared=True, per_use=_runs_per_use if training else _once)
    activations = sum(_elements(ob) for ob in diagram.dom.obs)
    for box, n in runs.values():
        if box.kind == "generator" or (box.kind == "structural" and box.name not in ALIASES):
            activations += n * sum(_elements(ob) for ob in box.cod.obs)
    ranked = sorted(totals.items(), key=lambda kv: (-kv[1][1], kv[0]))
    heavy = tuple(Heavy(box.name, box.span, total, copies) for _, (box, total, copies) in ranked)
    return Estimate(params, activations, batch, training, heavy)


# -- the memory there is -----------------------------------------------------------


def _read_int(path: str) -> int | None:
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def host_memory() -> int | None:
    """Bytes the host can still give this process: ``MemAvailable``, within a cgroup's limit."""
    found: int | None = None
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    found = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        found = None
    if found is None:
        try:
            found = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            found = None
    # A container's memory limit (cgroup v2) can be far below the host's.
    limit, used = _read_int("/sys/fs/cgroup/memory.max"), _read_int("/sys/fs/cgroup/memory.current")
    if limit is not None:
        room = max(limit - (used or 0), 0)
        found = room if found is None else min(found, room)
    return found


def available_memory() -> tuple[int, str] | None:
    """Bytes a new model may use, and where that figure comes from; ``None`` if unknown.

    When JAX is loaded and its default device reports a memory limit (GPUs
    and TPUs do), the device's free memory; otherwise the host's.
    """
    jax = sys.modules.get("jax")
    if jax is not None:
        try:
            device = jax.local_devices()[0]
            stats = device.memory_stats()
        except (RuntimeError, NotImplementedError, AttributeError, IndexError):
            stats = None  # a backend that cannot say: the host's memory is the next best figure
        if stats and "bytes_limit" in stats:
            free = int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))
            return max(free, 0), f"the device {device} has"
    host = host_memory()
    return (host, "this machine has") if host is not None else None


# -- the check ------------------------------------------------------------------------


def size_text(n: int) -> str:
    """Bytes for people: ``512 GiB``, ``1.5 MiB``; past exbibytes, a power of ten."""
    if n < 1024:
        return f"{n} bytes"
    for i, unit in enumerate(("KiB", "MiB", "GiB", "TiB", "PiB", "EiB"), start=1):
        if n < 1024 ** (i + 1):
            return f"{n / 1024**i:.1f}".rstrip("0").rstrip(".") + f" {unit}"
    return f"about 10^{len(str(n)) - 1} bytes"


def require_fits(
    diagram: Diagram,
    *,
    batch: int = 1,
    training: bool = False,
    entry: str = "the entry",
    available: int | None = None,
    span: Span | None = None,
) -> Estimate:
    """The estimate, or E0603 when it exceeds the memory available.

    ``available`` is in bytes; by default :func:`available_memory` (the
    check is skipped when nothing reports a figure).  The error is placed at
    ``span`` (the entry's definition) when given, else at the biggest box;
    it names the three biggest boxes with their location, parameters and
    bytes, and says how to override the check.
    """
    est = estimate(diagram, batch=batch, training=training)
    if available is not None:
        limit, has = available, "the limit given is"
    else:
        found = available_memory()
        if found is None:
            return est
        limit, has = found
    if est.bytes <= limit:
        return est
    who = "the model" if entry == "the entry" else f"`{entry}`"
    doing = "to train" if training else "to build and run"
    per = TRAIN_PARAM_FACTOR if training else 1
    kept = " (weights, gradients and Adam's two moments)" if training else ""
    notes = [
        f"{est.params:,} parameters: {size_text(est.param_bytes)} as float32{kept}",
        f"activations for a batch of {batch:,}: {size_text(est.activation_bytes)}",
    ]
    place = span if span is not None else next((h.span for h in est.heavy if h.span is not None), None)
    for h in est.heavy[:3]:
        copies = f" in {h.copies:,} copies" if h.copies > 1 else ""
        at = h.where(place.file if place is not None else None)
        notes.append(f"`{h.name}` at {at}: {h.params:,} parameters{copies}, {size_text(h.params * VALUE_BYTES * per)}")
    budget = f"{has} {size_text(limit)}" + ("" if available is not None else " free")
    raise CatnetError(
        "E0603",
        f"{who} needs about {size_text(est.bytes)} of memory {doing}, but {budget}",
        place,
        notes=notes,
        help="make the biggest boxes smaller; to try anyway, pass `check_memory=False` to `catnet.compile` "
        "(`--skip-memory-check` to `catnet train`)",
    )
