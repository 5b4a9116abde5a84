"""The end-to-end tier's stand-in for NHN Cloud's identity service, in front of real Glance servers.

One stdlib `ThreadingHTTPServer` on loopback serves:

- `POST /v2.0/tokens`: Keystone v2 tokens for a table of users, each in one project, with a catalog whose
  `image` endpoints (one per region, the bare host as on NHN) are this server's `/image/<region>`, and
  whose `compute` and `volumev2` endpoints (`.../v2/<tenant>`) are this server's own;
- `/image/<region>/...`: a proxy to that region's Glance. It swaps the token for Glance's trusted identity
  headers (the token's project, roles member and reader) and streams method, path, query and body one way
  and status, headers (Glance's own `Date`, `Content-MD5`, ...) and body the other;
- `/compute/<region>/v2/<tenant>/servers/detail` and `/volume/<region>/v2/<tenant>/volumes/detail`:
  empty pages (the project has no servers or volumes; Glance cannot image one); anything else there: 404.

`delay_next_image_patch(seconds)` holds the next image PATCH that is not a lock claim's for that long
before forwarding it: the race test keeps the first apply inside its lock while the second one starts.
"""

from __future__ import annotations

import http.client
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

TOKEN_LIFE_S = 3600
CHUNK = 64 * 1024
LOCK_NAME_PREFIX = "reconciler-lock-"
LOCK_PROPERTY_PREFIX = "reconciler_lock"
# Never forwarded: hop-by-hop headers, and any identity a caller might try to assert itself.
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}
IDENTITY = re.compile(r"^x-(auth-token|identity-status|project-|roles|user|tenant|domain|service-|is-admin)", re.I)
IMAGE_PATH = re.compile(r"^/image/([A-Z0-9]+)(/.*)$")
IMAGE_ID = re.compile(r"^/v2/images/([^/?]+)$")
COMPUTE_PATH = re.compile(r"^/(compute|volume)/([A-Z0-9]+)/v2/([^/]+)(/[^?]*)$")


@dataclass
class Token:
    project: str
    username: str
    expires: float


@dataclass
class Delayed:
    """An image PATCH the front held back."""

    region: str
    image_id: str
    project: str
    seconds: float
    started: float


@dataclass
class Patched:
    """An image PATCH (not a lock claim's) the front forwarded, and Glance's status."""

    region: str
    image_id: str
    project: str
    status: int


