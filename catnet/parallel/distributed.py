"""Several processes, one program: ``jax.distributed.initialize`` from the environment.

A multi-host run starts the same command once per process, each told where
the coordinator listens, how many processes there are and which one it is:

* ``JAX_COORDINATOR_ADDRESS``: ``host:port`` of process 0 (JAX reads this
  one itself as well);
* ``JAX_NUM_PROCESSES``: how many processes take part;
* ``JAX_PROCESS_ID``: this process's number, ``0`` to ``JAX_NUM_PROCESSES - 1``.

:func:`settings` reads them without JAX, so a half-set or malformed
environment is refused (E0703, naming the variable) before anything
starts; with none set the run is one process and nothing is initialized.
After :func:`initialize`, ``jax.devices()`` lists every process's devices
and a mesh spans them all; each process feeds its own devices' shards
(see :func:`catnet.parallel.placement.put`).  On CPU the processes reduce
their gradients over gloo, JAX's default for host devices.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import CatnetError, shown

ADDRESS = "JAX_COORDINATOR_ADDRESS"
PROCESSES = "JAX_NUM_PROCESSES"
PROCESS_ID = "JAX_PROCESS_ID"
VARIABLES = (ADDRESS, PROCESSES, PROCESS_ID)

_HELP = (
    f"set all three of {ADDRESS}=host:port, {PROCESSES}=N and {PROCESS_ID}=0..N-1 in every process, "
    "or none of them for a single process"
)


@dataclass(frozen=True)
class Settings:
    """Where the coordinator listens, how many processes run, and which one this is."""

    address: str
    processes: int
    process_id: int


def _fail(message: str) -> CatnetError:
    return CatnetError("E0703", message, None, help=_HELP)


def _whole(name: str, text: str, low: int, high: int) -> int:
    try:
        value = int(text.strip(), 10)
    except ValueError:
        raise _fail(f"{name} must be a whole number, not {shown(text)}") from None
    if not low <= value <= high:
        raise _fail(f"{name} must be a whole number from {low} to {high}, not {value}")
    return value


def settings(environ: Mapping[str, str] = os.environ) -> Settings | None:
    """The multi-process settings in ``environ``; ``None`` if none is set, E0703 if some are missing or malformed."""
    given = {name: environ[name] for name in VARIABLES if environ.get(name, "").strip()}
    if not given:
        return None
    missing = [name for name in VARIABLES if name not in given]
    if missing:
        raise _fail(f"{', '.join(sorted(given))} set, but not {', '.join(missing)}")
    address = given[ADDRESS].strip()
    if not re.fullmatch(r"\[?[\w.:-]+\]?:\d{1,5}", address):
        raise _fail(f"{ADDRESS} must be host:port, not {shown(address)}")
    processes = _whole(PROCESSES, given[PROCESSES], 1, 65536)
    process_id = _whole(PROCESS_ID, given[PROCESS_ID], 0, processes - 1)
    return Settings(address, processes, process_id)


def initialize(environ: Mapping[str, str] = os.environ) -> Settings | None:
    """Join the processes named by the environment (see :func:`settings`); ``None`` and nothing done for one process.

    Call it before any other JAX call: JAX fixes its device list at the
    first.  A second call finds the processes joined and does nothing.
    """
    found = settings(environ)
    if found is None:
        return None
    import jax

    if not jax.distributed.is_initialized():
        jax.distributed.initialize(found.address, found.processes, found.process_id)
    return found
