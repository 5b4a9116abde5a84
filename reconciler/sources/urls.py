"""A `source.url`: fetched over https from a global address only, with the operator's header sent to the
manifest URL's own origin only (docs/manifest.md, "Images from a file or a URL").

How an address is pinned: the host is resolved here, every address it resolves to is checked
(reconciler.sources.addresses), and the connection goes to a checked address itself, with the host name
used for SNI, for the certificate check and in the Host header. A second DNS answer (a rebinding server)
cannot swap the address between the check and the connection, because there is no second lookup.

Redirects are followed here, not by urllib3: at most REDIRECTS hops, https only, each hop's host resolved
and checked before any packet goes to it.

Proxies: the environment's (HTTPS_PROXY, ...) are never used for a URL source (urllib3 alone reads none);
with --url-proxy the tunnel is asked for the checked address (CONNECT <address>:<port>), so the proxy
connects to the address checked here, not to one it resolves itself. The host must then still resolve
here. Plain http (--allow-http-loopback, tests only) goes to a loopback address and never through a proxy.

The operator's header value (--url-header-env) is read when a URL is opened and never put in a message."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urljoin, urlsplit

import urllib3
from urllib3.exceptions import ConnectTimeoutError, HTTPError, NewConnectionError

from reconciler.live import Artifact
from reconciler.sources import addresses
from reconciler.sources.access import SourceAccess
from reconciler.sources.reading import CHUNK, Opened, SourceError

REDIRECTS = 5
TIMEOUT = urllib3.Timeout(connect=10.0, read=60.0)  # the wait for each packet
# urllib3's read timeout bounds the wait for one packet, not for an answer: a server that drips a byte every
# few seconds would hold the apply (and its lock) for ever. A watchdog shuts the connection down when:
HEADERS_S = 60.0  # the status line and headers of a GET have not all come within this
HEAD_S = 15.0  # plan's HEAD has not been answered within this (plan reads its URLs one after another)
STALL_S = 120.0  # a CHUNK (1 MiB) of the body has not come within this: the server has stalled
WATCH_POLL_S = 0.25
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_DEFAULT_PORTS = {"http": 80, "https": 443}
# The operator's header: a token, then visible ASCII, spaces and tabs (what every server reads the same way).
_HEADER = re.compile(r"([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*([\x20-\x7e\t]*)")
_DIGITS = re.compile(r"[0-9]+")
NOT_CONTACTED = "not contacted: pass --fetch-sources to read its size"


@dataclass(frozen=True, slots=True)
class Hop:
    """One URL of a redirect chain, split once."""

    url: str
    scheme: str
    host: str  # lowercase, an IPv6 literal without brackets
    port: int
    target: str  # path and query, what the request line names

    @property
    def origin(self) -> tuple[str, str, int]:
        return self.scheme, self.host, self.port

    @property
    def shown(self) -> str:
        """The hop's origin only: a redirect's path or query may hold a signed token (the manifest's own URL is
        named as written)."""
        netloc = f"[{self.host}]" if ":" in self.host else self.host
        if self.port != _DEFAULT_PORTS.get(self.scheme):
            netloc += f":{self.port}"
        return f"{self.scheme}://{netloc}/…"

    @property
    def host_header(self) -> str:
        name = f"[{self.host}]" if ":" in self.host else self.host
        return name if self.port == _DEFAULT_PORTS.get(self.scheme) else f"{name}:{self.port}"


def split(url: str, named: str) -> Hop:
    """`url` as a Hop; SourceError (naming it as `named`) when it is not an http(s) URL with a host."""
    try:
        parts: SplitResult = urlsplit(url)
        port = parts.port
    except ValueError:
        raise SourceError(f"{named} is not a valid URL") from None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise SourceError(f"{named} is not an https URL with a host")
    if parts.username is not None or parts.password is not None:
        raise SourceError(f"{named} carries credentials in the URL: pass them with --url-header-env instead")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Hop(url, parts.scheme, _ascii_host(parts.hostname, named), port or _DEFAULT_PORTS[parts.scheme], target)


def _ascii_host(host: str, named: str) -> str:
    """The host as DNS, SNI and the certificate spell it: an internationalised name in its xn-- form."""
    host = host.lower()
    if host.isascii():
        return host
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        raise SourceError(f"{named} has a host name that is not a valid internationalised domain name") from None


class _Watchdog:
    """Shuts down the sockets of one request once its deadline (`arm`) passes, so that a blocked read ends;
    `fired` then says why the request failed."""

    def __init__(self) -> None:
        self._sockets: list[socket.socket] = []
        self._deadline: float | None = None
        self._lock = threading.Lock()
        self._done = threading.Event()
        self.fired = False
        threading.Thread(target=self._run, name="url-watchdog", daemon=True).start()

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)

    def arm(self, seconds: float) -> None:
        with self._lock:
            self._deadline = time.monotonic() + seconds

    def disarm(self) -> None:
        """No deadline while the caller, not the server, is busy (the cloud taking a chunk of the upload)."""
        with self._lock:
            self._deadline = None

    def stop(self) -> None:
        self._done.set()

    def _run(self) -> None:
        while not self._done.wait(WATCH_POLL_S):
            with self._lock:
                late = self._deadline is not None and time.monotonic() > self._deadline
                sockets = list(self._sockets)
            if late:
                self.fired = True
                for sock in sockets:
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)
                return


def _watched(connection_class: type, watchdog: _Watchdog) -> type:
    """`connection_class` whose every new socket the watchdog can shut down (TLS handshake included)."""

    class Watched(connection_class):  # type: ignore[misc, valid-type]
        def _new_conn(self) -> socket.socket:
            sock = super()._new_conn()
            watchdog.watch(sock)
            return sock

    return Watched


@dataclass
class Answer:
    """A response whose status is final (no redirect), with what closes its connection and its watchdog."""

    response: Any  # urllib3.BaseHTTPResponse
    hop: Hop
    close: Callable[[], None]
    watchdog: _Watchdog

    @property
    def length(self) -> int | None:
        value = self.response.headers.get("Content-Length", "").strip()
        # ASCII digits only: str.isdigit() also takes "²", which int() refuses.
        return int(value) if _DIGITS.fullmatch(value) else None


def open_url(url: str, access: SourceAccess) -> Opened:
    """The URL's bytes, streamed. Raises SourceError for a refused address, a failed request, a status other
    than 200, a Content-Encoding, or a Content-Length over --max-upload-bytes."""
    answer = fetch("GET", url, access)
    try:
        _check_answer(answer, url, access.max_upload_bytes)
    except BaseException:
        answer.close()
        raise
    length = answer.length
    return Opened(
        where=url,
        size=length,
        _stream=lambda: _read(answer, url, length, access.max_upload_bytes),
        _close=answer.close,
    )


def probe_url(url: str, access: SourceAccess) -> Artifact:
    """The URL's size from one HEAD, only with --fetch-sources. Never raises: any failure is "size unknown"."""
    if not access.fetch_sources:
        return Artifact(where=url, note=NOT_CONTACTED)
    try:
        answer = fetch("HEAD", url, access)
    except SourceError as err:
        return Artifact(where=url, note=f"size unknown: {err.message}")
    except Exception as err:  # noqa: BLE001 - plan must not fail on a HEAD; the kind is enough to say why
        return Artifact(where=url, note=f"size unknown: the HEAD request failed ({type(err).__name__})")
    try:
        if answer.response.status != 200:
            return Artifact(where=url, note=f"size unknown: HEAD answered {answer.response.status}")
        length = answer.length
        return Artifact(where=url, size=length, note=None if length is not None else "size unknown: no Content-Length")
    finally:
        answer.close()


