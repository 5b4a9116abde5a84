"""The request log: every request a simulator process served, with its real start and end times, so a
test that interrupts a client at a random moment can ask what was in flight at that moment.

Times are epoch seconds of the real clock (`time.time()`), never the simulator's shifted clock
(`/_simulator/clock`): they compare with the times a test takes around its own signals. The log is kept
in the memory of each server process, bounded to the last MAX_ENTRIES requests; the simulator's own
`/_simulator/*` calls are not logged.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable
from typing import Any

MAX_ENTRIES = 10_000
SAFE_METHODS = frozenset({"GET", "HEAD"})


class RequestLog:
    """A bounded, thread-safe list of entries, one per request:

    `{"route": "PUT /image/{region}/v2/images/{image_id}/file", "method": "PUT", "path": "/image/KR1/...",
    "start": 1795000000.12, "end": 1795000000.34, "mutating": true, "stream": true, "status": 204}`

    `route` is the route template as `/_simulator/stats` names it ("(no route)" for an unknown path);
    `end` and `status` are null while the request is in flight; `status` stays null when no answer was
    sent (a dropped connection, a lost answer, a client gone before its answer). `mutating` is any method
    but GET and HEAD; `stream` an image data upload or download. `received` is the number of body bytes the
    request's handler read, once it ended: an upload whose client died shows how much of it arrived.
    """

    def __init__(self, size: int = MAX_ENTRIES) -> None:
        self._entries: deque[dict[str, Any]] = deque(maxlen=size)
        self._lock = threading.Lock()

    def begin(self, route: str, method: str, path: str, *, stream: bool) -> dict[str, Any]:
        entry = {
            "route": route,
            "method": method,
            "path": path,
            "start": time.time(),
            "end": None,
            "mutating": method not in SAFE_METHODS,
            "stream": stream,
            "status": None,
            "received": 0,
        }
        with self._lock:
            self._entries.append(entry)
        return entry

    def end(self, entry: dict[str, Any], status: int | None, *, received: int = 0) -> None:
        with self._lock:
            entry["status"] = status
            entry["end"] = time.time()
            entry["received"] = received

    def entries(self, since: float | None = None) -> list[dict[str, Any]]:
        """Copies of the entries, oldest first; with `since`, only those still in flight at or after it
        (not ended, or ended at `since` or later)."""
        with self._lock:
            return [dict(e) for e in self._entries if since is None or e["end"] is None or e["end"] >= since]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def in_flight_at(entries: Iterable[dict[str, Any]], at: float) -> list[dict[str, Any]]:
    """The mutating calls and streams of a request log that were in flight at `at` (epoch seconds,
    real time): started at or before it and not ended before it (or not ended at all).

    `bool(in_flight_at(sim.request_log(), t))` answers "was a change or a transfer under way at t?".
    """
    return [
        e
        for e in entries
        if (e["mutating"] or e["stream"]) and e["start"] <= at and (e["end"] is None or e["end"] >= at)
    ]
