"""Polling with backoff until a condition holds or a deadline passes. Clock and sleep are injected, so
tests never wait."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from reconciler.cloud.errors import CloudCancelled, CloudTimeout

T = TypeVar("T")
STOP_CHECK_S = 0.1


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
    stop: Callable[[], bool] | None = None,
) -> T:
    """Call `read` until `done(value)`; the delay doubles from `first_delay` up to `max_delay`.

    `read` may raise to stop early (a failed status). On timeout, CloudTimeout names `what` and the last
    value seen (through `describe`). `stop`: asked between reads and every STOP_CHECK_S while sleeping;
    when true, CloudCancelled (a cancelled apply stops waiting at once).
    """
    deadline = clock() + timeout
    delay = first_delay
    while True:
        if stop is not None and stop():
            raise CloudCancelled(f"stopped waiting for {what}: cancelled")
        value = read()
        if done(value):
            return value
        remaining = deadline - clock()
        if remaining <= 0:
            raise CloudTimeout(
                f"timed out after {timeout:g} s waiting for {what}; last seen: {describe(value)}",
                hint="raise --timeout, or check the object in the console",
            )
        pause = min(delay, remaining)
        if stop is None:
            sleep(pause)
        else:
            end = clock() + pause
            while (left := end - clock()) > 0 and not stop():
                sleep(min(STOP_CHECK_S, left))
        delay = min(delay * 2, max_delay)