def fetch(method: str, url: str, access: SourceAccess) -> Answer:
    """`method` on `url`, redirects followed by hand: each hop checked before it is contacted."""
    manifest = split(url, url)
    header = operator_header(access)
    hop = manifest
    for hops in range(REDIRECTS + 1):
        named = url if hops == 0 else f"{url}: redirect {hops}, to {hop.shown},"
        if hops and hop.scheme != "https":
            raise SourceError(f"{named} is refused: a redirect must stay on https")
        targets = _addresses(hop, access, named, manifest_url=hops == 0)
        headers = {"Host": hop.host_header, "Accept-Encoding": "identity", "User-Agent": "reconciler"}
        if header is not None and hop.origin == manifest.origin:
            headers[header[0]] = header[1]
        answer = _request(method, hop, targets, headers, access, url)
        location = answer.response.headers.get("Location")
        if answer.response.status not in _REDIRECT_STATUSES or not location:
            return answer
        answer.close()
        try:
            following = urljoin(hop.url, location)
        except ValueError:
            raise SourceError(f"{url}: redirect {hops + 1} is not a valid URL") from None
        hop = split(following, f"{url}: redirect {hops + 1}")
    raise SourceError(f"{url} redirects more than {REDIRECTS} times")


def operator_header(access: SourceAccess) -> tuple[str, str] | None:
    """(name, value) of the --url-header-env line, read now; its value never reaches a message."""
    if access.header_env is None:
        return None
    line = os.environ.get(access.header_env)
    matched = _HEADER.fullmatch(line) if line is not None else None
    if matched is None:
        raise SourceError(
            f"--url-header-env: {access.header_env} must hold one 'Header: value' line (its value is not shown)"
        )
    return matched.group(1), matched.group(2).rstrip(" \t")


