"""Figures fit their page: width, aspect and the printed size of their text, read from the SVG.

Every example, the transformer opened two levels deep and twelve unrolled
transformer blocks are drawn at the default page (6.5 in, aspect at most 4)
and at a narrower one; the SVG Graphviz writes is read back for the size of
the picture and of every piece of text in it.  A figure wider than its page
would be scaled down to fit, and its text with it: the smallest text, so
scaled, must still print at 7 pt or more.
"""

from __future__ import annotations

import re
import struct
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import catnet
from catnet.render.output import PNG_DPI, dot_program
from catnet.render.style import DEFAULT_MAX_ASPECT, DEFAULT_WIDTH, MIN_FONT

from conftest import EXAMPLES, ROOT

pytestmark = pytest.mark.skipif(dot_program() is None, reason="Graphviz's `dot` is not installed (Debian package graphviz)")

SVG = "{http://www.w3.org/2000/svg}"


def unrolled(blocks: int) -> catnet.Module:
    """The transformer example with its block written out ``blocks`` times, each its own box."""
    text = (ROOT / "examples" / "transformer.cat").read_text(encoding="utf-8")
    chain = " ; ".join(["block"] * blocks)
    text = text.replace("main encoder", f"morphism deep : Tokens -> Logits =\n  embed(vocab=256) ; {chain} ; layernorm ; dense\n\nmain deep")
    return catnet.loads(text, "deep.cat")


def measure(svg: str) -> tuple[float, float, float]:
    """(width, height, smallest font size) of an SVG, in points as it prints."""
    root = ET.fromstring(svg)
    width = float(root.get("width", "0").removesuffix("pt"))
    height = float(root.get("height", "0").removesuffix("pt"))
    view = [float(v) for v in root.get("viewBox", "0 0 0 0").split()]
    # Graphviz writes the size in whole points and the view box exactly: a
    # difference under a point is that rounding, not a scale.
    scale = width / view[2] if view[2] and abs(width - view[2]) >= 1.0 else 1.0
    for g in root.iter(f"{SVG}g"):
        m = re.search(r"scale\(([\d.]+)", g.get("transform", ""))
        if m:
            scale *= float(m.group(1))
    sizes = [float(t.get("font-size", "14")) for t in root.iter(f"{SVG}text")]
    return width, height, min(sizes) * scale


CASES = [(p.stem, str(p), {}) for p in EXAMPLES] + [
    ("transformer.depth2", str(ROOT / "examples" / "transformer.cat"), {"depth": 2}),
    ("siamese.params", str(ROOT / "examples" / "siamese.cat"), {"params": True}),
    ("transformer.params", str(ROOT / "examples" / "transformer.cat"), {"params": True, "depth": 2}),
]


def _check(svg: str, width: float, aspect: float, what: str) -> None:
    w, h, smallest = measure(svg)
    printed = smallest * min(1.0, width / w)
    assert w <= width + 1.0, f"{what}: {w:.0f} pt wide for a {width:.0f} pt page"
    assert w / h <= aspect + 1e-6, f"{what}: aspect {w / h:.2f} above {aspect}"
    assert printed >= MIN_FONT - 1e-6, f"{what}: text prints at {printed:.2f} pt"


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_every_figure_fits_the_default_page(case: tuple) -> None:
    name, source, kwargs = case
    _check(catnet.render(source, format="svg", **kwargs), DEFAULT_WIDTH, DEFAULT_MAX_ASPECT, name)


def test_twelve_unrolled_blocks_wrap_into_a_page() -> None:
    module = unrolled(12)
    _check(catnet.render(module, format="svg"), DEFAULT_WIDTH, DEFAULT_MAX_ASPECT, "12 blocks")
    # Drawn one level deep, as single boxes, they still wrap into rows.
    _check(catnet.render(module, format="svg", depth=0), DEFAULT_WIDTH, DEFAULT_MAX_ASPECT, "12 blocks, depth 0")


def test_a_narrower_page_and_aspect_are_met() -> None:
    # A column of a two-column paper; the transformer opened two levels
    # needs a little more (its attention box and the boxes around it).
    narrow = [(name, str(ROOT / "examples" / f"{name}.cat"), {}) for name in ("digits_cnn", "siamese", "autoencoder")]
    for name, source, kwargs in narrow:
        _check(catnet.render(source, format="svg", width="3.25in", max_aspect=2.5, **kwargs), 3.25 * 72, 2.5, name)
    for name, source, kwargs in CASES[-3::2]:
        _check(catnet.render(source, format="svg", width="4.5in", max_aspect=2.5, **kwargs), 4.5 * 72, 2.5, name)


def test_pngs_say_their_resolution_and_pdfs_their_fixed_date(tmp_path: Path) -> None:
    png = catnet.render(str(ROOT / "examples" / "residual.cat"), format="png")
    assert isinstance(png, bytes) and png[12:16] == b"IHDR" and png[37:41] == b"pHYs"
    x, y, unit = struct.unpack(">IIB", png[41:50])
    assert (x, y, unit) == (round(PNG_DPI / 0.0254),) * 2 + (1,)
    first = catnet.render(str(ROOT / "examples" / "residual.cat"), format="pdf")
    assert b"/CreationDate (D:20000101000000Z)" in first
    assert catnet.render(str(ROOT / "examples" / "residual.cat"), format="pdf") == first


def test_bad_page_requests_are_located_errors() -> None:
    for kwargs in ({"width": "3x"}, {"width": -1}, {"max_aspect": 0}, {"width": "0in"}):
        with pytest.raises(catnet.CatnetError) as err:
            catnet.render(str(ROOT / "examples" / "residual.cat"), **kwargs)
        assert err.value.code == "E0208"
