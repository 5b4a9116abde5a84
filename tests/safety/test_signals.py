"""Signals: the real CLI, as a subprocess, applies a realistic root
(tests/safety/signal_root/: a running local-disk instance with `running: stop`, a running volume-rooted
one, copies to two regions, shares, two strict protect brackets) against a served simulator with 100 ms
latency, reached as NHN Cloud is (NHN_CLOUD_IDENTITY_URL and the seeded owner's credentials), and is
interrupted at random points: SIGINT, SIGTERM, and SIGINT twice.

A random point is the moment the apply's n-th change or transfer (n seeded, uniform over the apply) is
under way, as the simulator's request log shows it while the apply runs: most of an apply is spent
waiting between polls, and a signal there would test little. Each run then records, from the request
log, whether the signal came with a mutating call or a stream in flight (at least 80% of the runs must
have), and asserts that: the exit is 130 / 143 within 7.0 s of the first signal; every instance is ACTIVE
once its task state is null, or SHUTOFF with `reconciler_stopped_by` and listed as left for the next run;
no download flag is left on; no strict bracket is left open; the lock claim is gone and the next apply
takes the lock at once; and the next plan-apply-plan converges with no duplicate and no leftover. The aftermath runs through the CLI's
`--sim-state` on the same state file (the embedded simulator polls briskly), to keep the suite short.

Then SIGKILL at three named points (inside a strict bracket, between a create and its copies, mid-copy)
of `apply --plan FILE`, each followed by `apply --plan FILE --resume`, which must wait for the killed
run's claim (lease 30 s, so about 35 s), exit 0 and converge.

The seed is RECONCILER_FAULT_SEED (default 4711); the figures line at the end of the run names it:
`signal runs: N, in flight: M (P%), exit after first signal: median X s, max Y s, seed: S`.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import requests
from support import FAULT_FIGURES, OWNER, OWNER_USER, Api, cli, quiet_env

from reconciler.simulator import in_flight_at

HERE = Path(__file__).resolve().parent / "signal_root"
SEED = int(os.environ.get("RECONCILER_FAULT_SEED", "4711"))
SET = "platform"
LATENCY_MS = 100
EXIT_LIMIT_S = 7.0
IN_FLIGHT_SHARE = 0.8
TOKENS = "POST /v2.0/tokens"

SERVERS = {
    "10000000-0000-4000-8000-000000000001": "web-golden-01",  # volume root, imaged live
    "10000000-0000-4000-8000-000000000002": "batch-golden-01",  # local disk, running: stop
}
BRACKETED = {"00000000-0000-4000-8000-000000000012": "legacy-gold", "00000000-0000-4000-8000-000000000014": "db-base"}
DECLARED = {"web-base", "batch-base", "api-base", "legacy-gold", "db-base"}
COPIES = {("web-base", "KR2"), ("web-base", "JP1"), ("api-base", "JP1")}
STOPPED_BY = "reconciler_stopped_by"
DOWNLOAD_FLAG = "nhncloud_allow_download"

# (signal, how many) per kind of run; each run has a fresh state.
RUNS = {"sigint": 4, "sigterm": 4, "double-sigint": 3}
# A random point: while the n-th change or transfer of the apply is under way, n uniform in this range
# (the whole apply makes about 43: 1-2 take the lock, 42-43 clear the restarted instance's mark and
# release the lock), this long after it started (uniform, s; each call is in flight 100 ms or more).
NTH_CHANGE = (3, 40)
OFFSET_S = (0.01, 0.07)


@dataclass
class Figures:
    runs: int = 0
    in_flight: int = 0
    exit_s: list[float] = field(default_factory=list)
    expected: int = sum(RUNS.values())


FIGURES = Figures()


class _FiguresLine:
    """Prints the figures line in the terminal summary, beside conftest.py's fault figures."""

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if FIGURES.runs:
            terminalreporter.write_line(figures_line())


def figures_line() -> str:
    share = FIGURES.in_flight / FIGURES.runs if FIGURES.runs else 0.0
    times = FIGURES.exit_s or [0.0]
    return (
        f"signal runs: {FIGURES.runs}, in flight: {FIGURES.in_flight} ({share:.0%}), exit after first signal: "
        f"median {statistics.median(times):.2f} s, max {max(times):.2f} s, seed: {SEED}"
    )


