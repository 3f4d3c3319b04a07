"""Pausing Python's cyclic garbage collector over work that only builds.

Parsing and checking allocate many small objects that all stay alive (the
AST, the IR).  The collector's passes would walk them again and again and
free nothing, making time grow faster than the file; reference counting
still frees what dies while it is paused.  When it resumes, everything
allocated meanwhile is moved to the oldest generation first (``freeze``
then ``unfreeze`` move lists without walking them): otherwise the
collector's next young pass would walk all of it at once, about a second
after checking a file of 100,000 boxes.  (Not when the program has frozen
objects of its own: ``unfreeze`` would release them too.)
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """The collector paused for the block (a paused one stays paused)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            if not gc.get_freeze_count():  # objects a caller froze stay frozen
                gc.freeze()
                gc.unfreeze()
            gc.enable()
