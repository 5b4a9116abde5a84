"""What every layer of the simulator shares for one server process: the state, the knobs, the tokens, the
call counters, the request log and the clock. It knows no route, no handler and no fault, so the handlers
(which are handed an app) and the layers in front of them (which hold one) all import it, and it imports
none of them.
"""

from __future__ import annotations

import email.utils
import threading
from collections import Counter
from collections.abc import Hashable
from typing import Any

from reconciler.simulator.behaviour import Behaviour
from reconciler.simulator.request_log import RequestLog
from reconciler.simulator.state import StateStore, clock_now
from reconciler.simulator.tokens import TokenStore


class ListingCache:
    """The sorted images of recent listings, each valid for the state generation it was computed at.

    A paged listing (a region's images, 1,000 a page) filtered and sorted the whole store for every page, so a
    10,000-image region cost pages x images; pages after the first now slice the first page's sorted list,
    as long as nothing changed in between. Used only under the store's lock (inside a transaction)."""

    SIZE = 16

    def __init__(self) -> None:
        self._entries: dict[Hashable, tuple[int, Any]] = {}

    def get(self, key: Hashable, generation: int) -> Any | None:
        entry = self._entries.get(key)
        return entry[1] if entry is not None and entry[0] == generation else None

    def put(self, key: Hashable, generation: int, value: Any) -> None:
        self._entries.pop(key, None)
        self._entries[key] = (generation, value)
        while len(self._entries) > self.SIZE:
            del self._entries[next(iter(self._entries))]  # the oldest


class SimulatorApp:
    """Everything a request handler needs: the state, the knobs, the tokens, the counters."""

    def __init__(self, store: StateStore, behaviour: Behaviour | None = None) -> None:
        self.store = store
        if behaviour is None:
            with store.transaction() as txn:
                behaviour = Behaviour.from_dict(txn.doc.get("behaviour"))
        self.behaviour = behaviour
        self.tokens = TokenStore()
        self.base_url = ""  # set once the server is bound
        self._stats: Counter[str] = Counter()
        self._stats_lock = threading.Lock()
        self.requests = RequestLog()
        # A listing's sorted images, kept between its pages while the state is unchanged (images.py).
        self.listings = ListingCache()

    # -- call counters -----------------------------------------------------------------------------

    def count(self, route_name: str) -> int:
        """Count one call to `route_name`; return its 1-based number (faults are keyed by it)."""
        with self._stats_lock:
            self._stats[route_name] += 1
            return self._stats[route_name]

    def stats(self) -> dict[str, int]:
        """Calls per route name since the start (or the last reset), sorted by name."""
        with self._stats_lock:
            return dict(sorted(self._stats.items()))

    def reset_stats(self) -> None:
        with self._stats_lock:
            self._stats.clear()

    def record_fault(self, route_name: str, kind: str) -> None:
        """Faults that landed, kept in the state so tests across processes can count them."""
        with self.store.transaction() as txn:
            hits = txn.doc.setdefault("fault_hits", {})
            hits[f"{kind} {route_name}"] = hits.get(f"{kind} {route_name}", 0) + 1
            txn.changed()

    # -- the clock ---------------------------------------------------------------------------------

    def now(self) -> float:
        """The simulator's time (epoch seconds): the real time plus the state's clock offset. Not for use
        inside a transaction (handlers there use `txn.now()`)."""
        with self.store.transaction() as txn:
            return clock_now(txn.doc)

    def clock_offset(self) -> float:
        """The simulator's clock minus the real time, in seconds."""
        with self.store.transaction() as txn:
            return float(txn.doc.get("clock_offset_s", 0))

    def http_date(self) -> str:
        """The `Date` header of an answer (RFC 7231 IMF-fixdate), skewed by the `clock_skew_s` knob."""
        return email.utils.formatdate(self.now() + self.behaviour.clock_skew_s, usegmt=True)

    def advance_clock(self, seconds: float) -> float:
        """Move the simulator's clock by `seconds` (shared by every process serving this state); return
        the new offset from the real time."""
        with self.store.transaction() as txn:
            offset = float(txn.doc.get("clock_offset_s", 0)) + seconds
            txn.doc["clock_offset_s"] = offset
            txn.changed()
            return offset

    # -- the catalog's endpoints -------------------------------------------------------------------

    def image_endpoint(self, region: str) -> str:
        return f"{self.base_url}/image/{region}"

    def compute_endpoint(self, region: str, project: str) -> str:
        return f"{self.base_url}/compute/{region}/v2/{project}"

    def volume_endpoint(self, region: str, project: str) -> str:
        return f"{self.base_url}/volume/{region}/v2/{project}"
