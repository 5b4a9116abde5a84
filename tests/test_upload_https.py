"""Uploads from an https URL through the CLI (issue 25): `reconciler apply` against an embedded simulator root,
the URL served over real TLS on 127.0.0.1 by tests/source_servers.py with a throwaway trustme CA the tool is
told to trust (REQUESTS_CA_BUNDLE). The image is read back through the simulator's own API, never from the
tool's output.

A redirect within the origin is followed; a redirect to an address the rules refuse fails the apply before
anything connects to that address (`connections` records every socket urllib3 opens), and leaves no image.
The operator's header (--url-header-env) reaches the manifest URL's origin only, and its value is never
printed."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from source_servers import Authority, SourceServer, connections
from support import CREDENTIAL_VARIABLES, OWNER, OWNER_USER, Api

from reconciler.cli import main
from reconciler.simulator.embedded import running_simulator

CONTENT = bytes(range(256)) * 4096 * 2  # 2 MiB: two chunks of the tool's 1 MiB reads
SHA256 = hashlib.sha256(CONTENT).hexdigest()
SEED = {
    "regions": ["KR1"],
    "projects": [{"id": OWNER, "users": [{"username": OWNER_USER[0], "api_password": OWNER_USER[1]}]}],
    "behaviour": {"image_ready_after_polls": 1},
}
SECRET = "s3cret"
HEADER_VARIABLE = "ARTIFACT_AUTH"


@pytest.fixture(autouse=True)
def no_credentials(monkeypatch):
    for name in CREDENTIAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def authority() -> Authority:
    return Authority()


@pytest.fixture
def server(authority, monkeypatch, tmp_path) -> Iterator[SourceServer]:
    """The manifest URL's https server (https://localhost:PORT), its CA trusted for this test."""
    authority.trust(monkeypatch, tmp_path)
    with SourceServer(authority) as started:
        yield started


@pytest.fixture
def other(authority, server) -> Iterator[SourceServer]:
    """A second https server on another port of localhost: another origin."""
    with SourceServer(authority) as started:
        yield started


@pytest.fixture
def opened_to(monkeypatch) -> list[str]:
    return connections(monkeypatch)


def url_root(folder: Path, url: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "reconciler.yaml").write_text(
        "version: 1\nset: uploads\ncloud: {kind: simulator, seed: seed.yaml}\ndefaults: {region: KR1}\n"
    )
    (folder / "seed.yaml").write_text(yaml.safe_dump(SEED))
    image = {"source": {"url": url, "sha256": SHA256, "disk_format": "raw"}, "properties": {"os_type": "linux"}}
    (folder / "images.yaml").write_text(yaml.safe_dump({"version": 1, "images": {"hardened": image}}))
    return folder


@contextlib.contextmanager
def cloud(root: Path) -> Iterator[Api]:
    with running_simulator(root / ".reconciler" / "sim-state.json", seed_path=root / "seed.yaml") as started:
        yield Api(started, *OWNER_USER, OWNER)


def images(root: Path) -> list[dict[str, Any]]:
    with cloud(root) as api:
        answer = api.image("GET", f"/v2/images?owner={OWNER}", "KR1")
    assert answer.status_code == 200, answer.text
    return answer.json()["images"]


