"""Secrets never appear in anything the tool writes: text, JSON and Markdown plans, saved plans and their
journal, apply reports, logs at -vv, error messages and tracebacks. TLS is always verified, and a custom
CA given through REQUESTS_CA_BUNDLE works."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
import requests
import trustme
from support import OWNER, OWNER_USER, standard_seed

from reconciler.cli import main
from reconciler.cloud.auth import Credentials
from reconciler.cloud.errors import CloudTransportError
from reconciler.cloud.nhn import connect
from reconciler.simulator import identity
from reconciler.simulator.seed import state_from_seed
from reconciler.simulator.server import SimulatorServer
from reconciler.simulator.state import StateStore

CASES = Path(__file__).resolve().parent / "cases"
REPO = Path(__file__).resolve().parent.parent
PASSWORD = "correct-horse-battery-staple-7Q"


@pytest.fixture
def issued_tokens(monkeypatch) -> list[str]:
    """Every token the simulator issues during the test."""
    tokens: list[str] = []
    original = identity.TokenStore.issue

    def recording(self, *args, **kwargs):
        token = original(self, *args, **kwargs)
        tokens.append(token.id)
        return token

    monkeypatch.setattr(identity.TokenStore, "issue", recording)
    return tokens


def test_nothing_the_tool_writes_contains_a_secret(tmp_path, capsys, caplog, monkeypatch, issued_tokens):
    root = tmp_path / "root"
    shutil.copytree(CASES / "copies-two-regions" / "root", root)
    seed = root / "seed.yaml"
    seed.write_text(seed.read_text().replace("local-only", PASSWORD))
    monkeypatch.setenv("NHN_CLOUD_USERNAME", "dev@example.com")
    monkeypatch.setenv("NHN_CLOUD_API_PASSWORD", PASSWORD)
    caplog.set_level(logging.DEBUG)
    outputs: list[str] = []

    def run(*args: str) -> int:
        code = main(list(args))
        captured = capsys.readouterr()
        outputs.extend([captured.out, captured.err])
        return code

    plan_file = tmp_path / "plan.json"
    assert run("-vv", "plan", str(root), "--out", str(plan_file)) == 0
    assert run("plan", str(root), "--format", "json") == 0
    assert run("plan", str(root), "--format", "markdown") == 0
    assert run("-vv", "apply", "--plan", str(plan_file), str(root), "--auto-approve", "--format", "json") == 0
    # Errors: wrong credentials, and an invalid root.
    monkeypatch.setenv("NHN_CLOUD_API_PASSWORD", PASSWORD + "-wrong")
    assert run("-vv", "plan", str(root)) == 1
    (root / "images" / "bad.yaml").write_text("version: 1\nimages: {x: {source: {}}}\n")
    assert run("plan", str(root)) == 1
    outputs.append(caplog.text)
    outputs.append(plan_file.read_text())
    outputs.extend(p.read_text() for p in tmp_path.glob("*.progress.json"))

    assert issued_tokens, "the test must have seen tokens to look for"
    haystack = "\n".join(outputs)
    assert PASSWORD not in haystack
    for token in issued_tokens:
        assert token not in haystack


def test_tracebacks_of_unexpected_errors_carry_no_secret(monkeypatch, capsys, issued_tokens):
    with SimulatorServer(StateStore.in_memory(state_from_seed(standard_seed()))) as sim:
        client = connect(Credentials(*OWNER_USER, identity_url=sim.identity_url), OWNER)
        headers = client._http.auth.auth_headers()
        try:
            # An unexpected failure deep in a request: its traceback is what a user would paste in a bug.
            monkeypatch.setattr(requests.Session, "send", lambda *a, **k: (_ for _ in ()).throw(ValueError("boom")))
            with pytest.raises(ValueError) as caught:
                client.list_images("KR1")
        finally:
            monkeypatch.undo()
        import traceback

        text = "".join(traceback.format_exception(caught.value))
        assert OWNER_USER[1] not in text and headers["X-Auth-Token"] not in text
        assert OWNER_USER[1] not in repr(client) and headers["X-Auth-Token"] not in repr(client._http.auth)


def test_tls_is_verified_and_a_custom_ca_works(tmp_path, monkeypatch):
    authority = trustme.CA()
    certificate = authority.issue_cert("127.0.0.1", "localhost")
    context = __import__("ssl").create_default_context(__import__("ssl").Purpose.CLIENT_AUTH)
    certificate.configure_cert(context)
    bundle = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(bundle))
    with SimulatorServer(StateStore.in_memory(state_from_seed(standard_seed())), tls=context) as sim:
        assert sim.identity_url.startswith("https://")
        monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
        monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
        untrusted = connect(Credentials(*OWNER_USER, identity_url=sim.identity_url), OWNER, retries=0)
        with pytest.raises(CloudTransportError):
            untrusted.list_images("KR1")
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
        trusted = connect(Credentials(*OWNER_USER, identity_url=sim.identity_url), OWNER, retries=0)
        assert {i.name for i in trusted.list_images("KR1", owner=OWNER)} >= {"legacy-base"}


def test_no_code_turns_certificate_checks_off():
    offenders = [
        str(path.relative_to(REPO))
        for path in (REPO / "reconciler").rglob("*.py")
        if "verify=False" in path.read_text() or "CERT_NONE" in path.read_text()
    ]
    assert offenders == []


NHN_ROOT = (
    "version: 1\nset: web\ncloud: {kind: nhn, project: 3f0c9d2e6b7a4f0e9a1b2c3d4e5f6a7b}\ndefaults: {region: KR1}\n"
)
IDENTITY_VARIABLES = ("NHN_CLOUD_IDENTITY_URL", "OS_AUTH_URL", "NHN_CLOUD_USERNAME", "NHN_CLOUD_API_PASSWORD")


@pytest.mark.parametrize(
    ("variable", "url"),
    [
        ("NHN_CLOUD_IDENTITY_URL", "https://[bad/v2.0"),
        ("NHN_CLOUD_IDENTITY_URL", f"https://dev:{PASSWORD}@[bad/v2.0"),
        ("NHN_CLOUD_IDENTITY_URL", "https://identity.example.com:99999/v2.0"),
        ("NHN_CLOUD_IDENTITY_URL", "https://identity.example.com:port/v2.0"),
        ("OS_AUTH_URL", "http://[::1"),
    ],
)
@pytest.mark.parametrize("command", ["validate", "plan"])
def test_a_malformed_identity_url_is_one_error_naming_its_variable(
    tmp_path, capsys, monkeypatch, variable, url, command
):
    """Even offline `validate` reads the identity URL (the target line names its host): a URL Python cannot
    split is the user's error (exit 1, the variable named), never a traceback or an echo of the URL."""
    for name in IDENTITY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(variable, url)
    monkeypatch.setenv("NHN_CLOUD_USERNAME", "dev@example.com")
    monkeypatch.setenv("NHN_CLOUD_API_PASSWORD", PASSWORD)
    (tmp_path / "reconciler.yaml").write_text(NHN_ROOT)
    assert main([command, str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith(f"error: {variable} is not a valid URL"), captured.err
    assert PASSWORD not in captured.out + captured.err and url not in captured.out + captured.err
