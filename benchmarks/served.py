"""A simulator served from a seed in a separate process, in memory, for the benchmarks that measure the
client: the simulator gets its own interpreter (no shared GIL) and never writes a state file per change."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import requests
import yaml


@contextlib.contextmanager
def served_simulator(seed: dict, folder: Path) -> Iterator[str]:
    """Serve `seed` (written to `folder`); yields the identity URL (…/v2.0)."""
    seed_file, state = folder / "seed.yaml", folder / "state.json"
    seed_file.write_text(yaml.safe_dump(seed))
    cli = [sys.executable, "-m", "reconciler", "simulator"]
    subprocess.run([*cli, "init", str(state), "--seed", str(seed_file)], check=True, capture_output=True)
    server = subprocess.Popen(
        [*cli, "serve", "--state", str(state), "--in-memory"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # its "serving ... stop with Ctrl-C" banner
        text=True,
    )
    try:
        yield server.stdout.readline().strip()
    finally:
        server.terminate()
        server.wait(timeout=10)


def request_counts(identity: str, reset: bool = False) -> dict[str, int]:
    """The simulator's requests per route since the last reset (its own stats calls left out)."""
    base = identity.removesuffix("/v2.0")
    if reset:
        requests.delete(f"{base}/_simulator/stats", timeout=10)
        return {}
    routes = requests.get(f"{base}/_simulator/stats", timeout=10).json()["routes"]
    return {route: n for route, n in routes.items() if not route.startswith(("GET /_simulator", "DELETE /_simulator"))}
