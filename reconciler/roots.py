"""The roots a run names (`validate|plan|apply ROOT ROOT ...`), read in the order given.

Each root is its own target, set and lock; a run of several is several runs of one, reviewed and carried
out together. A root whose files are invalid keeps its error, so that `plan` can still show every other
root. What makes a run ambiguous is a usage error before anything is read from a cloud: the same folder
twice, or two roots of the same project and set (each would plan the other's images as its own).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from reconciler import target
from reconciler.desired import CloudConfig, DesiredState
from reconciler.errors import ReconcilerError, UsageError
from reconciler.render import escape


@dataclass(frozen=True, slots=True)
class Root:
    """One root of the run: as given on the command line, and what reading it gave."""

    given: str  # as typed, normalised (a/./b/ is a/b): shown in headings and kept in a saved plan of several
    desired: DesiredState | None  # None when the root's files are invalid
    cloud: CloudConfig | None  # the target it runs against (--sim-state applied)
    error: ReconcilerError | None = None

    def describe(self, env: Mapping[str, str]) -> str | None:
        """The root's target line (reconciler.target.describe), or None when its files did not validate."""
        if self.desired is None or self.cloud is None:
            return None
        return target.describe(self.desired.root, self.cloud, env)


def given_name(path: Path) -> str:
    """How a root is named in headings and saved plans: the path as typed, normalised."""
    return os.path.normpath(str(path))


def load_roots(paths: Sequence[Path], sim_state: Path | None, *, allow_http_loopback: bool = False) -> list[Root]:
    """Every root named, in order. Raises UsageError for a folder named twice or a (project, set) managed
    twice; an invalid root's error is kept in its Root. `allow_http_loopback`: as load_desired_state."""
    from reconciler.validate import load_desired_state

    _refuse_same_folder(paths)
    roots = []
    for path in paths:
        try:
            desired = load_desired_state(path, allow_http_loopback=allow_http_loopback)
        except ReconcilerError as err:
            roots.append(Root(given_name(path), None, None, err))
            continue
        roots.append(Root(given_name(path), desired, target.effective_cloud(desired.root, sim_state)))
    _refuse_same_project_and_set(roots)
    return roots


def _refuse_same_folder(paths: Sequence[Path]) -> None:
    seen: dict[Path, Path] = {}
    for path in paths:
        resolved = path.resolve()
        if resolved in seen:
            first, again = escape.text(str(seen[resolved])), escape.text(str(path))
            same = f"the root {first} is named twice" if first == again else f"{first} and {again} are the same root"
            raise UsageError(f"{same}: a run plans and applies each root once", hint="name each root once")
        seen[resolved] = path


def _refuse_same_project_and_set(roots: Sequence[Root]) -> None:
    seen: dict[tuple[str, object, str | None, str], Root] = {}
    for root in roots:
        if root.desired is None or root.cloud is None:
            continue
        cloud = root.cloud
        key = (cloud.kind, _where(cloud), project_of(cloud), root.desired.root.set)
        if key in seen:
            project = escape.text(key[2] or "(the simulator's first project)")
            first, again = escape.text(seen[key].given), escape.text(root.given)
            raise UsageError(
                f"the roots {first} and {again} both manage set {escape.text(root.desired.root.set)} in project "
                f"{project}: each would plan the other's images as its own",
                hint="a project's set belongs to one root: change one root's set: or cloud.project, or merge the "
                "two roots",
            )
        seen[key] = root


def _where(cloud: CloudConfig) -> object:
    """Which cloud a project lives in: one simulator state file (the same file under any path or link), or
    the real cloud (one identity URL per run)."""
    if cloud.kind != "simulator" or cloud.state is None:
        return None
    try:
        found = cloud.state.stat()
    except OSError:
        return str(cloud.state.resolve())
    return (found.st_dev, found.st_ino)


def project_of(cloud: CloudConfig) -> str | None:
    """The root's project. A simulator root without cloud.project acts as its state's first project (the
    seed's, until the state exists): read offline, so that a root naming that project by id is the same."""
    if cloud.project is not None or cloud.kind != "simulator":
        return cloud.project
    try:
        if cloud.state is not None and cloud.state.exists():
            doc = json.loads(cloud.state.read_text(encoding="utf-8"))
            return doc.get("default_project") or next(iter(doc.get("projects") or {}), None)
        if cloud.seed is not None:
            seed = yaml.safe_load(cloud.seed.read_text(encoding="utf-8"))
            return str(seed["projects"][0]["id"])
    except (OSError, ValueError, TypeError, KeyError, IndexError, AttributeError, yaml.YAMLError):
        return None  # an unreadable state or seed fails when its root runs, with its own error
    return None
