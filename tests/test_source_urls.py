"""A `source.url` is read over https from an address that passed the checks, redirects followed by hand and
each hop checked before it is contacted, the operator's header sent to the manifest URL's origin only
(reconciler.sources.urls). Real HTTP(S) on 127.0.0.1 only (tests/source_servers.py): a refused address is
never connected to, which `connections` proves."""

from __future__ import annotations

from pathlib import Path

import pytest
from source_servers import Authority, ConnectProxy, SourceServer, connections

from reconciler.desired import Source
from reconciler.sources.access import SourceAccess
from reconciler.sources.reading import CHUNK, SourceError, open_source, probe

DIGEST = "0" * 64
ACCESS = SourceAccess(allowed_hosts=frozenset({"localhost"}))
SECRET = "Bearer s3cret-token-value-9F"


def url_source(url: str) -> Source:
    return Source(url=url, sha256=DIGEST, disk_format="qcow2")


def read_all(url: str, access: SourceAccess = ACCESS) -> tuple[str, int | None, bytes]:
    with open_source(url_source(url), Path("/nonexistent-root"), access) as opened:
        return opened.where, opened.size, b"".join(opened.chunks())


def refusal(url: str, access: SourceAccess = ACCESS) -> SourceError:
    with pytest.raises(SourceError) as caught:
        read_all(url, access)
    return caught.value


@pytest.fixture(scope="module")
def authority() -> Authority:
    return Authority()


@pytest.fixture
def server(authority, monkeypatch, tmp_path):
    """An https server trusted through REQUESTS_CA_BUNDLE for this test."""
    authority.trust(monkeypatch, tmp_path)
    with SourceServer(authority) as started:
        yield started


@pytest.fixture
def other(authority, server):
    """A second https server: same host name, another port, so another origin."""
    with SourceServer(authority) as started:
        yield started


@pytest.fixture
def opened_to(monkeypatch) -> list[str]:
    return connections(monkeypatch)


