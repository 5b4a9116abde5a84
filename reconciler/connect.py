"""Open the client for a root's target: NHN Cloud with credentials from the environment (NHN_CLOUD_*, or
the root's own `cloud.credentials` prefix), or the embedded simulator started in-process on loopback.
Either way the same HTTP client is used. A run of several roots starts one simulator per state file and
serves every root that uses it from that one (`Simulators`): they are projects of one simulated cloud, and
a later root sees what an earlier root's apply did."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from reconciler.cloud.auth import Credentials
from reconciler.cloud.environment import credential_names, first_set
from reconciler.cloud.errors import CloudConfigError
from reconciler.cloud.nhn import NhnCloudClient, connect
from reconciler.cloud.transport import DEFAULT_TIMEOUT
from reconciler.desired import CloudConfig, RootConfig
from reconciler.plan import Target

# The simulator's objects change state per poll, not per second: no reason to wait long between polls.
SIMULATOR_POLL_DELAYS = (0.02, 0.2)


class Simulators:
    """The embedded simulators of one run, one per state file, each started when a root first needs it and
    stopped when the run ends (use as a context manager)."""

    def __init__(self) -> None:
        self._stack = contextlib.ExitStack()
        self._servers: dict[Path, Any] = {}

    def __enter__(self) -> Simulators:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def server(self, state: Path, seed: Path | None) -> Any:
        """The running simulator of `state` (created from `seed` if missing)."""
        # Imported here, not at the top: a real-cloud run never loads the simulator (its HTTP server, its
        # seed schema, YAML).
        from reconciler.simulator.embedded import running_simulator

        key = state.resolve()
        if key not in self._servers:
            self._servers[key] = self._stack.enter_context(running_simulator(state, seed_path=seed))
        return self._servers[key]


@contextlib.contextmanager
def open_cloud(
    config: RootConfig, cloud: CloudConfig, env: Mapping[str, str], simulators: Simulators | None = None
) -> Iterator[tuple[NhnCloudClient, Target]]:
    """The client of one root's target. `simulators`: the run's embedded simulators, shared by its roots;
    without it a simulator target gets its own for the duration of the block."""
    if cloud.kind != "simulator":
        with _open_nhn(config, cloud, env) as opened:
            yield opened
        return
    with contextlib.ExitStack() as own:
        shared = simulators if simulators is not None else own.enter_context(Simulators())
        with _open_simulator(config, cloud, env, shared) as opened:
            yield opened


@contextlib.contextmanager
def _open_nhn(
    config: RootConfig, cloud: CloudConfig, env: Mapping[str, str]
) -> Iterator[tuple[NhnCloudClient, Target]]:
    credentials = Credentials.from_environment(env, prefix=cloud.credentials)
    assert cloud.project is not None
    client = connect(credentials, cloud.project, timeout=http_timeout(env))
    try:
        yield client, _target(config, cloud, client, credentials.identity_url, cloud.project)
    finally:
        client.close()


@contextlib.contextmanager
def _open_simulator(
    config: RootConfig, cloud: CloudConfig, env: Mapping[str, str], simulators: Simulators
) -> Iterator[tuple[NhnCloudClient, Target]]:
    assert cloud.state is not None
    server = simulators.server(cloud.state, cloud.seed)
    project, user, password = _simulator_identity(cloud.state, cloud.project, env, cloud.credentials)
    credentials = Credentials(user, password, identity_url=server.identity_url)
    client = connect(credentials, project, poll_delays=SIMULATOR_POLL_DELAYS, timeout=http_timeout(env))
    try:
        yield client, _target(config, cloud, client, "loopback", project)
    finally:
        client.close()


def http_timeout(env: Mapping[str, str]) -> tuple[float, float]:
    """(connect, read) timeout of every request; RECONCILER_HTTP_TIMEOUT (seconds) sets the read timeout,
    for slow links (raise it) or fault tests (lower it)."""
    raw = env.get("RECONCILER_HTTP_TIMEOUT")
    if not raw:
        return DEFAULT_TIMEOUT
    try:
        seconds = float(raw)
    except ValueError:
        raise CloudConfigError(f"RECONCILER_HTTP_TIMEOUT={raw!r} is not a number of seconds") from None
    if seconds <= 0:
        raise CloudConfigError("RECONCILER_HTTP_TIMEOUT must be positive")
    return (min(DEFAULT_TIMEOUT[0], seconds), seconds)


def _target(config: RootConfig, cloud: CloudConfig, client: NhnCloudClient, identity: str, project: str) -> Target:
    regions = cloud.regions or client.image_regions()
    state = None
    if cloud.kind == "simulator" and cloud.state is not None:
        state = (
            cloud.state.relative_to(config.path).as_posix()
            if cloud.state.is_relative_to(config.path)
            else str(cloud.state)
        )
    return Target(kind=cloud.kind, project=project, identity=identity, regions=tuple(regions), state=state)


def _simulator_identity(
    state: Path, project: str | None, env: Mapping[str, str], prefix: str | None
) -> tuple[str, str, str]:
    """The project and the user a simulator target acts as: its project's first seeded user, unless the
    environment names a user. A root with `cloud.credentials` (an nhn root run with --sim-state) is named
    a user by its prefix's variables only: NHN_CLOUD_* may be another root's user."""
    doc = json.loads(state.read_text(encoding="utf-8"))
    projects = doc["projects"]
    if project is None:
        # The seed's first project (a state written before it was recorded: the first listed).
        project = doc.get("default_project") or next(iter(projects), None)
    if project is None or project not in projects:
        raise CloudConfigError(f"the simulator state {state} has no project {project}")
    names = credential_names(prefix)
    _, username = first_set(env, names["username"])
    _, password = first_set(env, names["password"])
    if username and password:
        return project, username, password
    users = projects[project]["users"]
    if not users:
        raise CloudConfigError(f"project {project} has no user in the simulator state {state}")
    return project, users[0]["username"], users[0]["api_password"]
