"""The simulator's HTTP server: one loopback port serving identity, image, compute and volume for every
region, concurrently (one thread per connection), with latency, fault injection and request counting.

URL layout (all under `http://127.0.0.1:PORT`):

    /v2.0                                  identity (Keystone v2): tokens, version document
    /image/{region}                        Glance's endpoint (bare, as on NHN: no /v2 in the catalog URL)
    /compute/{region}/v2/{tenant_id}       Nova
    /volume/{region}/v2/{tenant_id}        Cinder
    /_simulator/stats                      request counts per route
    /_simulator/clock                      the simulator's clock: GET reads it, POST {"advance_s": N} moves it
    /_simulator/requests                   the request log (request_log.py): GET [?since=EPOCH], DELETE clears

Every answer carries a `Date` header from the simulator's clock (plus the `clock_skew_s` knob).
"""

from __future__ import annotations

import email.utils
import logging
import math
import random
import ssl
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import SplitResult, parse_qs, urlsplit

from reconciler.simulator import compute, identity, images, volumes
from reconciler.simulator.behaviour import HOLD_TIMEOUT_S, Behaviour, Fault
from reconciler.simulator.http import (
    HttpError,
    Request,
    Response,
    Route,
    Router,
    empty_response,
    error_response,
    json_response,
)
from reconciler.simulator.request_log import RequestLog
from reconciler.simulator.state import StateStore, clock_now, utc_now

log = logging.getLogger(__name__)


def all_routes() -> list[Route]:
    return [
        *identity.routes(),
        *images.routes(),
        *compute.routes(),
        *volumes.routes(),
        Route("GET", "/_simulator/stats", "identity", SimulatorApp._get_stats, auth=False),
        Route("DELETE", "/_simulator/stats", "identity", SimulatorApp._reset_stats, auth=False),
        Route("GET", "/_simulator/clock", "identity", SimulatorApp._get_clock, auth=False),
        Route("POST", "/_simulator/clock", "identity", SimulatorApp._advance_clock, auth=False),
        Route("GET", "/_simulator/requests", "identity", SimulatorApp._get_requests, auth=False),
        Route("DELETE", "/_simulator/requests", "identity", SimulatorApp._clear_requests, auth=False),
    ]


def check_fault_routes(behaviour: Behaviour) -> None:
    """A fault on a route the simulator does not serve would silently never fire: refuse it."""
    known = {route.name for route in all_routes()}
    unknown = sorted({fault.route for fault in behaviour.faults} - known)
    if unknown:
        raise ValueError(
            f"no such route: {', '.join(unknown)} (routes are named like 'GET /image/{{region}}/v2/images'; "
            "GET /_simulator/stats lists the ones called)"
        )


class _HoldGroup:
    """Calls held together by one `hold` fault: released when `size` have arrived (or at the deadline),
    answered once every released call is done."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.arrived = 0
        self.done = 0
        self.released = False
        self.deadline = time.monotonic() + HOLD_TIMEOUT_S


class _Holds:
    """The `hold` fault's waiting rooms, one per fault (its index in the behaviour's faults)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._open: dict[int, _HoldGroup] = {}

    def arrive(self, key: int, size: int) -> _HoldGroup:
        """Wait until `size` calls of this fault are waiting (or the deadline); return their group."""
        with self._cond:
            group = self._open.get(key)
            if group is None:
                group = self._open[key] = _HoldGroup(size)
            group.arrived += 1
            if group.arrived >= group.size:
                self._release(key, group)
            else:
                self._cond.wait_for(lambda: group.released, timeout=max(0.0, group.deadline - time.monotonic()))
                if not group.released:  # the deadline passed: carry out whoever came
                    self._release(key, group)
            return group

    def _release(self, key: int, group: _HoldGroup) -> None:
        group.released = True
        if self._open.get(key) is group:
            del self._open[key]  # later calls of the fault form a new group
        self._cond.notify_all()

    def finish(self, group: _HoldGroup) -> None:
        """This call of `group` is carried out; wait until all of them are, so the answers go together."""
        with self._cond:
            group.done += 1
            self._cond.notify_all()
            limit = group.deadline + HOLD_TIMEOUT_S
            self._cond.wait_for(lambda: group.done >= group.arrived, timeout=max(0.0, limit - time.monotonic()))