def _addresses(hop: Hop, access: SourceAccess, named: str, *, manifest_url: bool) -> list[str]:
    """The addresses `hop` may be contacted at, every one checked; SourceError naming the first refused."""
    if hop.scheme == "http":
        return _loopback_addresses(hop, access, named, manifest_url=manifest_url)
    found = resolve(hop, named)
    if hop.host in access.allowed_hosts:
        return found
    for address in found:
        refused = addresses.refusal(address)
        if refused is not None:
            raise SourceError(f"{named} is refused: {refused.sentence(hop.host)}")
    return found


def _loopback_addresses(hop: Hop, access: SourceAccess, named: str, *, manifest_url: bool) -> list[str]:
    if not (manifest_url and access.allow_http_loopback):
        raise SourceError(f"{named} is plain http: a URL source must be https")
    found = resolve(hop, named) if hop.host == "localhost" or _is_literal(hop.host) else []
    if not found or not all(addresses.is_loopback(address) for address in found):
        raise SourceError(f"{named} is plain http: --allow-http-loopback admits it to a loopback address only")
    return found


def resolve(hop: Hop, named: str) -> list[str]:
    """Every address `hop.host` resolves to, in the resolver's order, each once; an address literal is itself."""
    if _is_literal(hop.host):
        return [hop.host]
    try:
        answers = socket.getaddrinfo(hop.host, hop.port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as err:
        raise SourceError(f"{named}: the host {hop.host} does not resolve ({_reason(err)})") from None
    return list(dict.fromkeys(str(answer[4][0]) for answer in answers))


def _is_literal(host: str) -> bool:
    try:
        addresses.parse(host)
    except ValueError:
        return False
    return True


def _request(method: str, hop: Hop, targets: list[str], headers: dict[str, str], access: SourceAccess, url: str):
    """The answer of the first address that accepts a connection; SourceError when none does."""
    failures: list[str] = []
    for address in targets:
        pool, close_pool = _pool(hop, address, access)
        watchdog = _Watchdog()
        pool.ConnectionCls = _watched(pool.ConnectionCls, watchdog)
        answered_within = HEAD_S if method == "HEAD" else HEADERS_S
        watchdog.arm(answered_within)
        try:
            response = pool.urlopen(
                method,
                hop.target,
                headers=headers,
                retries=False,
                redirect=False,
                assert_same_host=False,
                preload_content=False,
                decode_content=False,
                timeout=TIMEOUT,
            )
        except (NewConnectionError, ConnectTimeoutError) as err:
            watchdog.stop()
            close_pool()
            failures.append(f"{address}: {_reason(err)}")
            continue
        except (HTTPError, OSError) as err:
            watchdog.stop()
            close_pool()
            why = f"no whole answer within {answered_within:g} s" if watchdog.fired else _reason(err)
            raise SourceError(f"{url}: {method} {hop.shown} failed: {why}") from None
        watchdog.disarm()  # armed again by each read of the body (_read)
        if watchdog.fired:  # the shutdown can read as the end of the headers: an answer, but not the server's
            response.close()
            close_pool()
            raise SourceError(f"{url}: {method} {hop.shown} failed: no whole answer within {answered_within:g} s")
        return Answer(response, hop, _closer(response, close_pool, watchdog), watchdog)
    raise SourceError(f"{url}: cannot connect to {hop.host} ({'; '.join(failures)})")


def _pool(hop: Hop, address: str, access: SourceAccess) -> tuple[Any, Callable[[], None]]:
    """A pool of one connection to `address` itself, speaking TLS for `hop.host`, and what closes it."""
    if hop.scheme == "http":
        pool = urllib3.HTTPConnectionPool(address, hop.port, maxsize=1, timeout=TIMEOUT, retries=False)
        return pool, pool.close
    tls = {
        "cert_reqs": "CERT_REQUIRED",
        "ca_certs": ca_bundle(),
        "server_hostname": hop.host,
        "assert_hostname": hop.host,
    }
    if access.proxy is None:
        pool = urllib3.HTTPSConnectionPool(address, hop.port, maxsize=1, timeout=TIMEOUT, retries=False, **tls)
        return pool, pool.close
    manager = _proxy_manager(access.proxy)
    pool = manager.connection_from_host(address, hop.port, scheme="https", pool_kwargs=tls)
    return pool, manager.clear


def _proxy_manager(proxy: str) -> urllib3.ProxyManager:
    """--url-proxy, its credentials (if the URL has any) sent as Proxy-Authorization, never shown."""
    parts = urlsplit(proxy)
    headers = {}
    if parts.username is not None:
        headers = urllib3.make_headers(proxy_basic_auth=f"{parts.username}:{parts.password or ''}")
    bare = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
    return urllib3.ProxyManager(bare, proxy_headers=headers, timeout=TIMEOUT, retries=False, maxsize=1)


def ca_bundle() -> str:
    """The CAs a URL source's certificate is checked against: what the cloud transport honours."""
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle:
        return bundle
    import certifi

    return certifi.where()


def _closer(response: Any, close_pool: Callable[[], None], watchdog: _Watchdog) -> Callable[[], None]:
    def close() -> None:
        watchdog.stop()
        response.close()  # closes its connection too: a cancelled upload stops the download at once
        close_pool()

    return close


def _check_answer(answer: Answer, url: str, limit: int) -> None:
    response = answer.response
    final = "" if answer.hop.url == url else f" (redirected to {answer.hop.shown})"
    if response.status != 200:
        raise SourceError(f"{url} answered {response.status} {response.reason or ''}".rstrip() + final)
    encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise SourceError(
            f"{url} answered with Content-Encoding {encoding!r}{final}: the bytes must arrive as they are, "
            "for their hash to be the manifest's"
        )
    length = answer.length
    if length is not None and length > limit:
        raise SourceError(
            f"{url} is {length} bytes, more than --max-upload-bytes {limit}",
            hint="pass a larger --max-upload-bytes if the URL is right",
        )


def _read(answer: Answer, url: str, length: int | None, limit: int) -> Iterator[bytes]:
    received = 0
    try:
        answer.watchdog.arm(STALL_S)
        for chunk in answer.response.stream(CHUNK, decode_content=False):
            received += len(chunk)
            if received > limit:
                raise SourceError(f"the download from {url} passed --max-upload-bytes {limit}")
            answer.watchdog.disarm()
            yield chunk
            answer.watchdog.arm(STALL_S)
    except (HTTPError, OSError, ValueError):
        if answer.watchdog.fired:
            raise SourceError(
                f"the download from {url} stalled after {received} bytes: less than {CHUNK} bytes came in {STALL_S:g} s"
            ) from None
        raise SourceError(f"the download from {url} broke off after {received} bytes") from None
    if length is not None and received < length:
        raise SourceError(f"the download from {url} broke off after {received} bytes (of {length})")


def _reason(err: BaseException) -> str:
    """A short why, from the innermost OS error when there is one (never a request's headers)."""
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, OSError) and seen.strerror:
            return seen.strerror
        seen = seen.__cause__ or seen.__context__
    if isinstance(err, ConnectTimeoutError):
        return f"no answer within {TIMEOUT.connect_timeout:g} s"
    return str(err) or type(err).__name__
