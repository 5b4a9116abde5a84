"""The one-line description of a run's target that every output starts with:
kind, identity host (and the user's variable when the root names `cloud.credentials`), project, regions;
`SIMULATOR` in capitals when it is one. A run never guesses it."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

from reconciler.cloud.environment import identity_url_setting, split_identity_url
from reconciler.desired import CloudConfig, RootConfig


def effective_cloud(config: RootConfig, sim_state: Path | None) -> CloudConfig:
    """The root's cloud, unless `--sim-state` (given by whoever runs the tool) points elsewhere."""
    if sim_state is None:
        return config.cloud
    return dataclasses.replace(
        config.cloud,
        kind="simulator",
        state=sim_state.resolve(),
        seed=config.cloud.seed if config.cloud.kind == "simulator" else None,
    )


def short_project(project: str | None) -> str:
    if not project:
        return "(the seed's first project)"
    return f"{project[:4]}…{project[-4:]}" if len(project) > 12 else project


def describe(config: RootConfig, cloud: CloudConfig, env: Mapping[str, str]) -> str:
    regions = " ".join(cloud.regions) if cloud.regions else "all catalog regions"
    if cloud.kind == "simulator":
        state = cloud.state
        shown = state.relative_to(config.path).as_posix() if state and state.is_relative_to(config.path) else str(state)
        where = f"SIMULATOR state {shown}"
    else:
        variable, url = identity_url_setting(env)
        where = f"nhn {split_identity_url(url, variable).hostname}"
        if cloud.credentials:
            # Which API user a root acts as is part of its target when roots use different ones.
            where += f" as {cloud.credentials}_USERNAME"
    return f"set {config.set} · {where} · project {short_project(cloud.project)} · {regions}"
