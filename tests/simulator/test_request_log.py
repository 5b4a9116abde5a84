"""The request log (`GET /_simulator/requests`, `SimulatorServer.request_log()`, `in_flight_at`): what
a test that interrupts a client at a random moment asks of the simulator afterwards."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
import yaml
from support import DOWNLOADABLE_IMAGE, OWNER, OWNER_USER, Api, standard_seed

from reconciler.simulator import in_flight_at
from reconciler.simulator.request_log import RequestLog

REPO = Path(__file__).resolve().parents[2]
IMAGE = "/image/{region}/v2/images/{image_id}"


def rename(api: Api, name: str) -> requests.Response:
    return api.patch_image(DOWNLOADABLE_IMAGE, [{"op": "replace", "path": "/name", "value": name}])


def entry(route: str, start: float, end: float | None, *, method: str = "GET", stream: bool = False) -> dict:
    return {
        "route": route,
        "method": method,
        "path": "/",
        "start": start,
        "end": end,
        "mutating": method not in ("GET", "HEAD"),
        "stream": stream,
        "status": 200 if end is not None else None,
    }


def settled(read):
    """The log from `read()` once every entry has ended: an entry ends just after its answer left, so a
    client may hold the answer a moment before the simulator notes the end."""
    deadline = time.time() + 5
    log = read()
    while any(e["end"] is None for e in log) and time.time() < deadline:
        time.sleep(0.01)
        log = read()
    return log


# -- the pure helper --------------------------------------------------------------------------------


def test_in_flight_at_counts_changes_and_streams_only():
    """A GET is never a change; a PATCH or a download in flight at the moment is, bounds included."""
    log = [
        entry("GET " + IMAGE, 10.0, 20.0),
        entry("PATCH " + IMAGE, 12.0, 13.0, method="PATCH"),
        entry("GET " + IMAGE + "/file", 14.0, 18.0, stream=True),
        entry("PUT " + IMAGE + "/file", 19.0, None, method="PUT", stream=True),
    ]
    assert in_flight_at(log, 11.0) == []
    assert [e["method"] for e in in_flight_at(log, 12.0)] == ["PATCH"]
    assert [e["method"] for e in in_flight_at(log, 13.0)] == ["PATCH"]
    assert in_flight_at(log, 13.5) == []
    assert [e["stream"] for e in in_flight_at(log, 16.0)] == [True]
    assert [e["method"] for e in in_flight_at(log, 1e12)] == ["PUT"]  # not ended: still in flight
    assert in_flight_at([], 12.0) == []


def test_the_log_is_bounded_to_its_newest_entries():
    log = RequestLog(size=3)
    for n in range(5):
        log.end(log.begin(f"GET /{n}", "GET", f"/{n}", stream=False), 200)
    assert [e["route"] for e in log.entries()] == ["GET /2", "GET /3", "GET /4"]


# -- served in-process ------------------------------------------------------------------------------


def test_each_request_is_logged_with_route_times_kind_and_status(make_sim):
    """One entry per request, oldest first: route template, method, path, real start and end, mutating
    (not GET or HEAD), stream (image data) and status; 404s too."""
    sim = make_sim()
    api = Api(sim, *OWNER_USER, OWNER)
    before = time.time()
    assert api.image("GET", f"/v2/images/{DOWNLOADABLE_IMAGE}").status_code == 200
    assert rename(api, "renamed").status_code == 200
    assert api.image("GET", f"/v2/images/{DOWNLOADABLE_IMAGE}/file").status_code == 200
    assert api.image("GET", "/v2/no-such-thing").status_code == 404
    log = settled(sim.request_log)
    after = time.time()
    assert [(e["route"], e["method"], e["mutating"], e["stream"], e["status"]) for e in log] == [
        ("POST /v2.0/tokens", "POST", True, False, 200),
        ("GET " + IMAGE, "GET", False, False, 200),
        ("PATCH " + IMAGE, "PATCH", True, False, 200),
        ("GET " + IMAGE + "/file", "GET", False, True, 200),
        ("(no route)", "GET", False, False, 404),
    ]
    assert log[1]["path"] == f"/image/KR1/v2/images/{DOWNLOADABLE_IMAGE}"
    assert all(before - 5 <= e["start"] <= e["end"] <= after for e in log)
    assert [e["start"] for e in log] == sorted(e["start"] for e in log)


def test_times_are_real_not_the_simulators_clock(make_sim):
    """Moving the simulator's clock a day ahead does not move the log's times."""
    sim = make_sim()
    sim.advance_clock(86400)
    Api(sim, *OWNER_USER, OWNER)
    (token,) = settled(sim.request_log)
    assert abs(token["start"] - time.time()) < 60


def test_http_endpoint_serves_the_log_with_since_and_delete(make_sim):
    """GET /_simulator/requests is the same list (its own calls are not logged); ?since keeps what was in
    flight at or after that moment; a bad since is 400; DELETE empties the log."""
    sim = make_sim()
    api = Api(sim, *OWNER_USER, OWNER)
    rename(api, "one")
    middle = time.time()
    rename(api, "two")
    url = f"{sim.base_url}/_simulator/requests"
    everything = settled(lambda: requests.get(url, timeout=10).json())
    assert everything == sim.request_log()
    assert [e["route"] for e in everything] == ["POST /v2.0/tokens", "PATCH " + IMAGE, "PATCH " + IMAGE]
    assert requests.get(url, params={"since": middle}, timeout=10).json() == everything[2:]
    assert sim.request_log(since=middle) == everything[2:]
    assert requests.get(url, params={"since": "soon"}, timeout=10).status_code == 400
    assert requests.delete(url, timeout=10).status_code == 204
    assert sim.request_log() == []


def test_a_request_in_flight_shows_without_end_or_status(make_sim):
    """While a slow PATCH is being served its entry has no end yet, and in_flight_at(now) names it; once
    answered, the moment before it started has nothing in flight."""
    sim = make_sim(latency_ms=400)
    api = Api(sim, *OWNER_USER, OWNER)
    time.sleep(0.05)  # the token's entry ends just after its answer left, maybe after the client read it
    before = time.time()
    worker = threading.Thread(target=rename, args=(api, "slow"))
    worker.start()
    deadline = time.time() + 5
    while not any(e["method"] == "PATCH" for e in sim.request_log()) and time.time() < deadline:
        time.sleep(0.01)
    moment = time.time()
    (patch,) = [e for e in sim.request_log() if e["method"] == "PATCH"]
    assert (patch["end"], patch["status"]) == (None, None)
    assert in_flight_at(sim.request_log(), moment) == [patch]
    worker.join(10)
    (patch,) = [e for e in settled(sim.request_log) if e["method"] == "PATCH"]
    assert patch["status"] == 200 and patch["end"] >= moment
    assert in_flight_at(sim.request_log(), moment) == [patch]
    assert in_flight_at(sim.request_log(), before) == []


def test_a_dropped_connection_is_logged_without_status(make_sim):
    """A call whose connection the simulator closed unanswered (a drop fault) ends with status null."""
    sim = make_sim(faults=[{"route": "PATCH " + IMAGE, "on_call": 1, "drop": True}])
    api = Api(sim, *OWNER_USER, OWNER)
    with pytest.raises(requests.ConnectionError):
        rename(api, "dropped")
    patch = settled(sim.request_log)[-1]
    assert patch["route"] == "PATCH " + IMAGE
    assert patch["status"] is None and patch["end"] is not None


def test_an_upload_cut_short_by_its_client_shows_how_much_arrived(make_sim):
    """A client that dies mid-upload (its socket closed after part of the body): the PUT's entry ends with
    `received` short of the Content-Length and no success (the simulator's 400 for a body that ended early
    finds no one to read it), and the image is queued again, without data."""
    sim = make_sim()
    api = Api(sim, *OWNER_USER, OWNER)
    created = api.image(
        "POST", "/v2/images", json={"name": "cut", "disk_format": "raw", "container_format": "bare", "os_type": "linux"}
    )
    image_id = created.json()["id"]
    url = urlsplit(api.endpoint("image") + f"/v2/images/{image_id}/file")
    sent, declared = 96 * 1024, 1024 * 1024
    with socket.create_connection((url.hostname, url.port)) as raw:
        head = (
            f"PUT {url.path} HTTP/1.1\r\nHost: {url.netloc}\r\nX-Auth-Token: {api.http.headers['X-Auth-Token']}\r\n"
            f"Content-Type: application/octet-stream\r\nContent-Length: {declared}\r\n\r\n"
        )
        raw.sendall(head.encode() + b"x" * sent)
        time.sleep(0.2)  # the handler reads what came before the socket closes
    put = [e for e in settled(sim.request_log) if e["method"] == "PUT"][-1]
    assert put["status"] in (None, 400) and put["end"] is not None
    assert 0 < put["received"] <= sent < declared
    image = api.image("GET", f"/v2/images/{image_id}").json()
    assert image["status"] == "queued" and image["size"] is None


# -- `reconciler simulator serve` in a subprocess ---------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_served_process_answers_what_was_in_flight(tmp_path):
    """`reconciler simulator serve --state FILE --port N --latency-ms 100`: a test that noted the time
    while an upload was on its way finds it in flight in the served log, and nothing before it."""
    seed, state = tmp_path / "seed.yaml", tmp_path / "state.json"
    seed.write_text(yaml.safe_dump(standard_seed()))
    subprocess.run(
        [sys.executable, "-m", "reconciler", "simulator", "init", str(state), "--seed", str(seed)],
        check=True,
        cwd=REPO,
        capture_output=True,
    )
    port = free_port()
    command = ["simulator", "serve", "--state", str(state), "--port", str(port), "--latency-ms", "100"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "reconciler", *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        identity_url = proc.stdout.readline().strip()
        assert identity_url == f"http://127.0.0.1:{port}/v2.0", proc.stderr.read()
        base = identity_url.removesuffix("/v2.0")
        api = Api(type("Sim", (), {"identity_url": identity_url})(), *OWNER_USER, OWNER)
        created = api.image(
            "POST",
            "/v2/images",
            json={"name": "up", "disk_format": "raw", "container_format": "bare", "os_type": "linux"},
        )
        assert created.status_code == 201, created.text
        image_id = created.json()["id"]
        time.sleep(0.05)  # an entry ends just after its answer left: maybe after the client read it
        quiet = time.time()  # nothing mutating in flight now
        time.sleep(0.05)

        def slow_body():
            yield b"x" * 1024
            time.sleep(0.3)
            yield b"y" * 1024

        headers = {"Content-Type": "application/octet-stream"}
        upload = threading.Thread(
            target=api.image,
            args=("PUT", f"/v2/images/{image_id}/file"),
            kwargs={"data": slow_body(), "headers": headers},
        )
        upload.start()
        time.sleep(0.25)  # past the 100 ms latency, inside the upload's pause
        moment = time.time()
        upload.join(10)
        log = settled(lambda: requests.get(f"{base}/_simulator/requests", timeout=10).json())
        (busy,) = in_flight_at(log, moment)
        assert (busy["route"], busy["stream"], busy["mutating"], busy["status"]) == (
            "PUT " + IMAGE + "/file",
            True,
            True,
            204,
        )
        assert in_flight_at(log, quiet) == []
        assert requests.get(f"{base}/_simulator/requests", params={"since": moment}, timeout=10).json() == [busy]
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
