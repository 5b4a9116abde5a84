"""The client's session prepares each request as requests does, without requests' per-call merging of an
empty cookie jar and of unset session settings (issue 26: a refresh makes one request per shared image,
and that merging was a sixth of the client's CPU per call)."""

from __future__ import annotations

import pytest
import requests
import requests.sessions

from reconciler.cloud.transport import make_session

URL = "http://127.0.0.1:8777/image/KR1/v2/images/00000000-0000-4000-8000-000000000001/members"


def requests_own(request: requests.Request) -> requests.PreparedRequest:
    """What a plain requests session (not reading the environment, as ours does not) prepares."""
    plain = requests.Session()
    plain.trust_env = False
    return plain.prepare_request(request)


def ours(request: requests.Request) -> requests.PreparedRequest:
    return make_session(0, lambda seconds: None).prepare_request(request)


def test_a_request_without_cookies_is_prepared_without_merging_cookie_jars(monkeypatch):
    def merge_cookies(*args, **kwargs):
        raise AssertionError("an empty cookie jar was merged for this request")

    monkeypatch.setattr(requests.sessions, "merge_cookies", merge_cookies)
    prepared = ours(requests.Request("GET", URL, headers={"X-Auth-Token": "t"}))
    assert prepared.headers["X-Auth-Token"] == "t"
    assert "Cookie" not in prepared.headers


@pytest.mark.parametrize(
    "request_",
    [
        requests.Request("GET", URL, headers={"Accept": "application/json", "X-Auth-Token": "t"}),
        requests.Request("GET", URL, headers={"accept": "application/json", "User-Agent": None}),
        requests.Request("GET", "http://127.0.0.1:8777/v2/images", params={"limit": 1000, "owner": "p q"}),
        requests.Request("PATCH", URL, json=[{"op": "add", "path": "/a", "value": "é"}], headers={"X-A": "1"}),
        requests.Request("PUT", URL, data=iter([b"ab", b"cd"]), headers={"Content-Type": "application/octet-stream"}),
        requests.Request("POST", URL, data={"a": "1"}),
        requests.Request("GET", "http://user:secret@127.0.0.1:8777/v2/images"),
        requests.Request("get", URL),
    ],
    ids=["token", "none-removes-a-header", "params", "json", "stream", "form", "url-credentials", "lower-method"],
)
def test_a_prepared_request_is_the_one_requests_prepares(request_):
    theirs, mine = requests_own(request_), ours(request_)
    assert (mine.method, mine.url, dict(mine.headers)) == (theirs.method, theirs.url, dict(theirs.headers))
    assert list(mine.headers) == list(theirs.headers)  # the order the headers go out in
    if isinstance(theirs.body, bytes | str):
        assert mine.body == theirs.body
    assert mine.hooks == theirs.hooks


def test_a_cookie_the_server_set_is_still_sent():
    session = make_session(0, lambda seconds: None)
    session.cookies.set("lb", "node-2", domain="127.0.0.1", path="/")
    prepared = session.prepare_request(requests.Request("GET", URL, headers={"X-Auth-Token": "t"}))
    assert prepared.headers["Cookie"] == "lb=node-2"
    assert prepared.headers["X-Auth-Token"] == "t"
