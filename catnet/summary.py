"""``catnet summary``: every box with its type, parameter count and sharing.

The counts come from the checked IR alone, by the same rules the lowering
uses to build its modules (``catnet.lower.ops``), so the command answers
without importing JAX; a test keeps the two in step by counting the
``nnx.Param`` leaves of the lowered model.

Para semantics decide the total: every box occurrence owns fresh
parameters, ``repeat n f`` owns ``n`` copies of ``f``'s, and a ``shared``
instance is counted once however often it is used.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Iterator

from . import dims
from .check.lowerable import parameter_size
from .ir import Box, Diagram
from .library import GENERATORS
from .lower import names


def _size(d: dims.Dim, box: Box) -> int:
    return parameter_size(d, box)


def generator_params(box: Box) -> int:
    """Parameters of one occurrence of a generator (weights and biases)."""
    args = box.kwargs
    name = box.name
    if not GENERATORS.get(name, None) or not GENERATORS[name].params:
        return 0
    last = [_size(ob.shape[-1], box) for ob in box.dom.obs if ob.shape] if name != "embed" else []
    if name == "dense":
        f = _size(args["features"], box)  # type: ignore[arg-type]
        return last[0] * f + f
    if name == "conv":
        f = _size(args["features"], box)  # type: ignore[arg-type]
        spatial = len(box.dom.obs[0].shape) - 1
        return int(args["kernel"]) ** spatial * last[0] * f + f  # type: ignore[arg-type]
    if name in ("layernorm", "batchnorm"):
        return 2 * last[0]  # scale and bias; batch statistics are not parameters
    if name == "embed":
        return _size(args["vocab"], box) * _size(args["features"], box)  # type: ignore[arg-type]
    if name in ("attention", "cross_attention"):
        d = last[0]
        e = last[1] if len(last) == 2 else d
        return (d * d + d) + 2 * (e * d + d) + (d * d + d)  # query, key, value, out
    if name == "coupling":
        n, h = last[0], int(args["hidden"])  # type: ignore[arg-type]
        half, rest = n // 2, n - n // 2
        return (half * h + h) + (h * 2 * rest + 2 * rest)
    raise AssertionError(f"no parameter rule for `{name}`")


@dataclass(frozen=True)
class Row:
    """One box in the table; ``params`` is per occurrence (per copy in a repeat)."""

    path: str
    depth: int
    kind: str
    type: str
    params: int
    note: str = ""


@dataclass(frozen=True)
class Summary:
    rows: tuple[Row, ...]
    total: int


def box_params(box: Box, shared: dict[str, int] | None = None) -> int:
    """Parameters one occurrence of ``box`` adds, shared instances counted in ``shared``."""
    if box.shared is not None:
        if shared is not None and box.shared not in shared:
            shared[box.shared] = _unshared_params(box, shared)
        return 0
    return _unshared_params(box, shared)


def _unshared_params(box: Box, shared: dict[str, int] | None) -> int:
    if box.kind in ("generator", "structural"):
        return generator_params(box)
    assert box.body is not None
    inner = sum(box_params(layer.box, shared) for layer in box.body.layers)
    if box.kind == "repeat":
        return int(box.kwargs["n"]) * inner  # type: ignore[arg-type]
    return inner


def total_params(diagram: Diagram) -> int:
    """All parameters of the model of ``diagram``: what training updates."""
    shared: dict[str, int] = {}
    own = sum(box_params(layer.box, shared) for layer in diagram.layers)
    return own + sum(shared.values())


def _kind(box: Box) -> str:
    if box.kind == "generator":
        return box.name
    if box.kind == "repeat":
        return f"repeat {box.kwargs['n']}"
    return box.kind


def _rows(diagram: Diagram, prefix: str, depth: int, seen: set[str]) -> Iterator[Row]:
    for layer, slot in zip(diagram.layers, names.slots(diagram)):
        box = layer.box
        if box.kind == "structural":
            continue
        name = box.name if slot is None else slot[0] + ("" if slot[1] is None else f"[{slot[1]}]")
        path = f"{prefix}{name}"
        type_ = f"{box.dom} -> {box.cod}"
        if box.shared is not None:
            first = box.shared not in seen
            seen.add(box.shared)
            note = f"shared `{box.shared}`" + ("" if first else ", counted once")
            yield Row(path, depth, _kind(box), type_, _unshared_params(box, None), note)
            if first and box.body is not None:
                yield from _rows(box.body, f"{box.shared}.", depth + 1, seen)
            continue
        yield Row(path, depth, _kind(box), type_, box_params(box))
        if box.body is None:
            continue
        body = names.inner_body(box)
        if box.kind == "repeat":
            n = box.kwargs["n"]
            yield from (
                Row(r.path, r.depth, r.kind, r.type, r.params, (r.note + "; " if r.note else "") + f"each of {n} copies")
                for r in _rows(body, f"{path}[*].", depth + 1, seen)
            )
        else:
            yield from _rows(body, f"{path}.", depth + 1, seen)


def summarize(diagram: Diagram) -> Summary:
    """The table rows (every non-structural box, nested) and the total."""
    return Summary(tuple(_rows(diagram, "", 0, set())), total_params(diagram))


def render(summary: Summary, title: str = "") -> str:
    """A plain-text table, the total on the last line."""
    head = ("box", "kind", "type", "params", "notes")
    body = [(r.path, r.kind, r.type, f"{r.params:,}", r.note) for r in summary.rows]
    widths = [max(len(row[i]) for row in [head, *body]) for i in range(4)]
    lines = [title] if title else []

    def line(row: tuple[str, ...]) -> str:
        cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1]), row[2].ljust(widths[2]), row[3].rjust(widths[3])]
        return "  ".join(cells + ([row[4]] if row[4] else [])).rstrip()

    lines.append(line(head))
    lines.append("  ".join("-" * w for w in widths))
    lines.extend(line(row) for row in body)
    lines.append("  ".join("-" * w for w in widths))
    lines.append(line(("total", "", "", f"{summary.total:,}", "")))
    return "\n".join(lines)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="a .cat file")
    parser.add_argument("--entry", default=None, help="the morphism to summarize (default: the file's `main`)")


def run(args: argparse.Namespace) -> int:
    import catnet

    module = catnet.load(args.file)
    diagram = module.diagram(args.entry)
    name = args.entry or getattr(module, "entry", None) or ""
    title = f"{args.file}: {name} : {diagram.dom} -> {diagram.cod}" if name else f"{args.file}"
    print(render(summarize(diagram), title))
    return 0
