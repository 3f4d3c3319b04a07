"""Hostile inputs of the compile path that have a command line: models too big for memory.

Both end in E0603 from the estimate ``catnet train`` makes before JAX
allocates anything (``catnet.budget.require_fits``), located at the entry
and naming the biggest box.  The Python API's cases (``catnet.compile``
arguments, model inputs, the same two models compiled in-process) are in
``tests/test_api.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from hostile import Case

#: The issue's 512 GiB model: one `dense` from 262144 to 524288 reals.
DENSE_512_GIB = "object A = R[262144]\nobject B = R[524288]\nmorphism big : A -> B = dense\nmain big\n"
#: The issue's 2e16 parameters: a 1000 × 1000 `dense` repeated 2 × 10¹⁰ times, nested.
NESTED_2E16 = """object A = R[1000]
morphism l1 : A -> A = dense ; relu
morphism l2 : A -> A = repeat 100000 l1
morphism l3 : A -> A = repeat 100000 l2
morphism l4 : A -> A = repeat 2 l3
main l4
"""


def _train(source: str, width: int, classes: int) -> Callable[[Path], list[str]]:
    """``catnet train`` on a tiny `.npz` (8 examples, integer labels) for the model ``source``."""

    def setup(d: Path) -> list[str]:
        (d / "m.cat").write_text(source)
        labels = np.arange(8, dtype=np.int32) % classes
        np.savez(d / "d.npz", x=np.zeros((8, width), np.float32), y=labels)
        return ["train", "m.cat", "--data", "d.npz", "--out", "run", "--quiet", "--batch-size", "4"]

    return setup


CASES = [
    Case("api-train-dense-512-gib", _train(DENSE_512_GIB, 262144, 524288), "E0603",
         contains=("m.cat:3:10:", "137,439,477,760 parameters", "`dense` at 3:25", "--skip-memory-check")),
    Case("api-train-nested-repeat-2e16-params", _train(NESTED_2E16, 1000, 1000), "E0603",
         contains=("m.cat:5:10:", "20,020,000,000,000,000 parameters", "in 20,000,000,000 copies")),
]
