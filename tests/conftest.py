"""Shared test set-up: warnings are errors, numpy rank promotion is refused."""

from __future__ import annotations

import gc
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

EXAMPLES = sorted((ROOT / "examples").glob("*.cat"))

#: Set to rewrite every golden file from the current output.
UPDATE_GOLDEN = os.environ.get("CATNET_UPDATE_GOLDEN") == "1"

# XLA compiles every program the suite runs (thousands: each eager op, each
# model, each training step), and on the CPU most of that time goes to LLVM
# optimizing code that then runs for milliseconds.  The tests compile at
# XLA's optimization level 0 instead: the same programs, the same
# assertions, and a fifth to a third less time in the files that compile
# most (tests/test_lower.py, test_precision.py, ...).  It is set here, before JAX starts
# its backend, and the subprocesses the tests start inherit it (those that
# set XLA_FLAGS themselves add to it).  CATNET_TEST_XLA_OPT=1 keeps XLA's
# default level, e.g. to check that a failure does not depend on it.
if os.environ.get("CATNET_TEST_XLA_OPT") != "1" and "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_backend_optimization_level=0".strip()


def golden(path: Path, actual: str) -> None:
    """Compare ``actual`` to the golden file; write it if missing or updating."""
    if UPDATE_GOLDEN or not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
        return
    expected = path.read_text(encoding="utf-8")
    assert actual == expected, f"{path.name} differs; rerun with CATNET_UPDATE_GOLDEN=1 if the change is intended"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: a big model or a long run; `make test` runs these too (deselect with -m 'not slow')")
    config.addinivalue_line("filterwarnings", "error")
    # Third-party deprecations are not ours to fix.
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning:(jax|flax|orbax|optax|google|absl|etils|tensorstore).*")
    try:
        import numpy as np  # noqa: F401

        os.environ.setdefault("JAX_NUMPY_RANK_PROMOTION", "raise")
    except ImportError:  # pragma: no cover
        pass


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """Drop JAX's compiled programs after each test file.

    Every model a test compiles stays in JAX's caches for the life of the
    process; across the suite that is gigabytes, and a subprocess forked
    from a big pytest process starts its peak-memory count (``ru_maxrss``)
    at the parent's size, which the hostile cases bound at 1 GB.
    """
    yield
    jax = sys.modules.get("jax")
    if jax is not None:
        jax.clear_caches()
        gc.collect()
