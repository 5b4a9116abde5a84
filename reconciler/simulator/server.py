"""The simulator's HTTP server: one loopback port serving identity, image, compute and volume for every
region, concurrently (one thread per connection). The URL layout is the routing table's (routes.py).

Each request goes through the same steps, each in its own module:

    routing          routes.py: the route and its path parameters, or a 404 / 405
    counting         app.py: the route's call number, which faults are keyed by
    faults, before   faults.py: latency, then a status, drop, stall or hold fault, or an armed upload cut
    authentication   authentication.py: a live project-scoped token, else a 401 (routes with `auth`)
    the handler      identity.py, images.py, compute.py, volumes.py, admin.py
    faults, after    faults.py: a lost or cut answer

Every answer carries a `Date` header from the simulator's clock (plus the `clock_skew_s` knob).
"""

from __future__ import annotations

import logging
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import SplitResult, parse_qs, urlsplit

from reconciler.simulator import routes
from reconciler.simulator.app import SimulatorApp
from reconciler.simulator.authentication import authenticate
from reconciler.simulator.behaviour import HOLD_TIMEOUT_S, Behaviour
from reconciler.simulator.faults import Dropped, FaultInjector, HoldGroup
from reconciler.simulator.http import HttpError, Request, Response, Route, error_response
from reconciler.simulator.state import StateStore

log = logging.getLogger(__name__)


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
        route, params, path_known = self.server.router.match(self.command, url.path)
        self._answered = None
        self._request: Request | None = None
        if url.path.startswith("/_simulator/"):
            self._handle(url, route, params, path_known)
            return
        entry = app.requests.begin(
            route.name if route else "(no route)", self.command, url.path, stream=bool(route and route.stream)
        )
        try:
            self._handle(url, route, params, path_known)
        finally:
            app.requests.end(entry, self._answered, received=self._request.received if self._request else 0)

    def _handle(self, url: SplitResult, route: Route | None, params: dict[str, str], path_known: bool) -> None:
        """Answer the request (or drop it), in the error body of its service whatever goes wrong."""
        app, faults = self.server.app, self.server.faults
        service = route.service if route else self.server.router.service_for(url.path)
        accept = self.headers.get("Accept", "")
        try:
            req = Request(self.command, url.path, parse_qs(url.query, keep_blank_values=True), self.headers, self.rfile)
        except HttpError as err:  # a malformed Content-Length: the body's extent is unknown
            self.close_connection = True
            self._send(error_response(service, err, accept), None)
            return
        req.params = params
        self._request = req
        held: list[HoldGroup] = []  # the hold group of this call, if any: answered with the rest of it
        try:
            if route is None:
                app.count("(no route)")
                if path_known:
                    raise HttpError(405, f"The method {self.command} is not allowed for this resource.")
                raise HttpError(404, f"The resource could not be found: {url.path}")
            response = self._carry_out(route, req, held)
        except Dropped:
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
            faults.finish(held)
        self._send(response, req)

    def _carry_out(self, route: Route, req: Request, held: list[HoldGroup]) -> Response:
        """Faults before, authentication, the route's handler, faults after: the answer, or an exception."""
        app, faults = self.server.app, self.server.faults
        call = app.count(route.name)
        fault = faults.before(route, call, req, held)
        if route.auth:
            req.token = authenticate(app, route.name, req)
        response, close = faults.after(fault, req, route.handler(app, req))
        if close:
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
        routes.check_fault_routes(app.behaviour)
        self.router = routes.router()
        # Read at each start (not at import) so that a test can shorten the hold fault's wait.
        self.faults = FaultInjector(app, hold_timeout_s=HOLD_TIMEOUT_S)
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
