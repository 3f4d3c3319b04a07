"""``catnet summary``: every box with its type, parameter count and sharing.

The counts come from the checked IR alone, by the same rules the lowering
uses to build its modules (``catnet.lower.ops``), so the command answers
without importing JAX; a test keeps the two in step by counting the
``nnx.Param`` leaves of the lowered model.

Para semantics decide the total: every box occurrence owns fresh
parameters, ``repeat n f`` owns ``n`` copies of ``f``'s, and a ``shared``
instance is counted once however often, and at however many sizes, it is
used.  A tied use (``transposed(wte)``) adds none: its row says whose
parameters it uses, and an instance used only that way still counts once.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Callable, Iterator

from . import dims
from .check.lowerable import parameter_size
from .ir import Box, Diagram, Layer, fold_bodies
from .library import GENERATORS
from .lower import names


def _size(d: dims.Dim, box: Box) -> int:
    return parameter_size(d, box)


def generator_params(box: Box) -> int:
    """Parameters of one occurrence of a generator: the library's ``count`` rule."""
    g = GENERATORS.get(box.name)
    if g is None or not g.params:
        return 0
    assert g.count is not None, f"no parameter rule for `{box.name}`"
    return int(g.count(box, lambda d: _size(d, box)))


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


def box_params(box: Box) -> int:
    """Parameters one occurrence of ``box`` adds; a shared instance adds 0 (it is counted once)."""
    return 0 if box.shared is not None else _unshared_params(box)


def _unshared_params(box: Box) -> int:
    """Parameters of ``box`` as if it were not shared (shared boxes inside count 0)."""
    return _box_value(box, _body_params)


def _box_value(box: Box, of: Callable[[Diagram], int]) -> int:
    if box.kind in ("generator", "structural"):
        return generator_params(box)
    assert box.body is not None
    inner = of(box.body)
    if box.kind == "repeat":
        return int(box.kwargs["n"]) * inner  # type: ignore[arg-type]
    return inner


def _body_params(d: Diagram) -> int:
    """Parameters of a body, shared instances left out; folded once per body (no recursion)."""
    return fold_bodies(d, "_summary_params", lambda box, of: 0 if box.shared is not None else _box_value(box, of), sum)


def total_params(diagram: Diagram) -> int:
    """All parameters of the model of ``diagram``: what training updates.

    Every box occurrence owns fresh parameters, ``repeat n f`` owns ``n``
    copies, and each ``shared`` instance counts once wherever it is used.
    """
    shared = names.shared_instances(diagram)
    return _body_params(diagram) + sum(_unshared_params(box) for box in shared.values())


def _kind(box: Box) -> str:
    if box.kind == "generator":
        return box.name
    if box.kind == "repeat":
        return f"repeat {box.kwargs['n']}"
    return box.kind


#: Rows are listed down to this many levels of nesting unless ``depth`` says otherwise.
MAX_DEPTH = 32


def _rows(diagram: Diagram, depth: int) -> Iterator[Row]:
    """The table's rows, outer boxes first; an explicit stack, so nesting depth costs no recursion.

    A frame is (layers with their slots, path prefix, nesting level, notes
    that every row in it carries, innermost ``repeat`` first).
    """
    seen: set[str] = set()
    stack: list[tuple[Iterator[tuple[Layer, tuple[str, int | None] | None]], str, int, tuple[str, ...]]] = [
        (iter(zip(diagram.layers, names.slots(diagram))), "", 0, ())
    ]
    while stack:
        it, prefix, level, notes = stack[-1]
        item = next(it, None)
        if item is None:
            stack.pop()
            continue
        layer, slot = item
        box = layer.box
        if box.kind == "structural":
            continue
        name = box.name if slot is None else slot[0] + ("" if slot[1] is None else f"[{slot[1]}]")
        # a bundle's trivialization is one instance on the model's root, named after the bundle
        path = names.attribute(box.shared) if box.shared is not None and box.kind == "generator" else f"{prefix}{name}"
        type_ = f"{box.dom} -> {box.cod}"
        deeper = box.body is not None and level + 1 > depth
        folded = "deeper boxes not listed (--depth)" if deeper and box.body.layers else ""  # type: ignore[union-attr]
        if box.shared is not None:
            first = box.shared not in seen
            seen.add(box.shared)
            note = f"shared `{box.shared}`" + ("" if first else ", counted once")
            yield Row(path, level, _kind(box), type_, _unshared_params(box), _join(note, folded, *notes))
            if first and box.body is not None and not deeper:
                stack.append((iter(zip(box.body.layers, names.slots(box.body))), f"{box.shared}.", level + 1, notes))
            continue
        yield Row(path, level, _kind(box), type_, box_params(box), _join(_tied_note(box), folded, *notes))
        if box.body is None or deeper:
            continue
        body = names.inner_body(box)
        if box.kind == "repeat":
            inner = (f"each of {box.kwargs['n']} copies",) + notes
            stack.append((iter(zip(body.layers, names.slots(body))), f"{path}[*].", level + 1, inner))
        else:
            stack.append((iter(zip(body.layers, names.slots(body))), f"{path}.", level + 1, notes))


def _tied_note(box: Box) -> str:
    """``tied to `wte` (800 parameters, counted once)`` for a box that uses a shared instance's weights."""
    return "; ".join(f"tied to `{b.shared}` ({_unshared_params(b):,} parameters, counted once)" for b in names.tied_instances(box))


def _join(*notes: str) -> str:
    return "; ".join(n for n in notes if n)


def summarize(diagram: Diagram, depth: int | None = None) -> Summary:
    """The table rows (every non-structural box, nested to ``depth`` levels) and the total."""
    return Summary(tuple(_rows(diagram, MAX_DEPTH if depth is None else depth)), total_params(diagram))


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
    from .cli import add_entry_argument, add_root_argument, depth

    parser.add_argument("file", help="a .cat file")
    add_entry_argument(parser, "the morphism to summarize (default: the file's `main`)")
    parser.add_argument("--depth", type=depth, metavar="N", default=None,
                        help=f"list boxes nested up to N levels deep (default {MAX_DEPTH}); the total counts every level")
    parser.add_argument("--format", choices=("text", "json"), default="text",
                        help="text (default): a table; json: one JSON document (schema in docs/editors.md)")
    add_root_argument(parser)


def run(args: argparse.Namespace) -> int:
    import catnet

    module = catnet.load(args.file, root=args.root)
    diagram = module.diagram(args.entry)
    name = args.entry or getattr(module, "entry", None) or ""
    summary = summarize(diagram, args.depth)
    if args.format == "json":
        import json

        print(json.dumps(to_json(summary, args.file, name, diagram), ensure_ascii=False, indent=2))
        return 0
    title = f"{args.file}: {name} : {diagram.dom} -> {diagram.cod}" if name else f"{args.file}"
    print(render(summary, title))
    return 0


#: The ``schema`` of ``catnet summary --format json``; it changes only when the format does.
JSON_SCHEMA = "catnet-summary/1"


def to_json(summary: Summary, file: str, entry: str, diagram: Diagram) -> dict:
    """The table as data: the morphism, one object per row (the columns of the text table), the total."""
    rows = [{"box": r.path, "depth": r.depth, "kind": r.kind, "type": r.type, "params": r.params, "notes": r.note}
            for r in summary.rows]
    return {"schema": JSON_SCHEMA, "file": file, "entry": entry, "type": f"{diagram.dom} -> {diagram.cod}",
            "rows": rows, "total": summary.total}
