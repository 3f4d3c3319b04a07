"""Running Graphviz: DOT text to SVG, PNG or PDF bytes.

This is the only module of :mod:`catnet.render` that starts a process.  It
uses the ``dot`` program (Debian's ``graphviz`` package) rather than a Python
binding, so that the DOT text written by :mod:`catnet.render.dot` is exactly
what is drawn.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import zlib

from ..errors import CatnetError

#: Formats Graphviz draws, and the ``-T`` names it knows them by.
GRAPHVIZ_FORMATS = {"svg": "svg", "png": "png", "pdf": "pdf"}

#: How ``dot`` is run: every position is in the DOT already
#: (:mod:`catnet.render.dot`), so Graphviz only draws it — neato's ``-n2``
#: takes nodes, clusters, wires and labels where they are.
DRAW = ("-Kneato", "-n2")

#: Resolution of PNG output: enough for print at a column's width.
PNG_DPI = 200


def dot_program() -> str | None:
    """The path of Graphviz's ``dot``, or ``None`` when it is not installed."""
    return shutil.which("dot")


def run_dot(dot_text: str, fmt: str) -> bytes:
    """Draw ``dot_text`` as ``fmt`` (``svg``, ``png`` or ``pdf``) with ``dot``.

    Raises :class:`CatnetError` when ``dot`` is missing or fails, with a hint
    to use a format that needs no Graphviz.
    """
    assert fmt in GRAPHVIZ_FORMATS, fmt
    exe = dot_program()
    if exe is None:
        raise CatnetError(
            "E0602",
            f"drawing {fmt.upper()} needs Graphviz's `dot` program, which is not installed",
            help="install Graphviz (on Debian: `apt-get install graphviz`), or write `.dot` or `.tex` output",
        )
    cmd = [exe, *DRAW, f"-T{GRAPHVIZ_FORMATS[fmt]}"]
    if fmt == "png":
        cmd.append(f"-Gdpi={PNG_DPI}")
    try:
        proc = subprocess.run(cmd, input=dot_text.encode("utf-8"), capture_output=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CatnetError("E0602", f"Graphviz's `dot` could not draw the diagram: {exc}") from None
    if proc.returncode != 0:
        detail = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise CatnetError(
            "E0602",
            f"Graphviz's `dot` failed to draw the diagram (exit code {proc.returncode})",
            notes=detail[-3:],
            help="write `.dot` output and run `dot` on it to see the full message",
        )
    if fmt == "png":
        return with_dpi(proc.stdout, PNG_DPI)
    if fmt == "pdf":
        return fixed_date(proc.stdout)
    return proc.stdout


#: The creation date every PDF says, so that one diagram gives the same bytes
#: whenever it is drawn (cairo writes the clock's time otherwise).
PDF_DATE = b"D:20000101000000Z"

_PDF_DATE = re.compile(rb"/CreationDate \(D:\d{14}Z\)")


def fixed_date(pdf: bytes) -> bytes:
    """``pdf`` with its creation date replaced by :data:`PDF_DATE`.

    The date has the same length, so the cross-reference table's byte
    offsets stay right.
    """
    return _PDF_DATE.sub(b"/CreationDate (" + PDF_DATE + b")", pdf)


def with_dpi(png: bytes, dpi: int) -> bytes:
    """``png`` with a ``pHYs`` chunk saying its resolution, so it is placed at its size in print.

    Graphviz scales the pixels for ``-Gdpi`` but writes no resolution; the
    chunk goes right after the header, as the PNG specification asks.
    """
    if png[12:16] != b"IHDR" or b"pHYs" in png[:64]:
        return png
    per_metre = round(dpi / 0.0254)
    body = b"pHYs" + struct.pack(">IIB", per_metre, per_metre, 1)
    chunk = struct.pack(">I", 9) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)
    end = 8 + 12 + 13  # signature, then the IHDR chunk (length, type, 13 bytes, CRC)
    return png[:end] + chunk + png[end:]
