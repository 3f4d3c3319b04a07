"""What checks but cannot be compiled yet."""

from __future__ import annotations

from .. import dims
from ..errors import CatnetError
from ..ir import Diagram

#: Boxes the checker types but no lowering implements yet, with what they are.
NOT_LOWERED = {"proj": "bundle projection", "triv": "bundle trivialization"}


def require_lowerable(d: Diagram, entry: str) -> None:
    """Refuse, with E0601, what checks but cannot be compiled yet.

    Bundles, group actions, and the bundle generators are part of the
    language and the IR, but the lowering does not implement them yet.  Sizes
    that size parameters must be known numbers (only free sequence lengths
    may stay symbolic).
    """
    for _, box in d.walk():
        if box.name in NOT_LOWERED and box.kind == "structural":
            raise CatnetError("E0601", f"compiling a {NOT_LOWERED[box.name]} (`{box.name}`) is not supported yet", box.span,
                              notes=[f"in `{entry}`"], help="`catnet check` and `catnet render` accept it; training does not yet")
        for ob in box.dom.obs + box.cod.obs:
            if ob.base == "bundle" or ob.group:
                what = "bundle" if ob.base == "bundle" else f"G-space (under {ob.group})"
                raise CatnetError("E0601", f"compiling a {what} wire `{ob}` is not supported yet", box.span,
                                  notes=[f"`{box.name}` in `{entry}` touches it"])
        for key, value in box.args:
            if key in ("features", "vocab", "size") and value is not None and not isinstance(value, int):
                raise CatnetError("E0304", f"`{box.name}` needs a known {key}, but it is `{dims.show(value)}`", box.span,  # type: ignore[arg-type]
                                  notes=[f"in `{entry}`"], help="give the size a number in the entry's types")
