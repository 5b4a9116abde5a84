"""Roots: a folder holding `reconciler.yaml`, and the manifests under it.

A command always sees a whole root, so it can never delete what another folder declares. Manifests are
every other `*.yaml` / `*.yml` under the root, recursively, sorted by path, except dot-files, anything
under a dot-folder, and the files `cloud:` names (seed, state).

Nothing under the root that could hold manifests is skipped silently: a symbolic link that leaves the
root (to a manifest or to a folder), a broken link or a link loop (whatever its name: it may have been a
folder), and a folder that cannot be read are each refused by name, so that what they would have declared
never turns into planned deletions. A folder link that stays inside the root is not followed: the folder
it names is read where it is. A folder under the root holding its own `reconciler.yaml` is a nested root:
refused too, since its files cannot be this root's manifests and another root's at once.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
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


@dataclass(frozen=True, slots=True)
class Refused:
    """Something under the root that was not read, and why: always an error, never skipped."""

    path: Path
    message: str


LINK_LOOP = "a symbolic link loop: not read"
LINK_BROKEN = "a broken symbolic link (what it points to does not exist): not read"
LINK_LEAVES = "a symbolic link that leaves the root: not read"
FOLDER_LINK_LEAVES = "a symbolic link to a folder that leaves the root: not read"


def nested_root_message(folder: str) -> str:
    """Why a folder under the root that holds its own reconciler.yaml is refused: its manifests would be
    read as this root's (another set's images taken for this set's) or, skipped, its images would vanish
    from no one's view. One root per folder tree; roots sit side by side."""
    return (
        f"a nested root: the folder {folder}/ has its own {ROOT_FILE}, and a root's manifests are every YAML file "
        f"under it; nothing in {folder}/ was read. Hint: move {folder}/ out of this root (roots sit side by side, "
        f"each run on its own), or delete {folder}/{ROOT_FILE} to make its manifests part of this root"
    )


def manifest_files(root: Path, excluded: Iterable[Path] = ()) -> list[Path]:
    """Every manifest under `root`, sorted by its path relative to the root."""
    return walk_root(root, excluded)[0]


def walk_root(root: Path, excluded: Iterable[Path] = ()) -> tuple[list[Path], list[Refused]]:
    """Every manifest under `root`, and everything that was refused instead of read, both sorted by path
    relative to the root."""
    root = root.resolve()
    walk = _Walk(root, {_resolved(p) for p in excluded} | {root / ROOT_FILE})
    while walk.folders:
        walk.read(walk.folders.pop())
    order = lambda p: p.relative_to(root).as_posix()  # noqa: E731
    return sorted(walk.found, key=order), sorted(walk.refused, key=lambda r: order(r.path))


@dataclass
class _Walk:
    """One walk of a root: the folders still to read, the manifests found, what was refused."""

    root: Path
    skip: set[Path]  # read by no one: the root file and the files `cloud:` names
    found: list[Path] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)
    folders: list[Path] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.folders.append(self.root)

    def read(self, folder: Path) -> None:
        """Take in what `folder` holds: its manifests, its folders (read next), and what is refused."""
        for entry in self._entries(folder):
            self._take(entry)

    def _entries(self, folder: Path) -> list[os.DirEntry[str]]:
        """The folder's entries; none when it cannot be read or is a nested root (both refused)."""
        try:
            with os.scandir(folder) as listing:
                entries = list(listing)
        except OSError as err:
            self.refused.append(Refused(folder, f"cannot read the folder: {err.strerror}"))
            return []
        if folder != self.root and any(entry.name == ROOT_FILE for entry in entries):
            self.refused.append(
                Refused(folder / ROOT_FILE, nested_root_message(folder.relative_to(self.root).as_posix()))
            )
            return []
        return entries

    def _take(self, entry: os.DirEntry[str]) -> None:
        if entry.name.startswith("."):
            return
        path = Path(entry.path)
        manifest = entry.name.endswith(MANIFEST_SUFFIXES)
        try:
            link = entry.is_symlink()
            folder_here = not link and entry.is_dir(follow_symlinks=False)
        except OSError as err:
            self.refused.append(Refused(path, f"cannot read it: {err.strerror}"))
            return
        if folder_here:
            self.folders.append(path)
            return
        if link and not self._follows(path, manifest):
            return
        if manifest and _resolved(path) not in self.skip:
            self.found.append(path)

    def _follows(self, link: Path, manifest: bool) -> bool:
        """Whether the symbolic link `link` is read like the file it names: not when that is skipped, when
        the link is refused, or when it names a folder inside the root (read where it is)."""
        if _resolved(link) in self.skip:
            return False
        problem = _link_problem(self.root, link, manifest)
        if problem is not None:
            self.refused.append(Refused(link, problem))
            return False
        return not os.path.isdir(link)


def _link_problem(root: Path, link: Path, manifest: bool) -> str | None:
    """Why the symbolic link `link` is not read, or None when it is followed (or, named as no manifest
    is, ignored like any other such file)."""
    if symlink_loop(link):
        return LINK_LOOP
    if not os.path.exists(link):
        return LINK_BROKEN
    if inside(root, link):
        return None
    if os.path.isdir(link):
        return FOLDER_LINK_LEAVES
    return LINK_LEAVES if manifest else None


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
