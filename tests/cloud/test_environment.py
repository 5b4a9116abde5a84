"""The client's session reads the environment once per origin (requests re-reads it on every request):
proxies and no_proxy, and the CA bundle, keep requests' meaning; ~/.netrc is never used."""

from __future__ import annotations

import requests

from reconciler.cloud.transport import make_session


def settings(url: str) -> dict:
    session = make_session(0, lambda seconds: None)
    return session.merge_environment_settings(url, {}, None, None, None)


def test_proxies_and_no_proxy_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,.internal.example")
    assert settings("https://api.example.com/v2/images")["proxies"]["https"] == "http://proxy.example:3128"
    assert "https" not in settings("https://glance.internal.example/v2/images")["proxies"]
    assert "https" not in settings("https://127.0.0.1:8443/v2/images")["proxies"]


def test_the_ca_bundle_comes_from_the_environment_unless_verify_is_given(monkeypatch, tmp_path):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "ca.pem"))
    assert settings("https://api.example.com/")["verify"] == str(tmp_path / "ca.pem")
    session = make_session(0, lambda seconds: None)
    assert session.merge_environment_settings("https://api.example.com/", {}, None, False, None)["verify"] is False


def test_the_environment_is_read_once_per_origin(monkeypatch):
    session = make_session(0, lambda seconds: None)
    monkeypatch.setenv("HTTPS_PROXY", "http://first.example:3128")
    session.merge_environment_settings("https://api.example.com/a", {}, None, None, None)
    monkeypatch.setenv("HTTPS_PROXY", "http://second.example:3128")
    again = session.merge_environment_settings("https://api.example.com/b", {}, None, None, None)
    other = session.merge_environment_settings("https://other.example.com/", {}, None, None, None)
    assert again["proxies"]["https"] == "http://first.example:3128"
    assert other["proxies"]["https"] == "http://second.example:3128"


def test_netrc_credentials_are_never_sent(monkeypatch, tmp_path):
    (tmp_path / ".netrc").write_text("machine api.example.com login someone password not-for-the-api\n")
    (tmp_path / ".netrc").chmod(0o600)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("NETRC", raising=False)
    plain = requests.Session().prepare_request(requests.Request("GET", "https://api.example.com/v2/images"))
    assert "Authorization" in plain.headers  # what requests alone would do
    ours = make_session(0, lambda seconds: None).prepare_request(
        requests.Request("GET", "https://api.example.com/v2/images")
    )
    assert "Authorization" not in ours.headers
