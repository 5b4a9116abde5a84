"""Polling with backoff until a condition holds or a deadline passes. Clock and sleep are injected, so
tests never wait."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from reconciler.cloud.errors import CloudTimeout

T = TypeVar("T")


def poll(
    read: Callable[[], T],
    done: Callable[[T], bool],
    *,
    timeout: float,
    what: str,
    describe: Callable[[T], str] = str,
    first_delay: float = 1.0,
    max_delay: float = 15.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call `read` until `done(value)`; the delay doubles from `first_delay` up to `max_delay`.

    `read` may raise to stop early (a failed status). On timeout, CloudTimeout names `what` and the last
    value seen (through `describe`).
    """
    deadline = clock() + timeout
    delay = first_delay
    while True:
        value = read()
        if done(value):
            return value
        remaining = deadline - clock()
        if remaining <= 0:
            raise CloudTimeout(
                f"timed out after {timeout:g} s waiting for {what}; last seen: {describe(value)}",
                hint="raise --timeout, or check the object in the console",
            )
        sleep(min(delay, remaining))
        delay = min(delay * 2, max_delay)
