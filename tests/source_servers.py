"""Local servers for URL sources (`source.url`): real HTTP and HTTPS on 127.0.0.1 only, with routes a test
sets, every request recorded, and a trustme certificate authority the tool is told to trust.

    authority = Authority()                               # one throwaway CA; cert for localhost and 127.0.0.1
    with SourceServer(authority) as server:               # https; SourceServer() is plain http
        server.route("/a.img", body=b"...")               # also status=, headers=, redirect=, drop_after=, gzip=,
                                                          # length=False
        authority.trust(monkeypatch, tmp_path)            # REQUESTS_CA_BUNDLE for this test
        url = server.url("/a.img")                        # https://localhost:PORT/a.img
        ...
        server.requests                                   # [Seen(method, path, headers), ...]

`ConnectProxy` is an https proxy (CONNECT tunnels only) on 127.0.0.1 that records where it was asked to go.
`connections(monkeypatch)` records every address urllib3 opens a socket to, so a test can prove that a
refused address never got a packet."""

from __future__ import annotations

import gzip
import http.server
import select
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trustme


@dataclass
class Route:
    """What one path answers. `redirect` sets Location (status 302 unless given); `drop_after` sends the
    full Content-Length but closes the connection after that many body bytes; `gzip` sends the body gzipped
    with Content-Encoding: gzip; `length=False` sends no Content-Length and closes the connection after the
    body (the client reads to the end)."""

    body: bytes = b""
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    redirect: str | None = None
    drop_after: int | None = None
    gzip: bool = False
    length: bool = True


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]  # names lowercase


class Authority:
    """A trustme CA with one server certificate, valid for `localhost` and `127.0.0.1`."""

    def __init__(self) -> None:
        self.ca = trustme.CA()
        self.certificate = self.ca.issue_cert("localhost", "127.0.0.1")

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.certificate.configure_cert(context)
        return context

    def bundle(self, directory: Path) -> Path:
        path = directory / "source-ca.pem"
        self.ca.cert_pem.write_to_path(str(path))
        return path

    def trust(self, monkeypatch: Any, directory: Path) -> Path:
        """Make this CA the one the tool trusts for the rest of the test (REQUESTS_CA_BUNDLE)."""
        path = self.bundle(directory)
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(path))
        monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
        return path


class _Quiet(http.server.ThreadingHTTPServer):
    """A client that hangs up mid-answer (a test closing a download) is expected, not worth a traceback."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


class SourceServer:
    """A threaded HTTP(S) server on 127.0.0.1 serving `routes`; unknown paths answer 404."""

    def __init__(self, authority: Authority | None = None) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[Seen] = []
        self.scheme = "https" if authority else "http"
        self._server = _Quiet(("127.0.0.1", 0), _handler(self))
        if authority is not None:
            self._server.socket = authority.server_context().wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    def route(self, path: str, body: bytes = b"", **how: Any) -> str:
        """Serve `path` (as the request line names it, query included); returns its URL."""
        self.routes[path] = Route(body=body, **how)
        return self.url(path)

    def url(self, path: str = "/", host: str = "localhost") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    def seen(self, path: str) -> list[Seen]:
        return [request for request in self.requests if request.path == path]

    def __enter__(self) -> SourceServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler(owner: SourceServer) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # quiet: pytest shows what matters
            pass

        def do_GET(self) -> None:
            self._answer(send_body=True)

        def do_HEAD(self) -> None:
            self._answer(send_body=False)

        def _answer(self, send_body: bool) -> None:
            owner.requests.append(Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}))
            route = owner.routes.get(self.path) or Route(body=b"not found\n", status=404)
            body = gzip.compress(route.body) if route.gzip else route.body
            self.send_response(route.status or (302 if route.redirect else 200))
            if route.redirect is not None:
                self.send_header("Location", route.redirect)
            if route.gzip:
                self.send_header("Content-Encoding", "gzip")
            for name, value in route.headers.items():
                self.send_header(name, value)
            if not route.length:
                self.send_header("Connection", "close")
                self.close_connection = True
            elif "Content-Length" not in route.headers:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not send_body:
                return
            if route.drop_after is not None:
                self.wfile.write(body[: route.drop_after])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self.wfile.write(body)

    return Handler


class ConnectProxy:
    """An http proxy on 127.0.0.1 that only tunnels (CONNECT), recording each target as asked for."""

    def __init__(self) -> None:
        self.targets: list[str] = []
        self._server = _Quiet(("127.0.0.1", 0), _tunnel(self))
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> ConnectProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def _tunnel(owner: ConnectProxy) -> type[http.server.BaseHTTPRequestHandler]:
    class Tunnel(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_CONNECT(self) -> None:
            owner.targets.append(self.path)
            host, _, port = self.path.rpartition(":")
            try:
                upstream = socket.create_connection((host.strip("[]"), int(port)), timeout=10)
            except OSError:
                self.send_error(502)
                return
            self.send_response(200, "Connection established")
            self.end_headers()
            _pump(self.connection, upstream)
            upstream.close()
            self.close_connection = True

    return Tunnel


def _pump(one: socket.socket, other: socket.socket) -> None:
    """Copy bytes both ways until either side closes."""
    while True:
        ready, _, _ = select.select([one, other], [], [], 10)
        if not ready:
            return
        for source in ready:
            data = source.recv(65536)
            if not data:
                return
            (other if source is one else one).sendall(data)


def connections(monkeypatch: Any) -> list[str]:
    """Every address urllib3 opens a TCP connection to from now on in this test, in order."""
    from urllib3.util import connection

    opened: list[str] = []
    original: Callable[..., socket.socket] = connection.create_connection

    def recording(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        opened.append(address[0])
        return original(address, *args, **kwargs)

    monkeypatch.setattr(connection, "create_connection", recording)
    return opened
