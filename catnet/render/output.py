"""Running Graphviz: DOT text to SVG, PNG or PDF bytes.

This is the only module of :mod:`catnet.render` that starts a process.  It
uses the ``dot`` program (Debian's ``graphviz`` package) rather than a Python
binding, so that the DOT text written by :mod:`catnet.render.dot` is exactly
what is drawn.
"""

from __future__ import annotations

import shutil
import subprocess

from ..errors import CatnetError

#: Formats Graphviz draws, and the ``-T`` names it knows them by.
GRAPHVIZ_FORMATS = {"svg": "svg", "png": "png", "pdf": "pdf"}

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
    cmd = [exe, f"-T{GRAPHVIZ_FORMATS[fmt]}"]
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
    return proc.stdout