def apply(root: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    """The CLI's exit code and everything it printed (stdout and stderr)."""
    code = main(["apply", str(root), "--auto-approve", "--no-color", "--allow-url-host", "localhost", *extra])
    printed = capsys.readouterr()
    return code, printed.out + printed.err


def assert_uploaded(root: Path) -> None:
    (image,) = images(root)
    assert (image["name"], image["status"], image["size"]) == ("hardened", "active", len(CONTENT))
    assert image["checksum"] == hashlib.md5(CONTENT, usedforsecurity=False).hexdigest()
    assert image["os_hash_value"] == hashlib.sha512(CONTENT).hexdigest()
    assert image["reconciler_key"] == "hardened" and image["reconciler_source"] == f"sha256:{SHA256}"


def test_an_https_url_redirecting_within_its_origin_is_uploaded(tmp_path, server, capsys):
    server.route("/builds/hardened.raw", CONTENT)
    url = server.route("/latest", redirect="/builds/hardened.raw")
    root = url_root(tmp_path / "root", url)
    code, printed = apply(root, capsys)
    assert code == 0, printed
    assert_uploaded(root)
    assert [(r.method, r.path) for r in server.requests] == [("GET", "/latest"), ("GET", "/builds/hardened.raw")]
    assert main(["plan", str(root), "--detailed-exitcode"]) == 0, "converged: nothing left to do"


@pytest.mark.parametrize(
    ("location", "address", "rule"),
    [
        ("https://127.0.0.2:{port}/refused", "127.0.0.2", "127.0.0.2 is a loopback address: not a global one"),
        ("https://10.0.0.1/refused", "10.0.0.1", "10.0.0.1 is a private address: not a global one"),
        (
            "https://[::ffff:127.0.0.1]:{port}/refused",
            "::ffff:127.0.0.1",
            "an IPv6 address carrying 127.0.0.1 (IPv4-mapped, ::ffff:0:0/96), a loopback address",
        ),
    ],
    ids=["another-loopback", "private", "ipv4-mapped"],
)
def test_a_redirect_to_a_refused_address_fails_the_apply_before_connecting(
    tmp_path, server, opened_to, capsys, location, address, rule
):
    server.route("/refused", CONTENT)  # what the hop would get, were it ever contacted
    url = server.route("/latest", redirect=location.format(port=server.port))
    root = url_root(tmp_path / "root", url)
    code, printed = apply(root, capsys)
    assert code == 1, printed
    assert f"redirect 1, to {location.format(port=server.port).removesuffix('refused')}…" in printed
    assert rule in printed and f"pass --allow-url-host {address}" in printed
    assert set(opened_to) == {"127.0.0.1"}, "the simulator and the manifest URL's server only"
    # ::ffff:127.0.0.1 would reach this very server: it saw the manifest URL only.
    assert [r.path for r in server.requests] == ["/latest"]
    assert images(root) == [], "a failed upload leaves no image"


def test_the_operator_header_reaches_the_manifest_origin_only_and_is_never_printed(
    tmp_path, server, other, monkeypatch, capsys
):
    monkeypatch.setenv(HEADER_VARIABLE, f"Authorization: Bearer {SECRET}")
    server.route("/builds/hardened.raw", CONTENT)
    other.route("/mirror", redirect=server.url("/builds/hardened.raw"))
    url = server.route("/latest", redirect=other.url("/mirror"))
    root = url_root(tmp_path / "root", url)
    code, printed = apply(root, capsys, "--url-header-env", HEADER_VARIABLE)
    assert code == 0, printed
    assert_uploaded(root)
    assert server.seen("/latest")[0].headers["authorization"] == f"Bearer {SECRET}"
    assert server.seen("/builds/hardened.raw")[0].headers["authorization"] == f"Bearer {SECRET}"
    (hop,) = other.seen("/mirror")
    assert "authorization" not in hop.headers, "another port is another origin"
    assert SECRET not in printed


def test_the_header_value_is_not_printed_when_the_upload_fails(tmp_path, server, other, monkeypatch, capsys):
    monkeypatch.setenv(HEADER_VARIABLE, f"Authorization: Bearer {SECRET}")
    url = server.route("/latest", redirect=other.url("/missing"))
    root = url_root(tmp_path / "root", url)
    code, printed = apply(root, capsys, "--url-header-env", HEADER_VARIABLE)
    assert code == 1 and "404" in printed, printed
    assert "authorization" not in other.seen("/missing")[0].headers
    assert SECRET not in printed
    assert images(root) == []