@dataclass
class IdentityFront:
    """The server object; `start()` it, `stop()` it. `glance` maps region names to Glance base URLs."""

    glance: dict[str, str]
    users: dict[str, tuple[str, str]] = field(default_factory=dict)  # username -> (password, project)
    tokens: dict[str, Token] = field(default_factory=dict)
    delayed: list[Delayed] = field(default_factory=list)
    patches: list[Patched] = field(default_factory=list)
    lock_claims: dict[str, str] = field(default_factory=dict)  # id -> region of images named reconciler-lock-*
    _delay_s: float = 0.0
    _guard: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    # -- control --------------------------------------------------------------------------------------

    def start(self) -> IdentityFront:
        front = self

        class Handler(_Handler):
            pass

        Handler.front = front
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="identity-front", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def identity_url(self) -> str:
        """What NHN_CLOUD_IDENTITY_URL names."""
        return f"{self.url}/v2.0"

    def add_user(self, username: str, password: str, project: str) -> None:
        with self._guard:
            self.users[username] = (password, project)

    def image_endpoint(self, region: str) -> str:
        return f"{self.url}/image/{region}"

    def delay_next_image_patch(self, seconds: float) -> None:
        """Hold the next image PATCH that is not a lock claim's `seconds` before forwarding it (once)."""
        with self._guard:
            self._delay_s = seconds

    def token_for(self, username: str, password: str, project: str) -> str:
        """A token, as a client other than the tool (a partner checking a share) would get one."""
        answer = _post_json(f"{self.identity_url}/tokens", _auth_body(username, password, project))
        return answer["access"]["token"]["id"]

    # -- behaviour ------------------------------------------------------------------------------------

    def _issue(self, body: object) -> tuple[int, dict]:
        auth = body.get("auth") if isinstance(body, dict) else None
        creds = auth.get("passwordCredentials") if isinstance(auth, dict) else None
        if not isinstance(creds, dict):
            return 400, {"error": {"code": 400, "title": "Bad Request", "message": "passwordCredentials required"}}
        with self._guard:
            known = self.users.get(str(creds.get("username")))
        tenant = auth.get("tenantId")
        if known is None or known[0] != creds.get("password") or (tenant is not None and tenant != known[1]):
            return 401, {
                "error": {
                    "code": 401,
                    "title": "Unauthorized",
                    "message": "The request you have made requires authentication.",
                }
            }
        project = known[1]
        token = uuid.uuid4().hex
        expires = time.time() + TOKEN_LIFE_S
        with self._guard:
            self.tokens[token] = Token(project, str(creds["username"]), expires)

        def endpoints(path: str) -> list[dict]:
            return [
                {"region": region, "publicURL": f"{self.url}{path.format(region=region)}"}
                for region in sorted(self.glance)
            ]

        access = {
            "token": {
                "id": token,
                "issued_at": _iso(time.time()),
                "expires": _iso(expires),
                "tenant": {"id": project, "name": project, "enabled": True},
            },
            "serviceCatalog": [
                {"type": "image", "name": "glance", "endpoints": endpoints("/image/{region}")},
                {"type": "compute", "name": "nova", "endpoints": endpoints(f"/compute/{{region}}/v2/{project}")},
                {"type": "volumev2", "name": "cinderv2", "endpoints": endpoints(f"/volume/{{region}}/v2/{project}")},
            ],
            "user": {"id": str(creds["username"]), "name": str(creds["username"]), "roles": [{"name": "member"}]},
        }
        return 200, {"access": access}

    def _project_of(self, token: str | None) -> str | None:
        with self._guard:
            found = self.tokens.get(token or "")
        return found.project if found is not None and found.expires > time.time() else None

    def _image_patch(self, path: str, body: bytes) -> str | None:
        """The image id of a PATCH that is not a lock claim's (by its id or its properties), else None."""
        match = IMAGE_ID.match(urlsplit(path).path)
        if match is None:
            return None
        try:
            ops = json.loads(body or b"[]")
        except ValueError:
            ops = []
        touches_lock = any(
            isinstance(op, dict) and str(op.get("path", "")).lstrip("/").startswith(LOCK_PROPERTY_PREFIX)
            for op in (ops if isinstance(ops, list) else [])
        )
        with self._guard:
            return None if touches_lock or match.group(1) in self.lock_claims else match.group(1)

    def _hold(self, region: str, image_id: str, project: str) -> None:
        """The race hook: hold the first image PATCH after `delay_next_image_patch`."""
        with self._guard:
            if not self._delay_s:
                return
            seconds, self._delay_s = self._delay_s, 0.0
            self.delayed.append(Delayed(region, image_id, project, seconds, time.time()))
        time.sleep(seconds)

    def _note_patch(self, region: str, image_id: str, project: str, status: int) -> None:
        with self._guard:
            self.patches.append(Patched(region, image_id, project, status))

    def _note_claim(self, region: str, doc: object) -> None:
        if isinstance(doc, dict) and str(doc.get("name", "")).startswith(LOCK_NAME_PREFIX) and doc.get("id"):
            with self._guard:
                self.lock_claims[str(doc["id"])] = region


