"""The simulator's own machinery over real HTTP: request stats, fault injection, latency with concurrent
requests, persistence to a state file shared between processes, and deterministic ids."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import pytest
import requests
from support import (
    DOWNLOADABLE_IMAGE,
    LOCAL_STOPPED_SERVER,
    OWNER,
    OWNER_USER,
    Api,
    standard_seed,
)

from reconciler.simulator.seed import state_from_seed
from reconciler.simulator.state import write_state_file

IMAGES_ROUTE = "GET /image/{region}/v2/images"
SERVERS_ROUTE = "GET /compute/{region}/v2/{tenant_id}/servers"
REPO = Path(__file__).resolve().parents[2]


def stats(sim) -> dict:
    answer = requests.get(f"{sim.base_url}/_simulator/stats", timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def owner_api(sim) -> Api:
    return Api(sim, *OWNER_USER, OWNER)


def rename(api: Api, image_id: str, name: str) -> requests.Response:
    return api.patch_image(image_id, [{"op": "replace", "path": "/name", "value": name}])


# -- stats ----------------------------------------------------------------------------------------


def test_stats_count_requests_per_route_template(owner, sim):
    """GET /_simulator/stats counts requests per route template name, with a total."""
    assert requests.delete(f"{sim.base_url}/_simulator/stats", timeout=10).status_code == 204
    for _ in range(2):
        assert owner.image("GET", "/v2/images").status_code == 200
    owner.image("GET", "/v2/images", region="KR2")
    owner.compute("GET", "/servers")
    body = stats(sim)
    routes = body["routes"]
    assert routes[IMAGES_ROUTE] == 3  # one template for every region
    assert routes[SERVERS_ROUTE] == 1
    assert body["total"] == sum(routes.values())
    assert body["total"] >= 4


def test_stats_delete_resets(owner, sim):
    """DELETE /_simulator/stats resets every count."""
    owner.image("GET", "/v2/images")
    assert stats(sim)["routes"].get("POST /v2.0/tokens", 0) >= 1
    answer = requests.delete(f"{sim.base_url}/_simulator/stats", timeout=10)
    assert answer.status_code == 204
    routes = stats(sim)["routes"]
    assert IMAGES_ROUTE not in routes
    assert "POST /v2.0/tokens" not in routes


# -- faults ---------------------------------------------------------------------------------------


def test_fault_503_with_retry_after_on_first_call(make_sim):
    """A status fault on_call 1 answers the first call with 503 and Retry-After; the second call is 200."""
    sim = make_sim(faults=[{"route": IMAGES_ROUTE, "on_call": 1, "status": 503, "retry_after": 2}])
    api = owner_api(sim)
    first = api.image("GET", "/v2/images")
    assert first.status_code == 503, first.text
    assert first.headers["Retry-After"] == "2"
    second = api.image("GET", "/v2/images")
    assert second.status_code == 200, second.text
    assert "Retry-After" not in second.headers


def test_fault_on_call_list_affects_only_listed_calls(make_sim):
    """`on_call: [2]` affects only the second call of the route."""
    sim = make_sim(faults=[{"route": IMAGES_ROUTE, "on_call": [2], "status": 503}])
    api = owner_api(sim)
    assert [api.image("GET", "/v2/images").status_code for _ in range(3)] == [200, 503, 200]


def test_fault_only_on_its_route(make_sim):
    """A fault keyed to one route leaves other routes alone."""
    sim = make_sim(faults=[{"route": IMAGES_ROUTE, "on_call": [1, 2, 3], "status": 503}])
    api = owner_api(sim)
    assert api.compute("GET", "/servers").status_code == 200
    assert api.image("GET", f"/v2/images/{DOWNLOADABLE_IMAGE}").status_code == 200


def test_fault_drop_closes_connection(make_sim):
    """A `drop` fault closes the connection without an answer: the client raises ConnectionError."""
    sim = make_sim(faults=[{"route": IMAGES_ROUTE, "on_call": 1, "drop": True}])
    api = owner_api(sim)
    with pytest.raises(requests.ConnectionError):
        api.image("GET", "/v2/images")
    assert api.image("GET", "/v2/images").status_code == 200


def test_fault_stall_times_out_impatient_client(make_sim):
    """A `stall_s` fault makes a client with a shorter timeout raise Timeout; a patient one succeeds."""
    sim = make_sim(faults=[{"route": IMAGES_ROUTE, "on_call": [1, 2], "stall_s": 0.5}])
    api = owner_api(sim)
    url = api.endpoint("image") + "/v2/images"
    headers = {"X-Auth-Token": api.access["token"]["id"], "Accept": "application/json"}
    with pytest.raises(requests.Timeout):
        requests.get(url, headers=headers, timeout=0.1)
    started = time.monotonic()
    answer = requests.get(url, headers=headers, timeout=5)
    elapsed = time.monotonic() - started
    assert answer.status_code == 200, answer.text
    assert elapsed >= 0.45


def test_fault_429_with_retry_after(make_sim):
    """A 429 fault answers with Retry-After and the service's fault body (Nova: overLimit)."""
    sim = make_sim(faults=[{"route": SERVERS_ROUTE, "on_call": 1, "status": 429, "retry_after": 3}])
    api = owner_api(sim)
    first = api.compute("GET", "/servers")
    assert first.status_code == 429, first.text
    assert first.headers["Retry-After"] == "3"
    assert first.json()["overLimit"]["code"] == 429
    assert api.compute("GET", "/servers").status_code == 200


# -- latency and concurrency ----------------------------------------------------------------------


