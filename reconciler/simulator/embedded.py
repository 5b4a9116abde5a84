"""Start the simulator in-process, on a free loopback port, for one command (the `--sim-state` flag and a
root's `cloud: {kind: simulator}`). The caller's HTTP client then talks to it like to NHN Cloud: one
client code path for both."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from reconciler.simulator.behaviour import Behaviour
from reconciler.simulator.seed import open_or_init
from reconciler.simulator.server import SimulatorServer


@contextlib.contextmanager
def running_simulator(
    state_path: Path,
    *,
    seed_path: Path | None = None,
    in_memory: bool = False,
    behaviour: Behaviour | None = None,
) -> Iterator[SimulatorServer]:
    """Serve `state_path` (created from `seed_path` if missing) for the duration of the block."""
    store = open_or_init(state_path, seed_path, in_memory=in_memory)
    server = SimulatorServer(store, behaviour)
    with server:
        yield server
