"""Pausing the cyclic garbage collector around work that builds many objects which all stay alive.

Each collection of the oldest generation walks every live object. Loading a large manifest, or planning
100,000 images, makes hundreds of thousands of objects and keeps them, so collections there find
nothing to free and grow with the heap: with the collector running, planning 10x the images took 15-18x
the time. Reference counting still frees what is dropped; cycles made meanwhile are collected once the
collector runs again.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_paused = 0  # how many pauses are open, across threads
_guard = threading.Lock()


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the collector until the last open pause ends; one that was off already stays off."""
    global _paused
    with _guard:
        if _paused == 0 and not gc.isenabled():
            owner = False  # paused by someone else (the host application): leave it to them
        else:
            owner = True
            _paused += 1
            gc.disable()
    try:
        yield
    finally:
        if owner:
            with _guard:
                _paused -= 1
                if _paused == 0:
                    gc.enable()
