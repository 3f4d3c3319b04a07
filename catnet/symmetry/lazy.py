"""NumPy, imported on first use.

Checking a file whose wires carry a group needs the group's table and a
few facts about representations (their size, whether they are trivial or
permutations), which :mod:`catnet.symmetry.groups` and
:mod:`catnet.symmetry.reps` compute in plain Python.  NumPy is needed only
for the matrices that lowering, `verify` and the equivariant bases use;
importing it costs about 65 ms, a third of a fresh ``catnet check``, so
the symmetry modules name it through this stand-in, which imports it the
first time one of its attributes is read.
"""

from __future__ import annotations

from typing import Any


class _NumPy:
    """Reads through to ``numpy`` (imported on the first read)."""

    def __getattr__(self, name: str) -> Any:
        import numpy

        return getattr(numpy, name)


np: Any = _NumPy()