class SimulatorApp:
    """Everything a request handler needs: the state, the knobs, the tokens, the counters."""

    def __init__(self, store: StateStore, behaviour: Behaviour | None = None) -> None:
        self.store = store
        if behaviour is None:
            with store.transaction() as txn:
                behaviour = Behaviour.from_dict(txn.doc.get("behaviour"))
        self.behaviour = behaviour
        self.tokens = identity.TokenStore()
        self.base_url = ""  # set once the server is bound
        self._stats: Counter[str] = Counter()
        self._stats_lock = threading.Lock()
        self.router = Router(all_routes())
        self.holds = _Holds()
        self.requests = RequestLog()
        check_fault_routes(behaviour)
        self._random = None
        if behaviour.random_faults:
            # Reproducible, yet each start of a simulator on this state continues the sequence, so a re-run
            # does not meet exactly the same faults again.
            with store.transaction() as txn:
                starts = txn.doc.setdefault("random_fault_starts", 0)
                txn.doc["random_fault_starts"] = starts + 1
                txn.changed()
            self._random = random.Random(f"{behaviour.random_faults['seed']}:{starts}")

    def random_fault(self, route: Route) -> tuple[str, int] | None:
        """(kind, status) of a random fault for this call, by the random_faults knob, or None."""
        knob = self.behaviour.random_faults
        if self._random is None or knob is None or route.service == "identity":
            return None
        if knob.get("routes") and route.name not in knob["routes"]:
            return None
        with self._stats_lock:
            if self._random.random() >= knob["rate"]:
                return None
            return self._random.choice(knob["kinds"]), self._random.choice(knob["statuses"])

    def record_fault(self, route_name: str, kind: str) -> None:
        """Faults that landed, kept in the state so tests across processes can count them."""
        with self.store.transaction() as txn:
            hits = txn.doc.setdefault("fault_hits", {})
            hits[f"{kind} {route_name}"] = hits.get(f"{kind} {route_name}", 0) + 1
            txn.changed()

    def count(self, route_name: str) -> int:
        """Count one call to `route_name`; return its 1-based number (faults are keyed by it)."""
        with self._stats_lock:
            self._stats[route_name] += 1
            return self._stats[route_name]

    def _get_stats(self, req: Request) -> Response:
        with self._stats_lock:
            routes = dict(sorted(self._stats.items()))
        return json_response(200, {"routes": routes, "total": sum(routes.values())})

    def _reset_stats(self, req: Request) -> Response:
        with self._stats_lock:
            self._stats.clear()
        return empty_response(204)

    def _get_requests(self, req: Request) -> Response:
        raw = req.arg("since")
        since = None
        if raw is not None:
            try:
                since = float(raw)
            except ValueError:
                since = math.nan
            if not math.isfinite(since):
                raise HttpError(400, f"since must be epoch seconds, not {raw!r}")
        return json_response(200, self.requests.entries(since))

    def _clear_requests(self, req: Request) -> Response:
        self.requests.clear()
        return empty_response(204)

    # -- the clock ---------------------------------------------------------------------------------

    def now(self) -> float:
        """The simulator's time (epoch seconds): the real time plus the state's clock offset. Not for use
        inside a transaction (handlers there use `txn.now()`)."""
        with self.store.transaction() as txn:
            return clock_now(txn.doc)

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

    def _clock_view(self, offset: float) -> dict[str, Any]:
        now = time.time() + offset
        return {"offset_s": offset, "now": utc_now(now), "date": email.utils.formatdate(now, usegmt=True)}

    def _get_clock(self, req: Request) -> Response:
        with self.store.transaction() as txn:
            offset = float(txn.doc.get("clock_offset_s", 0))
        return json_response(200, self._clock_view(offset))

    def _advance_clock(self, req: Request) -> Response:
        body = req.json_object()
        seconds = body.get("advance_s")
        if set(body) != {"advance_s"} or isinstance(seconds, bool) or not isinstance(seconds, int | float):
            raise HttpError(400, 'Expected {"advance_s": <seconds>}')
        if not math.isfinite(seconds):
            raise HttpError(400, "advance_s must be a finite number")
        return json_response(200, self._clock_view(self.advance_clock(float(seconds))))

    def image_endpoint(self, region: str) -> str:
        return f"{self.base_url}/image/{region}"

    def compute_endpoint(self, region: str, project: str) -> str:
        return f"{self.base_url}/compute/{region}/v2/{project}"

    def volume_endpoint(self, region: str, project: str) -> str:
        return f"{self.base_url}/volume/{region}/v2/{project}"


