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


def test_a_refresh_runs_with_the_collector_paused():
    """read_snapshot builds tens of thousands of records that stay alive: a collection there frees nothing."""
    from pathlib import Path

    from reconciler.snapshot import read_snapshot
    from reconciler.validate import load_desired_state

    seen = []

    class Refresh(Exception):
        pass

    class Client:
        project_id = "3f0c9d2e6b7a4f0e9a1b2c3d4e5f6a7b"

        def image_regions(self):
            seen.append(gc.isenabled())
            raise Refresh

    desired = load_desired_state(Path(__file__).resolve().parents[1] / "cases" / "no-changes" / "root")
    with pytest.raises(Refresh):
        read_snapshot(Client(), desired)
    assert seen == [False] and gc.isenabled()
