"""Hostile cases for groups and representations: what a file can ask the basis solver and the prover to build.

See ``tests/hostile.py`` for what every case must keep (time, memory, a
located diagnostic, no traceback).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from hostile import Case


def _file(text: str, *args: str, command: str = "check") -> Callable[[Path], list[str]]:
    def setup(d: Path) -> list[str]:
        (d / "x.cat").write_text(text, encoding="utf-8")
        return [command, "x.cat", *args]

    return setup


# 720 copies of regular(S6) on both sides: 373 million parameters, counted
# from characters (no basis is built to check or count it).
_HUGE = """object X = R[518400] under S6 as regular * 720
morphism f : X -> X equivariant under S6 = glinear
main f
"""

# A million copies of regular(C4): four million channels, one block.
_WIDE = """object X = R[4194304] under C4 as regular * 1048576
morphism f : X -> X equivariant under C4 = relu ; gpool ; glinear(features=4194304)
"""

# A representation whose dense matrices would take 4 GB (regular of a group of 720 elements).
_BIG_GROUP = """object X = R[720] under S6 as regular
object Y = R[720] under S6 as regular
morphism f : X -> Y equivariant under S6 = relu ; glinear ; relu
"""

# Tensor products that multiply dimensions past the limit.
_TENSOR = "object X = R[8] under D4 as " + " ⊗ ".join(["regular"] * 6) + "\n"

# A sum of 20,000 terms: nested too deeply for the parser's bound.
_SUM = "object X = R[20000] under C4 as " + " + ".join(["trivial"] * 20_000) + "\n"

# Many claimed definitions over a large group, each using the one before: a
# proved definition is trusted where it is used, so each proof is short.
_CLAIMS = "object S = R[6, 8] under S6\n" + "\n".join(
    f"morphism f{i} : S -> S equivariant under S6 = {'f' + str(i - 1) + ' ; ' if i else ''}dense ; relu"
    for i in range(1_000)) + "\n"


# A claim on top of 3,000 unclaimed definitions, each using the one before: the
# proof opens them without recursion, each body once.
_DEEP = "\n".join(["object S = R[6, 8] under S6", "morphism f0 : S -> S = dense ; relu"]
                  + [f"morphism f{i} : S -> S = f{i - 1} ; relu" for i in range(1, 3_000)]
                  + ["morphism top : S -> S equivariant under S6 = f2999 ; f2999"]) + "\n"


CASES = [
    Case("symmetry-373m-parameters-counted", _file(_HUGE, command="summary"), None, status=0),
    Case("symmetry-373m-parameters-not-compiled", _file(_HUGE, "--data", "digits", command="train"), "E0601"),
    Case("symmetry-a-million-copies", _file(_WIDE), None, status=0),
    Case("symmetry-regular-of-s6", _file(_BIG_GROUP, command="summary"), None, status=0),
    Case("symmetry-tensor-power", _file(_TENSOR), "E0321"),
    Case("symmetry-sum-of-20k-terms", _file(_SUM), "E0106"),
    Case("symmetry-1k-chained-claims", _file(_CLAIMS), None, status=0),
    Case("symmetry-claim-over-3k-nested-definitions", _file(_DEEP), None, status=0),
    Case("symmetry-huge-group", _file("object X = R[8] under S(100000)\n"), "E0320"),
    Case("symmetry-product-of-groups-too-large", _file("object X = R[4] under S6 × S6\n"), "E0320"),
]
