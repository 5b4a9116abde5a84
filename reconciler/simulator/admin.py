"""The simulator's own endpoints, for tests and tools (never NHN's): call counts, the clock, the request log.

- `GET /_simulator/stats`: calls per route (the names faults are keyed by); `DELETE` resets them
- `GET /_simulator/clock`: the simulator's clock; `POST {"advance_s": N}` moves it
- `GET /_simulator/requests`: the request log (request_log.py), `?since=EPOCH` optional; `DELETE` clears it
"""

from __future__ import annotations

import email.utils
import math
import time
from typing import TYPE_CHECKING, Any

from reconciler.simulator.http import HttpError, Request, Response, Route, empty_response, json_response
from reconciler.simulator.state import utc_now

if TYPE_CHECKING:
    from reconciler.simulator.app import SimulatorApp


def _get_stats(app: SimulatorApp, req: Request) -> Response:
    routes = app.stats()
    return json_response(200, {"routes": routes, "total": sum(routes.values())})


def _reset_stats(app: SimulatorApp, req: Request) -> Response:
    app.reset_stats()
    return empty_response(204)


def _get_requests(app: SimulatorApp, req: Request) -> Response:
    raw = req.arg("since")
    since = None
    if raw is not None:
        try:
            since = float(raw)
        except ValueError:
            since = math.nan
        if not math.isfinite(since):
            raise HttpError(400, f"since must be epoch seconds, not {raw!r}")
    return json_response(200, app.requests.entries(since))


def _clear_requests(app: SimulatorApp, req: Request) -> Response:
    app.requests.clear()
    return empty_response(204)


def _clock_view(offset: float) -> dict[str, Any]:
    now = time.time() + offset
    return {"offset_s": offset, "now": utc_now(now), "date": email.utils.formatdate(now, usegmt=True)}


def _get_clock(app: SimulatorApp, req: Request) -> Response:
    return json_response(200, _clock_view(app.clock_offset()))


def _advance_clock(app: SimulatorApp, req: Request) -> Response:
    body = req.json_object()
    seconds = body.get("advance_s")
    if set(body) != {"advance_s"} or isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise HttpError(400, 'Expected {"advance_s": <seconds>}')
    if not math.isfinite(seconds):
        raise HttpError(400, "advance_s must be a finite number")
    return json_response(200, _clock_view(app.advance_clock(float(seconds))))


def routes() -> list[Route]:
    # Counted like any route (faults may name them), left out of the request log (server.py); no token needed.
    return [
        Route("GET", "/_simulator/stats", "identity", _get_stats, auth=False),
        Route("DELETE", "/_simulator/stats", "identity", _reset_stats, auth=False),
        Route("GET", "/_simulator/clock", "identity", _get_clock, auth=False),
        Route("POST", "/_simulator/clock", "identity", _advance_clock, auth=False),
        Route("GET", "/_simulator/requests", "identity", _get_requests, auth=False),
        Route("DELETE", "/_simulator/requests", "identity", _clear_requests, auth=False),
    ]
