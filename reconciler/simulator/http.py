"""HTTP plumbing for the simulator: requests, responses, routes, and each service's error body shape.

The simulator's services each answer errors the way the real one does, because the reconciler's client
has to parse exactly those:

- Glance (image): `{"message": "...<br /><br />\\n\\n\\n", "code": "403 Forbidden", "title": "Forbidden"}`
- Nova and Cinder (compute, volume): `{"conflictingRequest": {"message": "...", "code": 409}}`
- Keystone (identity, and the auth middleware in front of every service):
  `{"error": {"message": "...", "code": 401, "title": "Unauthorized"}}`
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, BinaryIO
from urllib.parse import unquote

JSON = "application/json"
# Nova and Cinder name their fault bodies after the status (nova/api/openstack/wsgi.py, Fault).
NOVA_FAULT_NAMES = {
    400: "badRequest",
    401: "unauthorized",
    403: "forbidden",
    404: "itemNotFound",
    405: "badMethod",
    409: "conflictingRequest",
    413: "overLimit",
    415: "badMediaType",
    429: "overLimit",
    501: "notImplemented",
    503: "serviceUnavailable",
}
BODY_CHUNK = 1024 * 1024


class HttpError(Exception):
    """Answer the request with `status` and `message`, in the service's error body shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        media_type: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
        # For a 415: the refused media type, which Glance names before the reason (webob's template).
        self.media_type = media_type
        # The service whose body shape this error takes, when not the route's (401s of the auth step).
        self.service: str | None = None


@dataclass(slots=True)
class Response:
    status: int
    body: bytes | Iterable[bytes] = b""
    headers: dict[str, str] = field(default_factory=dict)
    # For a streamed body: its length when known (Content-Length), else the body is sent chunked.
    length: int | None = None


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(payload).encode("utf-8")
    return Response(status, body, {"Content-Type": JSON, **(headers or {})})


def empty_response(status: int = 204, headers: dict[str, str] | None = None) -> Response:
    return Response(status, b"", dict(headers or {}))


def reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def error_body(service: str, status: int, message: str, media_type: str | None = None) -> dict[str, Any]:
    """The error document each service sends for `status`."""
    if service == "image":
        # Glance renders webob's HTML error template to JSON; the message keeps its HTML residue. A 415
        # uses webob's own explanation first and Glance's reason after it (seen on Glance 33).
        text = (
            f"The request media type {media_type} is not supported by this server.\n<br /><br />\n{message}"
            if status == 415 and media_type is not None
            else f"{message}<br /><br />\n\n\n"
        )
        return {
            "message": text,
            "code": f"{status} {reason(status)}",
            "title": reason(status),
        }
    if service in ("compute", "volume"):
        name = NOVA_FAULT_NAMES.get(status, "computeFault" if service == "compute" else "badRequest")
        return {name: {"message": message, "code": status}}
    return {"error": {"message": message, "code": status, "title": reason(status)}}


def error_response(service: str, err: HttpError, accept: str = JSON) -> Response:
    if service == "image" and "json" not in (accept or ""):
        # Glance picks the error format from Accept: without JSON it sends webob's HTML page,
        # which a client must not try to parse as JSON.
        title = f"{err.status} {reason(err.status)}"
        html = (
            f"<html>\n <head>\n  <title>{title}</title>\n </head>\n <body>\n  <h1>{title}</h1>\n"
            f"  {err.message}<br /><br />\n\n\n\n </body>\n</html>"
        )
        return Response(err.status, html.encode("utf-8"), {"Content-Type": "text/html; charset=UTF-8", **err.headers})
    return json_response(err.status, error_body(service, err.status, err.message, err.media_type), err.headers)