def test_latency_is_applied_concurrently(make_sim):
    """With latency_ms=400, four concurrent requests finish in well under the serial 4 x 400 ms.

    Bounds are loose on purpose (shared, noisy machines): this checks concurrency, not speed."""
    sim = make_sim(latency_ms=400)
    api = owner_api(sim)
    url = api.endpoint("image") + "/v2/images"
    headers = {"X-Auth-Token": api.access["token"]["id"], "Accept": "application/json"}
    single_started = time.monotonic()
    assert requests.get(url, headers=headers, timeout=10).status_code == 200
    single = time.monotonic() - single_started
    assert single >= 0.39  # the latency is applied

    statuses: list[int] = []
    barrier = threading.Barrier(4)

    def call() -> None:
        barrier.wait()
        statuses.append(requests.get(url, headers=headers, timeout=10).status_code)

    threads = [threading.Thread(target=call) for _ in range(4)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    assert statuses == [200] * 4
    assert 0.39 <= elapsed < 1.2, elapsed  # serial would be >= 1.6 s


# -- persistence ----------------------------------------------------------------------------------


def read_state(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


class Serve:
    """`python -m reconciler simulator serve` in a subprocess; its identity URL is stdout's first line."""

    def __init__(self, state: Path, *extra: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "reconciler", "simulator", "serve", "--state", str(state), *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        line = self.proc.stdout.readline().strip()
        if not line:
            self.stop()
            raise AssertionError(f"serve printed no URL: {self.proc.stderr.read()}")
        assert line.startswith("http://127.0.0.1:") and line.endswith("/v2.0"), line
        self.identity_url = line

    def api(self) -> Api:
        return Api(types.SimpleNamespace(identity_url=self.identity_url), *OWNER_USER, OWNER)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate(timeout=10)


def test_change_is_in_state_file_right_after_request(make_sim, tmp_path):
    """A change (PATCH name) is in the JSON state file as soon as the request has been answered."""
    path = tmp_path / "state.json"
    api = owner_api(make_sim(state_file=path))
    assert rename(api, DOWNLOADABLE_IMAGE, "renamed-1").status_code == 200
    assert read_state(path)["images"][DOWNLOADABLE_IMAGE]["fields"]["name"] == "renamed-1"


def test_two_processes_share_one_state_file(make_sim, tmp_path):
    """A second `serve` on the same file sees the first's change, and the first sees the second's."""
    path = tmp_path / "state.json"
    first = owner_api(make_sim(state_file=path))
    assert rename(first, DOWNLOADABLE_IMAGE, "from-first").status_code == 200
    serve = Serve(path)
    try:
        second = serve.api()
        image = second.image("GET", f"/v2/images/{DOWNLOADABLE_IMAGE}")
        assert image.status_code == 200, image.text
        assert image.json()["name"] == "from-first"
        assert rename(second, DOWNLOADABLE_IMAGE, "from-second").status_code == 200
        assert first.image("GET", f"/v2/images/{DOWNLOADABLE_IMAGE}").json()["name"] == "from-second"
        assert read_state(path)["images"][DOWNLOADABLE_IMAGE]["fields"]["name"] == "from-second"
    finally:
        serve.stop()


def test_in_memory_serve_leaves_state_file_unchanged(tmp_path):
    """`serve --in-memory` applies changes in memory but never writes the state file."""
    path = tmp_path / "state.json"
    write_state_file(path, state_from_seed(standard_seed()))
    before = path.read_bytes()
    serve = Serve(path, "--in-memory")
    try:
        api = serve.api()
        assert rename(api, DOWNLOADABLE_IMAGE, "in-memory-only").status_code == 200
        assert api.image("GET", f"/v2/images/{DOWNLOADABLE_IMAGE}").json()["name"] == "in-memory-only"
        assert path.read_bytes() == before
    finally:
        serve.stop()
    assert path.read_bytes() == before


def test_state_file_is_always_valid_json(make_sim, tmp_path):
    """The state file is replaced atomically: always valid JSON, and no temporary files left behind."""
    path = tmp_path / "state.json"
    api = owner_api(make_sim(state_file=path))
    done = threading.Event()
    problems: list[str] = []
    reads = 0

    def reader() -> None:
        nonlocal reads
        while not done.is_set():
            try:
                doc = read_state(path)
                assert "images" in doc
                reads += 1
            except Exception as err:  # noqa: BLE001 - any failure to parse is the finding
                problems.append(repr(err))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(10):
            assert rename(api, DOWNLOADABLE_IMAGE, f"name-{i}").status_code == 200
    finally:
        done.set()
        thread.join()
    assert problems == []
    assert reads > 0
    assert read_state(path)["images"][DOWNLOADABLE_IMAGE]["fields"]["name"] == "name-9"
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


# -- deterministic ids ----------------------------------------------------------------------------


def test_create_image_ids_are_deterministic(make_sim):
    """Two fresh simulators from the same seed, given the same calls, give createImage the same image id."""
    ids = []
    for _ in range(2):
        api = owner_api(make_sim())
        answer = api.compute("POST", f"/servers/{LOCAL_STOPPED_SERVER}/action", json={"createImage": {"name": "snap"}})
        assert answer.status_code == 202, answer.text
        ids.append(answer.headers["Location"].rstrip("/").rsplit("/", 1)[-1])
    assert ids[0] == ids[1]


def test_image_task_polls_knob_is_validated():
    """image_task_polls is a seed knob: default 2, a non-negative integer."""
    from reconciler.simulator.behaviour import Behaviour

    assert Behaviour().image_task_polls == 2
    assert Behaviour.from_dict({"image_task_polls": 0}).image_task_polls == 0
    with pytest.raises(ValueError, match="image_task_polls"):
        Behaviour.from_dict({"image_task_polls": -1})