class _Handler(BaseHTTPRequestHandler):
    front: IdentityFront
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass

    # -- dispatch -------------------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_GET

    def _dispatch(self) -> None:
        path = self.path
        if urlsplit(path).path.rstrip("/") == "/v2.0/tokens":
            if self.command != "POST":
                return self._json(405, {"error": {"code": 405, "message": "POST only"}})
            try:
                body = json.loads(self._read_body() or b"null")
            except ValueError:
                return self._json(400, {"error": {"code": 400, "message": "not JSON"}})
            return self._json(*self.front._issue(body))
        project = self.front._project_of(self.headers.get("X-Auth-Token"))
        if project is None:
            self._read_body()
            return self._json(401, {"error": {"code": 401, "title": "Unauthorized", "message": "bad or expired token"}})
        image = IMAGE_PATH.match(path)
        if image is not None:
            return self._proxy(image.group(1), image.group(2), project)
        other = COMPUTE_PATH.match(urlsplit(path).path)
        self._read_body()
        if other is not None and other.group(3) != project:
            return self._json(403, {"forbidden": {"code": 403, "message": "another project's URL"}})
        if other is not None and self.command == "GET" and other.group(2) in self.front.glance:
            if other.group(1) == "compute" and other.group(4) == "/servers/detail":
                return self._json(200, {"servers": [], "servers_links": []})
            if other.group(1) == "volume" and other.group(4) == "/volumes/detail":
                return self._json(200, {"volumes": [], "volumes_links": []})
        return self._json(404, {"itemNotFound": {"code": 404, "message": "not served here"}})

    # -- the image proxy ------------------------------------------------------------------------------

    def _proxy(self, region: str, path: str, project: str) -> None:
        base = self.front.glance.get(region)
        if base is None:
            self._read_body()
            return self._json(404, {"itemNotFound": {"code": 404, "message": f"no region {region}"}})
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP and not IDENTITY.match(k)}
        headers.pop("Host", None)
        headers.update({"X-Identity-Status": "Confirmed", "X-Project-Id": project, "X-Roles": "member,reader"})
        body: object = None
        patched: str | None = None
        if self.command == "PATCH":
            body = self._read_body()
            patched = self.front._image_patch(path, body)
            if patched is not None:
                self.front._hold(region, patched, project)
        elif self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            headers.pop("Content-Length", None)
            body = self._chunked_body()  # http.client re-chunks an iterable body
        elif int(self.headers.get("Content-Length") or 0) > 0:
            body = self._sized_body(int(self.headers["Content-Length"]))
        target = urlsplit(base)
        upstream = http.client.HTTPConnection(target.hostname, target.port, timeout=600)
        try:
            upstream.request(self.command, path, body=body, headers=headers)
            answer = upstream.getresponse()
            if patched is not None:
                self.front._note_patch(region, patched, project, answer.status)
            self._relay(answer, region)
        except OSError as err:
            self.close_connection = True
            try:
                self._json(502, {"message": f"proxy: {type(err).__name__}: {err}"})
            except OSError:
                pass
        finally:
            upstream.close()

    def _relay(self, answer: http.client.HTTPResponse, region: str) -> None:
        self.send_response_only(answer.status, answer.reason)
        length = answer.getheader("Content-Length")
        for key, value in answer.getheaders():
            if key.lower() not in HOP_BY_HOP:
                self.send_header(key, value)
        no_body = self.command == "HEAD" or answer.status in (204, 304) or 100 <= answer.status < 200
        chunked = length is None and not no_body
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if no_body:
            return
        created = self.command == "POST" and answer.status == 201
        kept = bytearray() if created else None
        while chunk := answer.read(CHUNK):
            if kept is not None:
                kept += chunk
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")
        if kept is not None:
            try:
                self.front._note_claim(region, json.loads(kept))
            except ValueError:
                pass

    # -- bodies ---------------------------------------------------------------------------------------

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return b"".join(self._chunked_body())
        return b"".join(self._sized_body(int(self.headers.get("Content-Length") or 0)))

    def _sized_body(self, length: int) -> Iterator[bytes]:
        while length > 0:
            chunk = self.rfile.read(min(CHUNK, length))
            if not chunk:
                raise ConnectionError("the client's body ended early")
            length -= len(chunk)
            yield chunk

    def _chunked_body(self) -> Iterator[bytes]:
        while True:
            size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return
            yield self.rfile.read(size)
            self.rfile.readline()  # the CRLF after each chunk

    def _json(self, status: int, doc: object) -> None:
        data = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _auth_body(username: str, password: str, project: str) -> dict:
    return {"auth": {"tenantId": project, "passwordCredentials": {"username": username, "password": password}}}


def _post_json(url: str, doc: object) -> dict:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request("POST", parts.path, body=json.dumps(doc), headers={"Content-Type": "application/json"})
        answer = conn.getresponse()
        data = answer.read()
        if answer.status != 200:
            raise RuntimeError(f"POST {url}: {answer.status} {data[:200]!r}")
        return json.loads(data)
    finally:
        conn.close()