@pytest.fixture(scope="module", autouse=True)
def figures_in_the_summary(request):
    plugin = _FiguresLine()
    if request.config.pluginmanager.get_plugin("signal-figures") is None:
        request.config.pluginmanager.register(plugin, "signal-figures")
    yield


# -- a served simulator, and the CLI pointed at it ---------------------------------------------------


@dataclass
class Served:
    """`reconciler simulator serve --latency-ms 100` on a state made from the seed, as a subprocess."""

    folder: Path
    process: subprocess.Popen[str]
    identity: str

    @property
    def state_path(self) -> Path:
        return self.folder / "state.json"

    @property
    def base(self) -> str:
        return self.identity.removesuffix("/v2.0")

    @property
    def env(self) -> dict[str, str]:
        return {
            **quiet_env(),
            "NHN_CLOUD_IDENTITY_URL": self.identity,
            "NHN_CLOUD_USERNAME": OWNER_USER[0],
            "NHN_CLOUD_API_PASSWORD": OWNER_USER[1],
            "NHN_CLOUD_TENANT_ID": OWNER,
        }

    def request_log(self, since: float | None = None) -> list[dict[str, Any]]:
        params = {"since": since} if since is not None else None
        return requests.get(f"{self.base}/_simulator/requests", params=params, timeout=10).json()

    def api(self) -> Api:
        return Api(SimpleNamespace(identity_url=self.identity), *OWNER_USER, OWNER)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def fresh_root(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    root = folder / "root"
    shutil.copytree(HERE / "root", root)
    subprocess.run(
        cli("simulator", "init", folder / "state.json", "--seed", HERE / "seed.yaml"),
        check=True, capture_output=True, env=quiet_env(),
    )  # fmt: skip
    return root


@contextlib.contextmanager
def served(folder: Path) -> Iterator[Served]:
    process = subprocess.Popen(
        cli("simulator", "serve", "--state", folder / "state.json", "--latency-ms", LATENCY_MS),
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=quiet_env(),
    )  # fmt: skip
    sim = Served(folder, process, process.stdout.readline().strip())
    try:
        assert sim.identity.startswith("http://127.0.0.1:"), sim.identity
        yield sim
    finally:
        sim.stop()


# -- the cloud as it is: the state file (ground truth) and, for servers, polls ------------------------


def state(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def images(path: Path) -> dict[str, dict[str, Any]]:
    """Image id -> {"region", "fields"}: every image still there (deleted ones are tombstones)."""
    return state(path)["images"]


def settle_servers(sim: Served) -> dict[str, dict[str, Any]]:
    """Poll each server until its task state is null (the simulator advances tasks on polls)."""
    api = sim.api()
    settled = {}
    for server_id, name in SERVERS.items():
        for _ in range(60):
            server = api.compute("GET", f"/servers/{server_id}").json()["server"]
            if server["OS-EXT-STS:task_state"] is None:
                break
        else:
            pytest.fail(f"{name} is still in task {server['OS-EXT-STS:task_state']} after 60 polls")
        settled[server_id] = server
    return settled


def interrupted_run_problems(
    path: Path, servers: dict[str, dict[str, Any]], report: dict[str, Any] | None
) -> list[str]:
    """What an interrupted run may not leave behind (the cloud's state once servers settled)."""
    found = []
    left = {r["id"] for r in (report or {}).get("results", []) if r["status"] == "left"}
    for server in servers.values():
        name, mark = server["name"], server["metadata"].get(STOPPED_BY)
        if server["status"] == "ACTIVE":
            continue
        if server["status"] == "SHUTOFF" and mark and "start_instance:batch-base:KR1" in left:
            continue
        found.append(
            f"instance {name} is {server['status']} (mark {mark!r}) and not listed as left for the next run "
            f"(left: {sorted(left)})"
        )
    for image_id, record in images(path).items():
        fields = record["fields"]
        if fields.get(DOWNLOAD_FLAG) == "true":
            found.append(f"download flag left on: {fields['name']} ({image_id}) in {record['region']}")
        if fields.get("name", "").startswith("reconciler-lock-"):
            found.append(f"lock claim left: {image_id} ({fields.get('reconciler_lock_holder')})")
    for image_id, key in BRACKETED.items():
        if not images(path)[image_id]["fields"]["protected"]:
            found.append(f"strict bracket left open: {key} ({image_id}) is unprotected")
    return found


def converged_problems(path: Path) -> list[str]:
    """After convergence: one image per identity, nothing declared missing, no temporary-name image, no
    lock claim, every image of the set active, every instance ACTIVE and unmarked."""
    doc = state(path)
    found = []
    identities: Counter[tuple[str, str]] = Counter()
    for image_id, record in doc["images"].items():
        fields = record["fields"]
        name = fields.get("name") or ""
        if "~rc-" in name:
            found.append(f"leftover temporary image {name} ({image_id}) in {record['region']}")
        if name.startswith("reconciler-lock-") or "reconciler_lock_claim" in fields:
            found.append(f"lock claim left: {image_id}")
        if fields.get("reconciler_set") != SET:
            continue
        identities[(fields.get("reconciler_key"), record["region"])] += 1
        if fields["status"] != "active":
            found.append(f"{fields.get('reconciler_key')} in {record['region']} ({image_id}) is {fields['status']}")
        if fields.get(DOWNLOAD_FLAG) == "true":
            found.append(f"download flag left on: {name} ({image_id})")
    found += [f"{identity} is held by {n} images" for identity, n in identities.items() if n > 1]
    found += [f"declared image {key} is missing" for key in DECLARED if (key, "KR1") not in identities]
    found += [f"the copy of {key} in {region} is missing" for key, region in COPIES if (key, region) not in identities]
    for server_id, name in SERVERS.items():
        server = doc["servers"][server_id]
        if server["status"] != "ACTIVE" or server.get("task"):
            found.append(f"instance {name} is {server['status']} (task {server.get('task')})")
        if STOPPED_BY in server["metadata"]:
            found.append(f"instance {name} still carries {STOPPED_BY}")
    for image_id, key in BRACKETED.items():
        if not doc["images"][image_id]["fields"]["protected"]:
            found.append(f"{key} is unprotected")
    return found


def run_cli(*args: Any, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cli(*args), env=env, capture_output=True, text=True, timeout=timeout, check=False)


def aftermath(root: Path, state_path: Path) -> None:
    """The next plan-apply-plan (through --sim-state on the same state file): the apply takes the lock at
    once (no wait is allowed: --lock-timeout 0), exits 0, and the plan after it is empty."""
    env = quiet_env()
    first = run_cli("plan", root, "--sim-state", state_path, "--format", "json", env=env)
    assert first.returncode == 0, first.stderr
    applied = run_cli("apply", root, "--sim-state", state_path, "--auto-approve", "--format", "json", env=env)
    assert "has the lock" not in applied.stderr and "kept trying" not in applied.stderr, applied.stderr
    assert applied.returncode == 0, f"the next apply failed:\n{applied.stdout}\n{applied.stderr}"
    final = run_cli("plan", root, "--sim-state", state_path, "--format", "json", env=env)
    plan = json.loads(final.stdout)
    assert plan["actions"] == [] and plan["refusals"] == [], f"not converged: {[a['id'] for a in plan['actions']]}"
    assert converged_problems(state_path) == []


# -- SIGINT, SIGTERM, SIGINT twice at random points --------------------------------------------------


def busy(entries: list[dict[str, Any]], at: float) -> list[dict[str, Any]]:
    """Changes and transfers in flight at `at` (token requests are not the apply's changes)."""
    return [e for e in in_flight_at(entries, at) if e["route"] != TOKENS]


def changes(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The apply's mutating calls and streams (token requests left out), in the order they started."""
    return sorted(
        (e for e in entries if (e["mutating"] or e["stream"]) and e["route"] != TOKENS), key=lambda e: e["start"]
    )


def signal_moment(sim: Served, process: subprocess.Popen[str], n: int, offset: float) -> float | None:
    """Wait until the apply's n-th change or transfer is under way (or, if it ended between two reads of
    the log, the next one), then until `offset` s after it started (each call is in flight for the 100 ms
    latency at least); returns that moment (real time), or None if the apply ended first."""
    deadline = time.monotonic() + 60
    while process.poll() is None and time.monotonic() < deadline:
        seen = changes(sim.request_log())
        under_way = [e for e in seen[n - 1 :] if e["end"] is None]
        if under_way:
            time.sleep(max(0.0, under_way[0]["start"] + offset - time.time()))
            return time.time()
        if len(seen) >= n:
            n = len(seen) + 1
        time.sleep(0.004)
    return None


@dataclass
class SignalRun:
    name: str
    nth: int  # the change or transfer the signal was aimed at
    signals: list[signal.Signals]
    code: int
    exit_s: float  # from the first signal to the exit
    in_flight: list[dict[str, Any]]  # changes and transfers under way when the first signal came
    report: dict[str, Any] | None
    stderr: str
    servers: dict[str, dict[str, Any]]  # once their task states are null

    def describe(self) -> str:
        results = (self.report or {}).get("results", [])
        return (
            f"{self.name} (seed {SEED}): {'+'.join(s.name for s in self.signals)} at change {self.nth}, exit "
            f"{self.code} after {self.exit_s:.2f} s; in flight: {[e['route'] for e in self.in_flight]}; "
            f"not done: {[(r['id'], r['status']) for r in results if r['status'] != 'done']}"
        )


def signal_run(folder: Path, kind: str, index: int) -> tuple[SignalRun, Path, Path]:
    """One apply of a fresh copy of the root, signalled at a random point; returns the run, the root and
    the state file (its simulator stopped)."""
    rng = random.Random(f"{SEED}:{kind}:{index}")
    first = signal.SIGTERM if kind == "sigterm" else signal.SIGINT
    nth, offset = rng.randint(*NTH_CHANGE), rng.uniform(*OFFSET_S)
    root = fresh_root(folder)
    out, err = folder / "apply.out", folder / "apply.err"
    with served(folder) as sim, out.open("w") as stdout, err.open("w") as stderr:
        process = subprocess.Popen(
            cli("apply", root, "--auto-approve", "--format", "json"), env=sim.env, stdout=stdout, stderr=stderr
        )
        try:
            at = signal_moment(sim, process, nth, offset)
            assert at is not None, f"the apply ended (exit {process.poll()}) before it could be signalled"
            sent = time.monotonic()
            process.send_signal(first)
            signals = [first]
            if kind == "double-sigint":
                time.sleep(rng.uniform(0.05, 1.0))
                if process.poll() is None:
                    process.send_signal(signal.SIGINT)
                    signals.append(signal.SIGINT)
            code = process.wait(timeout=60)
            exit_s = time.monotonic() - sent
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        in_flight = busy(sim.request_log(), at)
        servers = settle_servers(sim)
    text = out.read_text()
    report = json.loads(text) if text.strip() else None
    run = SignalRun(f"{kind}-{index}", nth, signals, code, exit_s, in_flight, report, err.read_text(), servers)
    return run, root, folder / "state.json"


def signal_cases() -> list[tuple[str, int]]:
    return [(kind, i) for kind, n in RUNS.items() for i in range(n)]


@pytest.mark.parametrize(("kind", "index"), signal_cases(), ids=[f"{k}-{i}" for k, i in signal_cases()])
def test_a_signal_at_a_random_point_of_a_realistic_apply(tmp_path, kind, index):
    run, root, state_path = signal_run(tmp_path, kind, index)
    FIGURES.runs += 1
    FIGURES.in_flight += bool(run.in_flight)
    FIGURES.exit_s.append(run.exit_s)
    FAULT_FIGURES["runs"] += 1
    FAULT_FIGURES["hits"] += len(run.signals)
    FAULT_FIGURES["seed"] = SEED
    print(run.describe())
    where = f"{run.describe()}\nstderr:\n{run.stderr[-3000:]}"
    assert run.code == (143 if run.signals[0] == signal.SIGTERM else 130), where
    assert run.exit_s <= EXIT_LIMIT_S, where
    assert run.report is not None and run.report["outcome"] == "interrupted", where
    assert interrupted_run_problems(state_path, run.servers, run.report) == [], where
    aftermath(root, state_path)


def test_most_signals_came_with_a_change_or_a_transfer_in_flight():
    """Otherwise the runs above tested little: at least 80% of them must have interrupted a mutating call
    or a stream (from the simulator's request log)."""
    if FIGURES.runs < FIGURES.expected:
        pytest.skip(f"only {FIGURES.runs} of {FIGURES.expected} signal runs ran (run the whole module)")
    share = FIGURES.in_flight / FIGURES.runs
    print(f"signal runs: {FIGURES.runs}, in flight: {FIGURES.in_flight} ({share:.0%})")
    assert share >= IN_FLIGHT_SHARE, f"only {FIGURES.in_flight} of {FIGURES.runs} signals came with a call in flight"


# -- SIGKILL at named points, then apply --plan FILE --resume ----------------------------------------


class Progress:
    """The lines a running apply prints (its stderr with --format json), read as they come."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self._thread.start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stderr is not None
        for line in process.stderr:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self.lines.append("")  # the end
            self._changed.notify_all()

    def wait_for(self, pattern: str, timeout: float = 60) -> bool:
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._changed:
            while not any(regex.search(line) for line in self.lines):
                if (self.lines and self.lines[-1] == "" and not self._thread.is_alive()) or time.monotonic() > deadline:
                    return False
                self._changed.wait(0.05)
        return True


def bracket_open(path: Path) -> str | None:
    """Inside a strict bracket: a protected image of the set, unprotected by the run, not protected yet."""
    opened = [key for image_id, key in BRACKETED.items() if not images(path)[image_id]["fields"]["protected"]]
    return f"unprotected: {opened}" if opened else None


def created_without_copies(path: Path) -> str | None:
    """Between a create and its copies: web-base made in KR1, no copy of it begun anywhere."""
    of_key = [r for r in images(path).values() if r["fields"].get("reconciler_key") == "web-base"]
    of_key = [r for r in of_key if r["fields"].get("reconciler_set") == SET]
    homes = [r for r in of_key if r["region"] == "KR1" and r["fields"]["status"] == "active"]
    copies = [r for r in of_key if r["region"] != "KR1"]
    return f"home {homes[0]['fields']['id']}, no copy" if len(homes) == 1 and not copies else None


def copy_unfinished(path: Path) -> str | None:
    """Mid-copy: a copy target of web-base exists and is not active yet."""
    targets = [
        r for r in images(path).values()
        if r["fields"].get("reconciler_copy_of") and r["fields"].get("reconciler_key") == "web-base"
        and r["fields"]["status"] != "active"
    ]  # fmt: skip
    return f"copy targets unfinished: {[(r['region'], r['fields']['status']) for r in targets]}" if targets else None


def stream_to_a_copy(sim: Served, deadline: float) -> bool:
    """Wait until an upload into a copy target of web-base is under way (the api-base copy goes to JP1 too,
    but is done long before web-base's copies start)."""
    while time.monotonic() < deadline:
        if any(e["end"] is None and e["method"] == "PUT" and e["stream"] for e in sim.request_log()):
            return True
        time.sleep(0.003)
    return False


KILL_POINTS = {
    # name: (progress line to wait for, then what must hold in the cloud after the kill)
    "inside a strict bracket": (r"^\s*done\s+unprotect legacy-gold KR1", bracket_open),
    "between a create and its copies": (r"^\s*done\s+create web-base KR1", created_without_copies),
    "mid-copy": (r"^\s*start\s+copy web-base (JP1|KR2)", copy_unfinished),
}


@dataclass
class Killed:
    point: str
    root: Path
    plan: Path
    sim: Served
    at: str  # what the cloud showed after the kill
    resume: subprocess.Popen[str] | None = None
    resume_started: float = 0.0
    resume_code: int | None = None
    resume_s: float = 0.0
    resume_output: str = ""
    final_plan_code: int | None = None  # plan --detailed-exitcode after the resume
    fallback_code: int | None = None  # the next plain apply, after the resume
    converged: list[str] = field(default_factory=list)  # converged_problems at the end


def kill_at(folder: Path, point: str, stack: contextlib.ExitStack) -> Killed:
    """`plan --out`, then `apply --plan` killed with SIGKILL at the named point; the simulator keeps
    serving (the resume must meet the same target, and the killed run's claim)."""
    root = fresh_root(folder)
    sim = stack.enter_context(served(folder))
    plan = folder / "plan.json"
    made = run_cli("plan", root, "--out", plan, env=sim.env)
    assert made.returncode in (0, 2), made.stderr
    pattern, holds = KILL_POINTS[point]
    process = subprocess.Popen(
        cli("apply", root, "--plan", plan, "--auto-approve", "--lock-lease", 30, "--format", "json"),
        env=sim.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        progress = Progress(process)
        assert progress.wait_for(pattern), f"{point}: never saw {pattern!r}:\n" + "\n".join(progress.lines[-30:])
        if point == "mid-copy":
            assert stream_to_a_copy(sim, time.monotonic() + 30), f"{point}: no copy stream seen"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    at = holds(sim.state_path)
    assert at is not None, f"the kill missed its point ({point}): {progress.lines[-10:]}"
    claims = [r for r in images(sim.state_path).values() if r["fields"].get("name", "").startswith("reconciler-lock-")]
    assert claims, f"{point}: the killed run left no lock claim: nothing for the resume to wait for"
    return Killed(point, root, plan, sim, at)


@pytest.fixture(scope="module")
def killed_then_resumed(tmp_path_factory) -> dict[str, Killed]:
    """Each named point: killed, then `apply --plan FILE --resume --lock-lease 30 --lock-timeout 40`. The
    three resumes run side by side (each against its own simulator), so their waits for the killed runs'
    claims overlap. Where a resume does not exit 0, a plain apply follows (as the runbook's "plan again"),
    so that what a kill leaves is still checked to converge."""
    folder = tmp_path_factory.mktemp("kills")
    with contextlib.ExitStack() as stack:
        killed = {point: kill_at(folder / f"kill-{i}", point, stack) for i, point in enumerate(KILL_POINTS)}
        for k in killed.values():
            k.resume_started = time.monotonic()
            k.resume = subprocess.Popen(
                cli("apply", k.root, "--plan", k.plan, "--resume", "--auto-approve", "--lock-lease", 30,
                    "--lock-timeout", 40, "--format", "json"),
                env=k.sim.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            )  # fmt: skip
        for k in killed.values():
            assert k.resume is not None
            k.resume_output = k.resume.communicate(timeout=150)[0]
            k.resume_code, k.resume_s = k.resume.returncode, time.monotonic() - k.resume_started
            FAULT_FIGURES["runs"] += 2
            FAULT_FIGURES["hits"] += 1
        # Then the next run, as a pipeline would make it: a create the killed run started and Nova was still
        # finishing when the resume planned is left alone by the resume (in progress) and finished here.
        fallbacks = {
            point: subprocess.Popen(
                cli("apply", k.root, "--auto-approve", "--lock-timeout", 40),
                env=k.sim.env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
            for point, k in killed.items()
        }
        for point, process in fallbacks.items():
            killed[point].fallback_code = process.wait(timeout=150)
            FAULT_FIGURES["runs"] += 1
        for k in killed.values():
            k.final_plan_code = run_cli("plan", k.root, "--detailed-exitcode", env=k.sim.env).returncode
            k.converged = converged_problems(k.sim.state_path)
            print(
                f"{k.point}: killed with {k.at}; the resume exited {k.resume_code} after {k.resume_s:.1f} s"
                + (f"; a plain apply then exited {k.fallback_code}" if k.fallback_code is not None else "")
            )
    FAULT_FIGURES["seed"] = SEED
    return killed


# The resume's fresh plan does not match the saved one after a kill (apply --plan FILE --resume exits 1,
# outcome plan_mismatch, nothing applied); each message quotes the differences apply named.
# A kill point whose resume the product refuses names the misbehaviour here and becomes a strict xfail
# until it is fixed (the three found by this test are fixed).
RESUME_REFUSED: dict[str, str] = {}


def resume_cases() -> list[Any]:
    return [
        pytest.param(point, marks=[pytest.mark.xfail(strict=True, reason=RESUME_REFUSED[point])])
        if point in RESUME_REFUSED
        else point
        for point in KILL_POINTS
    ]


@pytest.mark.parametrize("point", resume_cases())
def test_sigkill_then_resume_waits_for_the_claim_exits_0_and_converges(killed_then_resumed, point):
    k = killed_then_resumed[point]
    where = f"{point} (seed {SEED}), killed with {k.at}:\n{k.resume_output[-4000:]}"
    assert k.resume_code == 0, where
    # The killed run's claim (lease 30 s) blocks it until 35 s after that run took the lock.
    assert k.resume_s >= 15, f"{point}: the resume took {k.resume_s:.1f} s: it cannot have waited for the claim"
    assert k.fallback_code == 0, f"{point}: the apply after the resume exited {k.fallback_code}"
    assert k.final_plan_code == 0, f"{point}: the plan after the resume and the next apply is not empty"
    assert k.converged == [], where


def test_each_resume_waited_for_the_killed_runs_claim_then_took_the_lock(killed_then_resumed):
    """Whatever the resume then decided, it waited (the killed run's claim lives 35 s past its last
    renewal) and took the lock within --lock-timeout 40: no lock-held error."""
    for point, k in killed_then_resumed.items():
        assert k.resume_s >= 15, f"{point}: the resume took {k.resume_s:.1f} s: it cannot have waited for the claim"
        assert "has the lock" not in k.resume_output and "kept trying" not in k.resume_output, k.resume_output


def test_whatever_a_kill_left_converges(killed_then_resumed):
    """The resume, then the next plain apply: exit 0, then an empty plan with no duplicate and
    no leftover (no temporary-name image, no lock claim), every instance ACTIVE and unmarked."""
    problems = []
    for point, k in killed_then_resumed.items():
        code = k.resume_code if k.fallback_code is None else k.fallback_code
        if code != 0:
            problems.append(f"{point}: the last apply exited {code}")
        if k.final_plan_code != 0:
            problems.append(f"{point}: the final plan is not empty (exit {k.final_plan_code})")
        problems += [f"{point}: {p}" for p in k.converged]
    assert problems == []


# -- found on the way: the signal root shares legacy-gold only because it is seeded `shared` -----------

PROTECTED_PRIVATE_SEED = """\
regions: [KR1]
projects:
  - id: 3f0c9d2e6b7a4f0e9a1b2c3d4e5f6a7b
    users: [{username: dev@example.com, api_password: local-only}]
  - id: 8989447062e04a818baf9e073fd04fa7
    users: [{username: partner@example.com, api_password: partner-only}]
images:
  - {id: 00000000-0000-4000-8000-000000000012, project: 3f0c9d2e6b7a4f0e9a1b2c3d4e5f6a7b, region: KR1,
     name: legacy-gold, protected: true, properties: {os_type: linux, reconciler_set: platform,
     reconciler_key: legacy-gold, reconciler_source: "image:00000000-0000-4000-8000-000000000012"}}
behaviour: {protected_patch: strict}
"""


def test_sharing_a_protected_private_image_under_strict_protection_converges(tmp_path):
    """Found by this suite: the visibility PATCH of a share was planned outside any bracket (403 on every
    run); it now has a strict bracket of its own."""
    root = tmp_path / "root"
    (root / "images").mkdir(parents=True)
    (root / "reconciler.yaml").write_text(
        "version: 1\nset: platform\ncloud: {kind: simulator, seed: seed.yaml, protected_patch: strict}\n"
        "defaults: {region: KR1}\n"
    )
    (root / "images" / "gold.yaml").write_text(
        "version: 1\nimages:\n  legacy-gold:\n    source: {image: 00000000-0000-4000-8000-000000000012}\n"
        "    protected: true\n    share: [8989447062e04a818baf9e073fd04fa7]\n"
    )
    (root / "seed.yaml").write_text(PROTECTED_PRIVATE_SEED)
    env = quiet_env()
    applied = run_cli("apply", root, "--auto-approve", env=env)
    assert applied.returncode == 0, applied.stdout[-1500:] + applied.stderr[-1500:]
    assert run_cli("plan", root, "--detailed-exitcode", env=env).returncode == 0