def test_a_get_streams_the_bytes_asking_for_identity(server, opened_to):
    data = bytes(range(256)) * (CHUNK // 128)  # two chunks
    url = server.route("/hardened.qcow2", data)
    with open_source(url_source(url), Path("/nonexistent-root"), ACCESS) as opened:
        assert (opened.where, opened.size) == (url, len(data))
        chunks = list(opened.chunks())
    assert b"".join(chunks) == data and max(len(chunk) for chunk in chunks) <= CHUNK
    (request,) = server.requests
    assert request.headers["accept-encoding"] == "identity"
    assert request.headers["host"] == f"localhost:{server.port}"
    assert opened_to == ["127.0.0.1"]  # the checked address itself, not a second lookup's answer


def test_a_host_literal_is_connected_to_as_written(server):
    url = server.route("/x", b"bytes").replace("localhost", "127.0.0.1")
    assert read_all(url, SourceAccess(allowed_hosts=frozenset({"127.0.0.1"})))[2] == b"bytes"


def test_a_loopback_host_not_allowed_is_refused_before_connecting(server, opened_to):
    url = server.route("/x", b"bytes")
    error = refusal(url, SourceAccess())
    assert error.message == (
        f"{url} is refused: localhost resolves to 127.0.0.1, which is a loopback address: not a global one; "
        "pass --allow-url-host localhost to allow it"
    )
    assert opened_to == [] and server.requests == []


def test_a_same_origin_redirect_is_followed(server):
    server.route("/final", b"the bytes")
    url = server.route("/start", redirect="/final")
    assert read_all(url) == (url, 9, b"the bytes")
    assert [request.path for request in server.requests] == ["/start", "/final"]


@pytest.mark.parametrize(
    ("location", "words"),
    [
        ("https://127.0.0.2:{port}/x", "127.0.0.2 is a loopback address: not a global one"),
        ("https://10.0.0.1/x", "10.0.0.1 is a private address: not a global one"),
        ("https://[::ffff:127.0.0.1]:{port}/x", "carrying 127.0.0.1 (IPv4-mapped, ::ffff:0:0/96), a loopback"),
        ("https://[fd00::1]/x", "fd00::1 is a private address (unique local, fc00::/7)"),
    ],
)
def test_a_redirect_to_a_refused_address_is_refused_before_any_packet(server, opened_to, location, words):
    url = server.route("/start", redirect=location.format(port=server.port))
    error = refusal(url)
    assert error.message.startswith(f"{url}: redirect 1, to https://"), error.message
    assert words in error.message and "pass --allow-url-host" in error.message
    assert opened_to == ["127.0.0.1"]  # the manifest URL's server only


def test_a_redirect_to_plain_http_is_refused_even_with_allow_http_loopback(server, opened_to):
    with SourceServer() as plain:
        target = plain.route("/x", b"bytes")
        url = server.route("/start", redirect=target)
        error = refusal(url, SourceAccess(allowed_hosts=frozenset({"localhost"}), allow_http_loopback=True))
        shown = target.rsplit("/", 1)[0] + "/…"  # a hop is named by its origin: its path may be a signed token
        assert error.message == f"{url}: redirect 1, to {shown}, is refused: a redirect must stay on https"
        assert plain.requests == [] and opened_to == ["127.0.0.1"]


def test_five_redirects_are_followed_and_a_sixth_is_refused(server):
    server.route("/hop5", b"done")
    for hop in range(5):
        server.route(f"/hop{hop}", redirect=f"/hop{hop + 1}")
    assert read_all(server.url("/hop0"))[2] == b"done"
    server.route("/hop5", redirect="/hop6")
    server.route("/hop6", b"too far")
    error = refusal(server.url("/hop0"))
    assert error.message == f"{server.url('/hop0')} redirects more than 5 times"
    assert server.seen("/hop6") == []


def test_the_operator_header_goes_to_the_manifest_origin_only(server, other, monkeypatch):
    monkeypatch.setenv("SOURCE_AUTH", f"Authorization: {SECRET}")
    access = SourceAccess(allowed_hosts=frozenset({"localhost"}), header_env="SOURCE_AUTH")
    server.route("/back", b"bytes")
    other.route("/away", redirect=server.url("/back"))
    url = server.route("/start", redirect=other.url("/away"))
    assert read_all(url, access)[2] == b"bytes"
    assert server.seen("/start")[0].headers["authorization"] == SECRET
    assert "authorization" not in other.seen("/away")[0].headers
    assert server.seen("/back")[0].headers["authorization"] == SECRET  # the origin again


def test_a_content_encoding_is_refused(server):
    url = server.route("/x", b"bytes" * 100, gzip=True)
    assert refusal(url).message.startswith(f"{url} answered with Content-Encoding 'gzip'")


def test_a_download_that_breaks_off_is_an_error(server):
    url = server.route("/x", b"x" * (3 * CHUNK), drop_after=CHUNK + 10)
    with open_source(url_source(url), Path("/nonexistent-root"), ACCESS) as opened:
        assert opened.size == 3 * CHUNK
        with pytest.raises(SourceError, match=rf"^the download from {url} broke off after \d+ bytes"):
            for _ in opened.chunks():
                pass


def test_max_upload_bytes_refuses_a_long_content_length_and_a_long_stream(server):
    url = server.route("/x", b"12345")
    assert refusal(url, SourceAccess(allowed_hosts=frozenset({"localhost"}), max_upload_bytes=4)).message == (
        f"{url} is 5 bytes, more than --max-upload-bytes 4"
    )
    unsized = server.route("/unsized", b"12345", length=False)
    with open_source(
        url_source(unsized), Path("/r"), SourceAccess(allowed_hosts=frozenset({"localhost"}), max_upload_bytes=4)
    ) as opened:
        assert opened.size is None
        with pytest.raises(SourceError, match=r"passed --max-upload-bytes 4"):
            b"".join(opened.chunks())
    assert read_all(unsized)[2] == b"12345"


def test_a_status_other_than_200_is_named(server):
    url = server.url("/missing.qcow2")
    assert refusal(url).message == f"{url} answered 404 Not Found"
    moved = server.route("/moved", redirect="/missing.qcow2")
    origin = url.rsplit("/", 1)[0]
    assert refusal(moved).message == f"{moved} answered 404 Not Found (redirected to {origin}/…)"


def test_a_redirect_is_named_by_its_origin_never_its_path_or_query(server):
    """A redirect's path or query may be a signed token: messages name the hop's origin only."""
    moved = server.route("/moved", redirect="/sig/SECRET-IN-PATH/x.qcow2?token=SECRET-IN-QUERY")
    message = refusal(moved).message
    assert "SECRET" not in message and "answered 404" in message


def test_the_environment_proxies_are_never_used(server, monkeypatch):
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # the discard port: nothing would answer
    assert read_all(server.route("/x", b"bytes"))[2] == b"bytes"


def test_url_proxy_tunnels_to_the_checked_address(server):
    url = server.route("/x", b"through the proxy")
    with ConnectProxy() as proxy:
        access = SourceAccess(allowed_hosts=frozenset({"localhost"}), proxy=proxy.url)
        assert read_all(url, access)[2] == b"through the proxy"
    assert proxy.targets == [f"127.0.0.1:{server.port}"]


def test_an_untrusted_certificate_is_refused(server, monkeypatch):
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    url = server.route("/x", b"bytes")
    assert "CERTIFICATE_VERIFY_FAILED" in refusal(url).message


def test_plain_http_only_with_allow_http_loopback_and_only_to_loopback(opened_to):
    with SourceServer() as plain:
        url = plain.route("/x", b"plain")
        assert refusal(url).message == f"{url} is plain http: a URL source must be https"
        assert plain.requests == []
        loopback = SourceAccess(allow_http_loopback=True)
        assert read_all(url, loopback) == (url, 5, b"plain")
        assert read_all(url.replace("localhost", "127.0.0.1"), loopback)[2] == b"plain"
    elsewhere = refusal("http://10.0.0.1/x", loopback)
    assert (
        elsewhere.message
        == "http://10.0.0.1/x is plain http: --allow-http-loopback admits it to a loopback address only"
    )
    assert "10.0.0.1" not in opened_to


def test_probe_contacts_nothing_without_fetch_sources(server):
    url = server.route("/x", b"12345")
    artifact = probe(url_source(url), Path("/r"), ACCESS)
    assert (artifact.where, artifact.found, artifact.size) == (url, True, None)
    assert artifact.note == "not contacted: pass --fetch-sources to read its size"
    assert server.requests == []


def test_probe_with_fetch_sources_reads_the_size_with_one_head(server):
    server.route("/x", b"12345")
    url = server.route("/start", redirect="/x")
    fetch = SourceAccess(allowed_hosts=frozenset({"localhost"}), fetch_sources=True)
    artifact = probe(url_source(url), Path("/r"), fetch)
    assert (artifact.where, artifact.size, artifact.note) == (url, 5, None)
    assert [(request.method, request.path) for request in server.requests] == [("HEAD", "/start"), ("HEAD", "/x")]


def test_probe_failures_are_an_unknown_size_never_an_exception(server):
    fetch = SourceAccess(allowed_hosts=frozenset({"localhost"}), fetch_sources=True)
    missing = probe(url_source(server.url("/missing")), Path("/r"), fetch)
    assert (missing.size, missing.note) == (None, "size unknown: HEAD answered 404")
    refused = probe(url_source(server.route("/r", redirect="https://10.0.0.1/x")), Path("/r"), fetch)
    assert refused.size is None and "10.0.0.1 is a private address" in refused.note
    dead = probe(
        url_source("https://127.0.0.1:9/x"),
        Path("/r"),
        SourceAccess(allowed_hosts=frozenset({"127.0.0.1"}), fetch_sources=True),
    )
    assert dead.size is None and dead.note.startswith("size unknown: https://127.0.0.1:9/x: cannot connect")


def test_closing_stops_the_download(server):
    url = server.route("/x", b"x" * (4 * CHUNK))
    with open_source(url_source(url), Path("/r"), ACCESS) as opened:
        chunks = opened.chunks()
        next(chunks)
        opened.close()
        with pytest.raises(SourceError, match="broke off"):
            for _ in chunks:
                pass


def test_the_header_value_never_appears_in_an_error(server, other, monkeypatch):
    monkeypatch.setenv("SOURCE_AUTH", f"Authorization: {SECRET}")
    access = SourceAccess(allowed_hosts=frozenset({"localhost"}), header_env="SOURCE_AUTH")
    failing = [
        server.url("/missing"),
        server.route("/gzip", b"x", gzip=True),
        server.route("/far", redirect="https://10.0.0.1/x"),
        server.route("/cross", redirect=other.url("/missing")),
        server.route("/drop", b"x" * 100, drop_after=10),
    ]
    texts = []
    for url in failing:
        with pytest.raises(SourceError) as caught:
            read_all(url, access)
        texts += [str(caught.value), repr(caught.value), caught.value.hint or ""]
    monkeypatch.setenv("SOURCE_AUTH", f"not a header line {SECRET}")
    with pytest.raises(SourceError) as caught:
        read_all(server.route("/x", b"x"), access)
    texts.append(str(caught.value))
    assert (
        caught.value.message
        == "--url-header-env: SOURCE_AUTH must hold one 'Header: value' line (its value is not shown)"
    )
    assert all("s3cret" not in text for text in texts), texts


# -- what a hostile server may answer (the review of issue 25) -----------------------------------------


def test_a_content_length_of_non_ascii_digits_is_no_length_not_a_crash(server):
    """`str.isdigit()` takes "²", which int() refuses: the size is unknown, and the plan does not crash."""
    url = server.route("/x", b"bytes", headers={"Content-Length": "²"}, length=False)
    found = probe(url_source(url), Path("."), SourceAccess(allowed_hosts=frozenset({"localhost"}), fetch_sources=True))
    assert found.size is None
    assert read_all(url)[1] is None


def test_a_malformed_location_is_a_refusal_in_words(server):
    url = server.route("/start", redirect="https://[127.0.0.1/x")
    assert refusal(url).message == f"{url}: redirect 1 is not a valid URL"


def test_an_internationalised_host_is_used_in_its_ascii_form():
    from reconciler.sources.urls import split

    assert split("https://bücher.example/x.qcow2", "u").host == "xn--bcher-kva.example"


class Dripping:
    """A plain TCP server on 127.0.0.1 that answers `head` and then one byte every `every` seconds, for at
    most 20 s: a server that never stalls long enough for a per-read timeout, yet never finishes."""

    def __init__(self, head: bytes, every: float = 0.2) -> None:
        import socket
        import threading

        self.head, self.every = head, every
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        import time

        connection, _ = self.listener.accept()
        with connection:
            connection.recv(65536)
            try:
                connection.sendall(self.head)
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline:
                    connection.sendall(b"x")
                    time.sleep(self.every)
            except OSError:
                return


@pytest.fixture
def short_deadlines(monkeypatch):
    from reconciler.sources import urls

    monkeypatch.setattr(urls, "HEADERS_S", 1.0)
    monkeypatch.setattr(urls, "HEAD_S", 1.0)
    monkeypatch.setattr(urls, "STALL_S", 1.0)
    monkeypatch.setattr(urls, "WATCH_POLL_S", 0.05)


LOOPBACK_HTTP = SourceAccess(allow_http_loopback=True, fetch_sources=True)


def test_headers_that_drip_end_in_an_error_not_a_hang(short_deadlines):
    import time

    drip = Dripping(b"HTTP/1.1 200 OK\r\nX-Slow: ")
    url = f"http://127.0.0.1:{drip.port}/x"
    started = time.monotonic()
    with pytest.raises(SourceError, match="no whole answer within 1 s"):
        with open_source(url_source(url), Path("."), LOOPBACK_HTTP):
            pass
    assert time.monotonic() - started < 10


def test_a_body_that_drips_ends_in_a_stall_error_not_a_hang(short_deadlines):
    import time

    drip = Dripping(b"HTTP/1.1 200 OK\r\nContent-Length: 10000000\r\n\r\n")
    url = f"http://127.0.0.1:{drip.port}/x"
    started = time.monotonic()
    with pytest.raises(SourceError, match="stalled after"):
        with open_source(url_source(url), Path("."), LOOPBACK_HTTP) as opened:
            for _ in opened.chunks():
                pass
    assert time.monotonic() - started < 10


def test_a_head_that_drips_is_size_unknown_at_plan_time(short_deadlines):
    drip = Dripping(b"HTTP/1.1 200 OK\r\nX-Slow: ")
    found = probe(url_source(f"http://127.0.0.1:{drip.port}/x"), Path("."), LOOPBACK_HTTP)
    assert found.size is None and "no whole answer within 1 s" in (found.note or "")