def _cut(response: Response, limit: int) -> Response:
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


class _Dropped(Exception):
    """A fault asked to close the connection without answering."""


class SimulatorRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real OpenStack endpoints
    # Headers and body go out in separate writes; with Nagle on, every keep-alive request after the
    # first waits ~40 ms for the client's delayed ACK.
    disable_nagle_algorithm = True
    server_version = "reconciler-simulator"
    sys_version = ""
    server: _SimulatorHTTPServer
    _answered: int | None = None  # the status of the answer sent to the current request, if one went out

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def date_time_string(self, timestamp: float | None = None) -> str:
        # The Date header of every answer comes from the simulator's clock (and its clock_skew_s knob).
        if timestamp is not None:
            return super().date_time_string(timestamp)
        return self.server.app.http_date()

    def log_message(self, format: str, *args: Any) -> None:
        # Request lines only (method, path, status): tokens travel in headers and are never logged.
        log.debug("%s %s", self.address_string(), format % args)

    def _dispatch(self) -> None:
        app = self.server.app
        url = urlsplit(self.path)
        route, params, path_known = app.router.match(self.command, url.path)
        self._answered = None
        if url.path.startswith("/_simulator/"):
            self._handle(app, url, route, params, path_known)
            return
        entry = app.requests.begin(
            route.name if route else "(no route)", self.command, url.path, stream=bool(route and route.stream)
        )
        try:
            self._handle(app, url, route, params, path_known)
        finally:
            app.requests.end(entry, self._answered)

    def _handle(
        self, app: SimulatorApp, url: SplitResult, route: Route | None, params: dict[str, str], path_known: bool
    ) -> None:
        service = route.service if route else app.router.service_for(url.path)
        accept = self.headers.get("Accept", "")
        try:
            req = Request(self.command, url.path, parse_qs(url.query, keep_blank_values=True), self.headers, self.rfile)
        except HttpError as err:  # a malformed Content-Length: the body's extent is unknown
            self.close_connection = True
            self._send(error_response(service, err, accept), None)
            return
        req.params = params
        held: list[_HoldGroup] = []  # the hold group of this call, if any: answered with the rest of it
        try:
            if route is None:
                app.count("(no route)")
                if path_known:
                    raise HttpError(405, f"The method {self.command} is not allowed for this resource.")
                raise HttpError(404, f"The resource could not be found: {url.path}")
            response = self._carry_out(app, route, req, held)
        except _Dropped:
            self.close_connection = True
            return
        except HttpError as err:
            response = error_response(err.service or service, err, accept)
        except (ConnectionError, TimeoutError):
            # The client went away while sending its body: nobody is left to answer.
            self.close_connection = True
            return
        except Exception:  # a simulator bug: answer like a real server's 500, and log it
            log.exception("simulator error on %s %s", self.command, url.path)
            response = error_response(service, HttpError(500, "The simulator failed to handle this request"), accept)
        finally:
            for group in held:
                app.holds.finish(group)
        self._send(response, req)

    def _carry_out(self, app: SimulatorApp, route: Route, req: Request, held: list[_HoldGroup]) -> Response:
        """Latency, faults, authentication, then the route's handler: the answer, or an exception."""
        call = app.count(route.name)
        if app.behaviour.latency_ms:
            time.sleep(app.behaviour.latency_ms / 1000)
        fault = app.behaviour.fault_for(route.name, call)
        if fault is not None:
            app.record_fault(route.name, fault.kind)
        elif (chance := app.random_fault(route)) is not None:
            kind, status = chance
            app.record_fault(route.name, f"random-{kind}")
            if kind == "drop":
                raise _Dropped
            if kind == "status":
                raise HttpError(status, f"Simulated random fault on {route.name}")
            fault = Fault(route=route.name, on_call=(call,), lose_answer=True)
        if fault is not None:
            if fault.drop:
                raise _Dropped
            if fault.hold is not None:
                held.append(app.holds.arrive(app.behaviour.faults.index(fault), fault.hold))
            if fault.stall_s is not None:
                time.sleep(fault.stall_s)
            elif fault.status is not None:
                headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
                raise HttpError(fault.status, f"Simulated fault on call {call} of {route.name}", headers=headers)
        if route.auth:
            every = app.behaviour.revoke_tokens_every
            if every and app.count("(authenticated calls)") % every == 0:
                app.tokens = identity.TokenStore()  # every token issued so far expires now
                app.record_fault(route.name, "token_revoked")
            try:
                req.token = identity.authenticate(app, req)
            except HttpError as err:
                err.service = "identity"  # keystonemiddleware rejects before the service runs: its body
                raise
        if fault is not None and fault.cut_after_bytes is not None and not req.body_consumed:
            req.cut_after = fault.cut_after_bytes
        response = route.handler(app, req)
        if fault is not None and fault.lose_answer:
            raise _Dropped  # carried out; the answer is lost on the way back
        if fault is not None and fault.cut_after_bytes is not None and req.body_consumed and req.cut_after is None:
            response = _cut(response, fault.cut_after_bytes)
            self.close_connection = True
        return response

    def _send(self, response: Response, req: Request | None) -> None:
        try:
            self._write(response, req)
        except (ConnectionError, TimeoutError):
            # The client went away mid-answer; nothing to report to anyone.
            self.close_connection = True
        finally:
            close = getattr(response.body, "close", None)
            if close is not None:
                close()

    def _write(self, response: Response, req: Request | None) -> None:
        if req is None or not req.body_consumed:
            # The handler refused before reading the body: the rest of it is still on the socket, so
            # this connection cannot carry another request.
            self.close_connection = True
        self.send_response(response.status)
        self._answered = response.status
        headers = dict(response.headers)
        if self.close_connection:
            headers["Connection"] = "close"
        body = response.body
        if isinstance(body, bytes):
            headers.setdefault("Content-Length", str(len(body)))
        elif response.length is not None:
            headers["Content-Length"] = str(response.length)
        else:
            headers["Transfer-Encoding"] = "chunked"
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if isinstance(body, bytes):
            self.wfile.write(body)
        elif response.length is not None:
            for chunk in body:
                self.wfile.write(chunk)
        else:
            for chunk in body:
                if chunk:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.write(b"0\r\n\r\n")


