"""Shared fixtures: simulators served over real HTTP on loopback, and clients for each seeded project."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support import FAULT_FIGURES, OUTSIDER, OUTSIDER_USER, OWNER, OWNER_USER, PARTNER, PARTNER_USER, Api, standard_seed

from reconciler.simulator.behaviour import Behaviour
from reconciler.simulator.seed import state_from_seed
from reconciler.simulator.server import SimulatorServer
from reconciler.simulator.state import StateStore, write_state_file

SimFactory = Callable[..., SimulatorServer]


@pytest.fixture
def make_sim(tmp_path: Path) -> Iterator[SimFactory]:
    """Start simulators: `make_sim(seed=..., state_file=..., **behaviour)`; all are stopped afterwards.

    Polls default to 0 (instant transitions) unless a test asks for them.
    """
    started: list[SimulatorServer] = []

    def start(
        seed: dict[str, Any] | None = None, *, state_file: Path | None = None, **behaviour: Any
    ) -> SimulatorServer:
        state = state_from_seed(seed or standard_seed())
        knobs = {"image_ready_after_polls": 0, "server_ready_after_polls": 0, **behaviour}
        if state_file is not None:
            write_state_file(state_file, state)
            store = StateStore.open(state_file)
        else:
            store = StateStore.in_memory(state)
        server = SimulatorServer(store, Behaviour.from_dict(knobs)).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def sim(make_sim: SimFactory) -> SimulatorServer:
    return make_sim()


@pytest.fixture
def owner(sim: SimulatorServer) -> Api:
    return Api(sim, *OWNER_USER, OWNER)


@pytest.fixture
def partner(sim: SimulatorServer) -> Api:
    return Api(sim, *PARTNER_USER, PARTNER)


@pytest.fixture
def outsider(sim: SimulatorServer) -> Api:
    return Api(sim, *OUTSIDER_USER, OUTSIDER)


# -- the real-Glance tiers: CI requires both to have run --------------------------------------------

_glance_passed: list[str] = []
_e2e_passed: list[str] = []
_e2e_seconds: list[float] = []  # setup, call and teardown of every end-to-end test


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" and report.passed and "glance" in report.keywords:
        _glance_passed.append(report.nodeid)
    if "e2e" in report.keywords and report.outcome != "skipped":
        _e2e_seconds.append(report.duration)
        if report.when == "call" and report.passed:
            _e2e_passed.append(report.nodeid)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if os.environ.get("RECONCILER_GLANCE_URL") or _glance_passed:
        terminalreporter.write_line(f"contract tests passed against a real Glance: {len(_glance_passed)}")
    if os.environ.get("RECONCILER_GLANCE_URL_2") or _e2e_passed:
        terminalreporter.write_line(
            f"end-to-end tests passed against two real Glance servers: {len(_e2e_passed)} "
            f"(the tier took {sum(_e2e_seconds):.1f} s)"
        )
    if FAULT_FIGURES["runs"]:
        f = FAULT_FIGURES
        terminalreporter.write_line(
            f"fault runs: {f['runs']}, faults hit: {f['hits']}, promise violations: {f['violations']}, seed: {f['seed']}"
        )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # .ci/run sets RECONCILER_REQUIRE_GLANCE=1: a run whose Glance tests were all skipped must fail.
    if os.environ.get("RECONCILER_REQUIRE_GLANCE") == "1" and not _glance_passed and exitstatus == 0:
        session.exitstatus = 1
        print("\nerror: RECONCILER_REQUIRE_GLANCE=1 but no test marked glance passed", file=sys.stderr)
    # And RECONCILER_REQUIRE_E2E=1: a run whose end-to-end tests were all skipped must fail too.
    if os.environ.get("RECONCILER_REQUIRE_E2E") == "1" and not _e2e_passed and exitstatus == 0:
        session.exitstatus = 1
        print("\nerror: RECONCILER_REQUIRE_E2E=1 but no test marked e2e passed", file=sys.stderr)
