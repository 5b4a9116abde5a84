"""gc_paused: the collector stays off until the last open pause ends, and one that was off stays off."""

from __future__ import annotations

import gc

import pytest

from reconciler.gc_pause import gc_paused


@pytest.fixture(autouse=True)
def collector_on():
    gc.enable()
    yield
    gc.enable()


def test_overlapping_pauses_enable_only_when_the_last_ends():
    first, second = gc_paused(), gc_paused()  # as two threads would hold them
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert not gc.isenabled()
    second.__exit__(None, None, None)
    assert gc.isenabled()


def test_an_exception_still_ends_the_pause():
    with pytest.raises(ValueError), gc_paused():
        assert not gc.isenabled()
        raise ValueError
    assert gc.isenabled()


def test_a_collector_the_caller_turned_off_stays_off():
    gc.disable()
    with gc_paused():
        pass
    assert not gc.isenabled()
