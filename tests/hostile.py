"""Hostile inputs: the regression cases of the hardening work, as data.

Each :class:`Case` is one adversarial input run through the real command
line in a fresh process: ``setup(dir)`` writes its files into an empty
working directory and returns the ``catnet`` arguments; the run must end
with the expected exit status and, for a failure, a diagnostic with the
expected code, without a Python traceback, within the time and memory
bounds.  The cases live in ``tests/hostile_*.py`` (one module per area,
each with a ``CASES`` list); ``tests/test_hostile.py`` runs them all and
``bench/hostile.py`` prints the time and peak memory of each.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"

#: The bounds every case must keep (acceptance: 2 s and 1 GB).  Tests apply
#: the memory bound as is and the time bound with slack for noisy machines;
#: ``bench/hostile.py`` reports the measured figures.
SECONDS = 2.0
MEGABYTES = 1024


@dataclass(frozen=True)
class Case:
    """One hostile input.

    ``setup(workdir)`` writes the files and returns the arguments after
    ``catnet``.  ``code`` is the expected error code (``None``: the command
    must succeed).  ``status`` is the expected exit status.  ``contains``
    are texts the standard error must include; ``absent`` texts it must not
    (for example leaked file content).
    """

    name: str
    setup: Callable[[Path], list[str]]
    code: str | None
    status: int = 1
    contains: tuple[str, ...] = ()
    absent: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Result:
    status: int
    stdout: str
    stderr: str
    seconds: float
    megabytes: float


#: ``python -c`` text that runs ``python -m catnet`` and, as it exits (normally
#: or by ``os._exit``), writes
#: its own peak resident memory (``VmHWM`` of /proc/self/status, in kB) to
#: the file named by ``CATNET_PEAK_FILE``.  The kernel's ``ru_maxrss`` of a
#: child starts at the size of the process that forked it, so a child of a
#: big pytest process would be charged for its parent; ``VmHWM`` counts the
#: memory of the program the child runs, from its ``exec`` on.
_PEAK_WRAPPER = """
import atexit, os, runpy, sys

def _peak() -> None:
    try:
        with open("/proc/self/status") as f:
            kb = next(line.split()[1] for line in f if line.startswith("VmHWM:"))
        with open(os.environ["CATNET_PEAK_FILE"], "w") as out:
            out.write(kb)
    except Exception:
        pass

def _exit(code: int, _exit_now=os._exit) -> None:  # catnet ends pure commands with os._exit
    _peak()
    _exit_now(code)

atexit.register(_peak)
os._exit = _exit
runpy.run_module("catnet", run_name="__main__", alter_sys=True)
"""


def run_catnet(args: list[str], cwd: Path, timeout: float = 120.0, env: dict[str, str] | None = None,
               stdin: str | None = None) -> Result:
    """Run ``python -m catnet ARGS`` in ``cwd``; wall time and the child's own peak RSS.

    The peak is the child's ``VmHWM`` where Linux gives it (see
    ``_PEAK_WRAPPER``), else ``ru_maxrss`` from ``wait4``.
    """
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = str(ROOT) + os.pathsep + full_env.get("PYTHONPATH", "")
    full_env.setdefault("JAX_PLATFORMS", "cpu")
    full_env.update(env or {})
    with tempfile.TemporaryDirectory(prefix="catnet-peak-") as peak_dir:
        peak_file = Path(peak_dir) / "peak"
        full_env["CATNET_PEAK_FILE"] = str(peak_file)
        start = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-c", _PEAK_WRAPPER, *args], cwd=cwd, env=full_env, text=True,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        # Read the pipes on threads and reap the child with wait4 (its own
        # rusage; RUSAGE_CHILDREN would be the maximum over every child the
        # test process ever had).
        chunks: dict[str, str] = {}

        def drain(name: str, stream: Any) -> None:
            with stream:
                chunks[name] = stream.read()

        readers = [threading.Thread(target=drain, args=(n, s), daemon=True)
                   for n, s in (("out", proc.stdout), ("err", proc.stderr))]
        for t in readers:
            t.start()
        if stdin is not None:
            assert proc.stdin is not None
            proc.stdin.write(stdin)
            proc.stdin.close()
        status, usage = 0, None
        while True:
            pid, raw, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                status = os.waitstatus_to_exitcode(raw)
                break
            if time.perf_counter() - start > timeout:
                proc.kill()
                _, raw, usage = os.wait4(proc.pid, 0)
                status = -9
                break
            time.sleep(0.005)
        proc.returncode = status
        for t in readers:
            t.join()
        seconds = time.perf_counter() - start
        try:
            megabytes = int(peak_file.read_text()) / 1024.0
        except (OSError, ValueError):
            megabytes = usage.ru_maxrss / 1024.0 if usage else 0.0
    err = chunks.get("err", "") + (f"\n[timed out after {timeout} s]" if status == -9 else "")
    return Result(status, chunks.get("out", ""), err, seconds, megabytes)


def all_cases() -> list[Case]:
    """Every case from every ``tests/hostile_*.py`` module, by name."""
    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))
    cases: list[Case] = []
    for path in sorted(TESTS.glob("hostile_*.py")):
        module = importlib.import_module(path.stem)
        cases.extend(module.CASES)
    names = [c.name for c in cases]
    assert len(names) == len(set(names)), "hostile case names must be unique"
    return cases


def problems(case: Case, result: Result, seconds: float, megabytes: float = MEGABYTES) -> list[str]:
    """What is wrong with a case's run (empty when it keeps every promise)."""
    out: list[str] = []
    if result.status != case.status:
        out.append(f"exit status {result.status}, expected {case.status}")
    if "Traceback" in result.stderr or "Traceback" in result.stdout:
        out.append("a Python traceback reached the user")
    if case.code is not None and f"[{case.code}]" not in result.stderr:
        out.append(f"no error[{case.code}] in the output")
    for text in case.contains:
        if text not in result.stderr:
            out.append(f"standard error lacks {text!r}")
    for text in case.absent:
        if text in result.stderr or text in result.stdout:
            out.append(f"the output shows {text!r}")
    if result.seconds > seconds:
        out.append(f"took {result.seconds:.2f} s (bound {seconds} s)")
    if result.megabytes > megabytes:
        out.append(f"peak memory {result.megabytes:.0f} MB (bound {megabytes} MB)")
    return out
