"""The misbehaviour layer around a call: latency, the seed's faults by route and call number (status, drop,
stall, hold, a cut connection, a lost answer) and the `random_faults` knob. The server asks it twice per
call: `before` the handler runs (which may answer instead of the handler, or wait) and `after` it (which
may lose or cut the answer). Which faults exist and how a seed names them: behaviour.py.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from reconciler.simulator.behaviour import Fault
from reconciler.simulator.http import HttpError, Request, Response, Route

if TYPE_CHECKING:
    from reconciler.simulator.app import SimulatorApp


class Dropped(Exception):
    """A fault asked to close the connection without answering."""


class HoldGroup:
    """Calls held together by one `hold` fault: released when `size` have arrived (or at the deadline),
    answered once every released call is done."""

    def __init__(self, size: int, timeout_s: float) -> None:
        self.size = size
        self.arrived = 0
        self.done = 0
        self.released = False
        self.timeout_s = timeout_s
        self.deadline = time.monotonic() + timeout_s


class Holds:
    """The `hold` fault's waiting rooms, one per fault (its index in the behaviour's faults). A held call
    waits at most `timeout_s` for the others of its group."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._cond = threading.Condition()
        self._open: dict[int, HoldGroup] = {}

    def arrive(self, key: int, size: int) -> HoldGroup:
        """Wait until `size` calls of this fault are waiting (or the deadline); return their group."""
        with self._cond:
            group = self._open.get(key)
            if group is None:
                group = self._open[key] = HoldGroup(size, self.timeout_s)
            group.arrived += 1
            if group.arrived >= group.size:
                self._release(key, group)
            else:
                self._cond.wait_for(lambda: group.released, timeout=max(0.0, group.deadline - time.monotonic()))
                if not group.released:  # the deadline passed: carry out whoever came
                    self._release(key, group)
            return group

    def _release(self, key: int, group: HoldGroup) -> None:
        group.released = True
        if self._open.get(key) is group:
            del self._open[key]  # later calls of the fault form a new group
        self._cond.notify_all()

    def finish(self, group: HoldGroup) -> None:
        """This call of `group` is carried out; wait until all of them are, so the answers go together."""
        with self._cond:
            group.done += 1
            self._cond.notify_all()
            limit = group.deadline + group.timeout_s
            self._cond.wait_for(lambda: group.done >= group.arrived, timeout=max(0.0, limit - time.monotonic()))


def cut(response: Response, limit: int) -> Response:
    """The answer, breaking off after `limit` body bytes while its headers promise the whole."""
    body = response.body if not isinstance(response.body, bytes) else [response.body]
    length = (
        response.length
        if response.length is not None
        else (len(response.body) if isinstance(response.body, bytes) else None)
    )

    def truncated() -> Iterator[bytes]:
        sent = 0
        for chunk in body:
            if sent + len(chunk) >= limit:
                yield chunk[: limit - sent]
                return
            sent += len(chunk)
            yield chunk

    return Response(response.status, truncated(), dict(response.headers), length=length)


class FaultInjector:
    """Latency and faults for one server process: the seed's faults, the random ones, the hold groups."""

    def __init__(self, app: SimulatorApp, *, hold_timeout_s: float) -> None:
        self.app = app
        self.holds = Holds(hold_timeout_s)
        self._random_lock = threading.Lock()
        self._random: random.Random | None = None
        knob = app.behaviour.random_faults
        if knob:
            # Reproducible, yet each start of a simulator on this state continues the sequence, so a re-run
            # does not meet exactly the same faults again.
            with app.store.transaction() as txn:
                starts = txn.doc.setdefault("random_fault_starts", 0)
                txn.doc["random_fault_starts"] = starts + 1
                txn.changed()
            self._random = random.Random(f"{knob['seed']}:{starts}")

    def before(self, route: Route, call: int, req: Request, held: list[HoldGroup]) -> Fault | None:
        """Latency, then this call's fault, before the handler runs. A status or drop fault raises (the
        handler never runs); a stall or hold waits here (a hold's group is added to `held`, to be
        `finish`ed once answered); an upload cut is armed on `req`. Returns the fault, for `after`."""
        behaviour = self.app.behaviour
        if behaviour.latency_ms:
            time.sleep(behaviour.latency_ms / 1000)
        fault = self._fault_of(route, call)
        if fault is None:
            return None
        if fault.drop:
            raise Dropped
        if fault.hold is not None:
            held.append(self.holds.arrive(behaviour.faults.index(fault), fault.hold))
        if fault.stall_s is not None:
            time.sleep(fault.stall_s)
        elif fault.status is not None:
            headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
            raise HttpError(fault.status, f"Simulated fault on call {call} of {route.name}", headers=headers)
        if fault.cut_after_bytes is not None and not req.body_consumed:
            req.cut_after = fault.cut_after_bytes
        return fault

    def after(self, fault: Fault | None, req: Request, response: Response) -> tuple[Response, bool]:
        """The handler's answer as it leaves: (answer, whether the connection closes after it). Raises
        Dropped for a lost answer (the call was carried out, the client never hears)."""
        if fault is None:
            return response, False
        if fault.lose_answer:
            raise Dropped
        if fault.cut_after_bytes is not None and req.body_consumed and req.cut_after is None:
            return cut(response, fault.cut_after_bytes), True
        return response, False

    def finish(self, held: list[HoldGroup]) -> None:
        """The call of each hold group in `held` is answered (or failed): wait for the rest of its group."""
        for group in held:
            self.holds.finish(group)

    def _fault_of(self, route: Route, call: int) -> Fault | None:
        """The seed's fault for this call, else a random one (as a Fault); recorded in the state either way.
        A random drop or status raises at once."""
        fault = self.app.behaviour.fault_for(route.name, call)
        if fault is not None:
            self.app.record_fault(route.name, fault.kind)
            return fault
        chance = self._random_fault(route)
        if chance is None:
            return None
        kind, status = chance
        self.app.record_fault(route.name, f"random-{kind}")
        if kind == "drop":
            raise Dropped
        if kind == "status":
            raise HttpError(status, f"Simulated random fault on {route.name}")
        return Fault(route=route.name, on_call=(call,), lose_answer=True)

    def _random_fault(self, route: Route) -> tuple[str, int] | None:
        """(kind, status) of a random fault for this call, by the random_faults knob, or None."""
        knob = self.app.behaviour.random_faults
        if self._random is None or knob is None or route.service == "identity":
            return None
        if knob.get("routes") and route.name not in knob["routes"]:
            return None
        with self._random_lock:
            if self._random.random() >= knob["rate"]:
                return None
            return self._random.choice(knob["kinds"]), self._random.choice(knob["statuses"])
