"""Pausing the collector over parsing and checking (``catnet.collector``)."""

from __future__ import annotations

import gc

from catnet import collector, loads


def test_the_collector_resumes_and_what_was_built_is_old():
    assert gc.isenabled()
    with collector.paused():
        assert not gc.isenabled()
        built = [[i] for i in range(1000)]
    assert gc.isenabled()
    # Moved to the oldest generation: the next young pass has nothing of it to walk.
    assert gc.get_count()[0] < 1000
    assert len(built) == 1000


def test_a_paused_collector_stays_paused_and_frozen_objects_stay_frozen():
    gc.disable()
    try:
        with collector.paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        loads("object V = R[8]\nmorphism f : V -> V = dense ; relu\n")
        assert gc.get_freeze_count() == frozen
        assert gc.isenabled()
    finally:
        gc.unfreeze()