class Request:
    """One HTTP request. The body is read lazily: `json()` for documents, `stream()` for data."""

    def __init__(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: Any,
        rfile: BinaryIO,
    ) -> None:
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.params: dict[str, str] = {}
        self.token: Any = None  # set by the authentication step (authentication.py): a tokens.Token
        self._rfile = rfile
        # True once the whole body has been read: a connection whose request body was left (partly)
        # unread cannot carry another request and is closed after the answer.
        self.body_consumed = not self._has_body()
        self._streaming = False
        self.cut_after: int | None = None  # a fault: the connection breaks after this many body bytes
        self.received = 0  # body bytes streamed so far (the request log shows how much of an upload arrived)

    def _has_body(self) -> bool:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return True
        return self.content_length() > 0

    def content_length(self) -> int:
        raw = self.headers.get("Content-Length") or "0"
        if not raw.isdigit():
            raise HttpError(400, f"Invalid Content-Length: {raw!r}")
        return int(raw)

    def arg(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None

    @property
    def content_type(self) -> str:
        return (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()

    def stream(self) -> Iterator[bytes]:
        """The body, in chunks of at most BODY_CHUNK bytes, never held whole."""
        for chunk in self._stream():
            if self.cut_after is not None and self.received + len(chunk) >= self.cut_after:
                raise ConnectionResetError("simulated fault: the connection broke mid-upload")
            self.received += len(chunk)
            yield chunk

    def _stream(self) -> Iterator[bytes]:
        if self.body_consumed or self._streaming:
            return
        self._streaming = True
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            yield from self._chunked()
        else:
            remaining = self.content_length()
            while remaining > 0:
                chunk = self._rfile.read(min(BODY_CHUNK, remaining))
                if not chunk:
                    raise HttpError(400, "The request body ended before its Content-Length")
                remaining -= len(chunk)
                yield chunk
        self.body_consumed = True

    def _chunked(self) -> Iterator[bytes]:
        while True:
            line = self._rfile.readline(65537)
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                raise HttpError(400, "Malformed chunked request body") from None
            if size == 0:
                # Trailers, then the blank line that ends the body.
                while self._rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass
                return
            remaining = size
            while remaining > 0:
                chunk = self._rfile.read(min(BODY_CHUNK, remaining))
                if not chunk:
                    raise HttpError(400, "The request body ended inside a chunk")
                remaining -= len(chunk)
                yield chunk
            self._rfile.readline(3)  # the CRLF after each chunk

    def read_body(self, limit: int = 16 * 1024 * 1024) -> bytes:
        data = bytearray()
        for chunk in self.stream():
            data += chunk
            if len(data) > limit:
                raise HttpError(413, "Request body too large")
        return bytes(data)

    def json(self) -> Any:
        raw = self.read_body()
        if not raw:
            raise HttpError(400, "Malformed request body: there is no body")
        try:
            return json.loads(raw)
        except ValueError as err:
            raise HttpError(400, f"Malformed request body: {err}") from None

    def json_object(self) -> dict[str, Any]:
        body = self.json()
        if not isinstance(body, dict):
            raise HttpError(400, "Malformed request body: expected a JSON object")
        return body


Handler = Callable[[Any, Request], Response]


@dataclass(frozen=True, slots=True)
class Route:
    """`method` + path `template` (`{name}` matches one path segment) served by `handler`.

    `service` picks the error body shape; `auth` says whether a valid token is required; `stream` marks
    image data transfers (the request log's `stream`). The route's name, `"METHOD template"`, is what the
    stats endpoint counts and what faults are keyed by.
    """

    method: str
    template: str
    service: str
    handler: Handler
    auth: bool = True
    stream: bool = False

    @property
    def name(self) -> str:
        return f"{self.method} {self.template}"

    def pattern(self) -> re.Pattern[str]:
        regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(self.template))
        # Glance answers a path with a trailing slash 404 (`DELETE /v2/images/ID/` deletes nothing: checked
        # against Glance 33, tests/contract); the other services' routes take one.
        slash = "" if self.service == "image" and "/v2/images" in self.template else "/?"
        return re.compile(f"^{regex}{slash}$")


class Router:
    def __init__(self, routes: Iterable[Route]) -> None:
        self._routes = [(route, route.pattern()) for route in routes]

    def match(self, method: str, path: str) -> tuple[Route | None, dict[str, str], bool]:
        """(route, path params, path_known). `path_known` with no route means: wrong method (405)."""
        path_known = False
        for route, pattern in self._routes:
            found = pattern.match(path)
            if found:
                path_known = True
                if route.method == method:
                    # Match on the raw path (an encoded "/" stays inside its segment), then decode.
                    return route, {k: unquote(v) for k, v in found.groupdict().items()}, True
        return None, {}, path_known

    def service_for(self, path: str) -> str:
        first = path.strip("/").split("/", 1)[0]
        return {"image": "image", "compute": "compute", "volume": "volume"}.get(first, "identity")
