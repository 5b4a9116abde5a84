"""Roots: a folder holding `reconciler.yaml`, and the manifests under it.

A command always sees a whole root, so it can never delete what another folder declares. Manifests are
every other `*.yaml` / `*.yml` under the root, recursively, sorted by path, except dot-files, anything
under a dot-folder, and the files `cloud:` names (seed, state).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from reconciler.errors import UsageError

ROOT_FILE = "reconciler.yaml"
MANIFEST_SUFFIXES = (".yaml", ".yml")


class NotARootError(UsageError):
    """The folder has no reconciler.yaml."""


def find_root(folder: Path) -> Path:
    """`folder` itself if it is a root; otherwise an error naming the nearest root above, if any."""
    folder = folder.resolve()
    if not folder.is_dir():
        raise NotARootError(f"{folder} is not a folder")
    if (folder / ROOT_FILE).is_file():
        return folder
    above = next((parent for parent in folder.parents if (parent / ROOT_FILE).is_file()), None)
    hint = (
        f"the nearest root above is {above}: run the command there (a run always covers a whole root)"
        if above is not None
        else f"create {ROOT_FILE} there (version, set, cloud) to make it one"
    )
    raise NotARootError(f"{folder} is not a reconciler root (no {ROOT_FILE})", hint=hint)


def manifest_files(root: Path, excluded: Iterable[Path] = ()) -> list[Path]:
    """Every manifest under `root`, sorted by its path relative to the root."""
    root = root.resolve()
    skip = {_resolved(p) for p in excluded} | {root / ROOT_FILE}
    found: list[Path] = []
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        for name in files:
            path = Path(folder) / name
            if name.startswith(".") or not name.endswith(MANIFEST_SUFFIXES) or _resolved(path) in skip:
                continue
            found.append(path)
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a symlink loop: compare it as it is
        return path.absolute()


def symlink_loop(path: Path) -> bool:
    try:
        path.resolve(strict=True)
    except RuntimeError:
        return True
    except OSError as err:
        return err.errno == 40  # ELOOP
    return False


def inside(root: Path, path: Path) -> bool:
    """Whether `path` (resolved, symlinks followed) is inside `root`."""
    try:
        path.resolve().relative_to(root.resolve())
    except (ValueError, OSError, RuntimeError):
        return False
    return True