class _SimulatorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: SimulatorApp) -> None:
        self.app = app
        super().__init__(address, SimulatorRequestHandler)


class SimulatorServer:
    """A simulator bound to a loopback port. Use as a context manager, or `start()` / `stop()`."""

    def __init__(
        self,
        store: StateStore,
        behaviour: Behaviour | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.app = SimulatorApp(store, behaviour)
        self._httpd = _SimulatorHTTPServer((host, port), self.app)
        if tls is not None:
            # HTTPS, for testing the client's certificate checks (a custom CA through REQUESTS_CA_BUNDLE).
            self._httpd.socket = tls.wrap_socket(self._httpd.socket, server_side=True)
        bound_host, bound_port = self._httpd.server_address[:2]
        self.app.base_url = f"{'https' if tls else 'http'}://{bound_host}:{bound_port}"
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return self.app.base_url

    @property
    def identity_url(self) -> str:
        return f"{self.app.base_url}/v2.0"

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    def start(self) -> SimulatorServer:
        # A short poll interval so that stop() returns promptly (shutdown waits for the next poll).
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01}, name="simulator", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._httpd.serve_forever()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.app.store.close()

    def advance_clock(self, seconds: float) -> float:
        """Move the simulator's clock (Date headers, new timestamps, token expiry) forward by `seconds`;
        return the new offset from the real time. The same as `POST /_simulator/clock`."""
        return self.app.advance_clock(seconds)

    def now(self) -> float:
        """The simulator's time, epoch seconds."""
        return self.app.now()

    def request_log(self, since: float | None = None) -> list[dict[str, Any]]:
        """The request log, oldest first (the same as `GET /_simulator/requests`): one entry per request
        served, with real-time (`time.time()`) start and end; see reconciler.simulator.request_log.
        With `since`, only the requests in flight at or after it."""
        return self.app.requests.entries(since)

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
