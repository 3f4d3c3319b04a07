"""Draw the figures of docs/rendering.md, docs/symmetry.md and the README again.

Every figure is `catnet render` at the default page (6.5 in wide, aspect at
most 4), as PNG at 200 dpi; the TikZ ones are compiled with `pdflatex` and
rasterized with `pdftoppm` (skipped, with a note, where either is missing).
The flow and bundle pictures are drawn from the sources the render tests
check (tests/test_render_flows.py).

    python bench/render_figures.py [--out docs/figures]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

EX = ROOT / "examples"
GOLDEN = ROOT / "tests" / "golden" / "render"

#: (figure, source, keyword arguments of catnet.render); a source is a path or a key of SOURCES.
FIGURES = [
    ("digits_cnn", EX / "digits_cnn.cat", {}),
    ("residual", EX / "residual.cat", {}),
    ("transformer_depth1", EX / "transformer.cat", {"depth": 1}),
    ("transformer_depth2", EX / "transformer.cat", {"depth": 2}),
    ("siamese_params", EX / "siamese.cat", {"params": True}),
    ("siamese_params_depth0", EX / "siamese.cat", {"params": True, "depth": 0}),
    ("gru_cell", EX / "gru_digits.cat", {"morphism": "gru"}),
    ("scan_rnn", EX / "rnn.cat", {}),
    ("scan_rnn_depth1", EX / "rnn.cat", {"depth": 1}),
    ("inv_flow", "flow", {"morphism": "flow"}),
    ("inv_sampler", "flow", {"morphism": "sampler"}),
    ("render_bundle_roundtrip", "bundle", {"morphism": "roundtrip"}),
    ("symmetry_c4", GOLDEN / "symmetry_c4.cat", {}),
    ("symmetry_sets", GOLDEN / "symmetry_sets.cat", {}),
]

TIKZ = [
    ("transformer_tikz", EX / "transformer.cat", {"depth": 1, "params": True}),
    ("scan_rnn_tikz", EX / "rnn.cat", {}),
    ("render_bundle_tikz", "bundle", {"morphism": "roundtrip"}),
    ("symmetry_c4_tikz", GOLDEN / "symmetry_c4.cat", {}),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "figures")
    args = parser.parse_args()

    import catnet
    from test_render_flows import BUNDLE, FLOW

    sources = {"flow": catnet.loads(FLOW, "flow.cat"), "bundle": catnet.loads(BUNDLE, "bundle.cat")}

    def source(s: object) -> object:
        return sources[s] if isinstance(s, str) else str(s)

    for name, src, kwargs in FIGURES:
        catnet.render(source(src), args.out / f"{name}.png", **kwargs)
        print(f"  {name}.png")
    pdflatex, pdftoppm = shutil.which("pdflatex"), shutil.which("pdftoppm")
    if pdflatex is None or pdftoppm is None:
        print("  TikZ figures skipped: they need pdflatex and pdftoppm (Debian: texlive-latex-extra, poppler-utils)")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        for name, src, kwargs in TIKZ:
            tex = Path(tmp) / f"{name}.tex"
            catnet.render(source(src), tex, **kwargs)
            subprocess.run([pdflatex, "-interaction=nonstopmode", "-halt-on-error", tex.name], cwd=tmp,
                           check=True, capture_output=True)
            subprocess.run([pdftoppm, "-png", "-r", "200", "-singlefile", f"{name}.pdf", str(args.out / name)],
                           cwd=tmp, check=True, capture_output=True)
            print(f"  {name}.png (TikZ)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
