"""The simulator's state: one JSON document in memory, persisted atomically to one file after each change.

Several processes may serve the same state file (a `serve` in one terminal, a `plan --sim-state` in
another): every transaction takes an exclusive `flock` on a lock file beside the state, reloads the
document if another process replaced it since we last looked, and, if it changed anything, writes the
whole document to a temporary file and renames it over the old one. A reader therefore never sees a
half-written state, and no change is lost between processes.

The simulator's clock is the real time plus `clock_offset_s` (a document key, 0 when absent), so every
process serving one state agrees on "now" and a test can move it forward (`POST /_simulator/clock`).
Deleted image ids are kept in `deleted_images` (absent in old state files: none), because Glance never
lets an id be used again.

Image bytes are not in the document: an image either has generated content (`{"kind": "generated",
"size_mb", "content"}`, regenerated on read, see qcow2.py) or uploaded bytes in a blob file in the folder
`<state>.blobs/` (a temporary folder with `--in-memory`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reconciler.errors import SimulatorStateError

STATE_FORMAT_VERSION = 1


def utc_now(epoch: float | None = None) -> str:
    """`epoch` (default: the real time now) as Glance and Nova print it, to the second
    (`2026-11-26T07:51:55Z`). Handlers use `Transaction.utc_now()`, which follows the simulator's clock."""
    return datetime.fromtimestamp(time.time() if epoch is None else epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def clock_now(doc: dict[str, Any]) -> float:
    """The simulator's time in epoch seconds: the real time plus the state's clock offset."""
    return time.time() + float(doc.get("clock_offset_s", 0))


def empty_state() -> dict[str, Any]:
    return {
        "format_version": STATE_FORMAT_VERSION,
        "regions": [],
        "projects": {},
        # The seed's first project, which a root without cloud.project acts as. Kept apart because the state
        # is written with sorted keys, so "the first of projects" would be the lowest id once reloaded.
        "default_project": None,
        "flavors": {},
        "servers": {},
        "volumes": {},
        "images": {},
        "deleted_images": {},
        "clock_offset_s": 0,
        "behaviour": {},
        "sequence": 0,
    }


class Transaction:
    """A view of the state inside one locked transaction. Call `changed()` after modifying `doc`."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.dirty = False

    def changed(self) -> None:
        self.dirty = True

    def now(self) -> float:
        """The simulator's time (epoch seconds): see `clock_now`."""
        return clock_now(self.doc)

    def utc_now(self) -> str:
        """The simulator's time as Glance prints timestamps."""
        return utc_now(self.now())

    def new_uuid(self, kind: str) -> str:
        """A fresh id, deterministic for a given state history so test output is stable."""
        self.doc["sequence"] += 1
        self.changed()
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"reconciler-simulator:{kind}:{self.doc['sequence']}"))


class StateStore:
    """Owns the state document and its file. Thread-safe and process-safe (see the module docstring)."""

    def __init__(
        self,
        doc: dict[str, Any],
        path: Path | None = None,
        *,
        in_memory: bool = False,
        seen: tuple[int, int, int] | None = None,
    ) -> None:
        self._doc = doc
        self._path = path
        self._persist = path is not None and not in_memory
        self._lock = threading.RLock()
        # Counts the transactions that changed the state (and reloads of a file another process wrote): what
        # was computed from the state at one generation holds until the next (images.py's listing cache).
        self.generation = 0
        # The file's identity when `doc` was read from it: a different one means another process wrote.
        self._seen = seen
        self._tmp_blobs: tempfile.TemporaryDirectory[str] | None = None
        if self._persist:
            assert path is not None
            self.blob_dir = path.with_name(path.name + ".blobs")
            self._read_blob_dirs = [self.blob_dir]
        else:
            self._tmp_blobs = tempfile.TemporaryDirectory(prefix="reconciler-sim-blobs-")
            self.blob_dir = Path(self._tmp_blobs.name)
            # An in-memory server started from a file still reads the blobs that file refers to.
            self._read_blob_dirs = [self.blob_dir]
            if path is not None:
                self._read_blob_dirs.append(path.with_name(path.name + ".blobs"))
        self.blob_dir.mkdir(parents=True, exist_ok=True)

    @classmethod
    def open(cls, path: Path, *, in_memory: bool = False) -> StateStore:
        # Read and note the file's identity under the lock, so a concurrent writer cannot slip in
        # between and have its change overwritten later.
        with locked(path):
            seen = _stat(path)
            return cls(_read_state_file(path), path, in_memory=in_memory, seen=seen)

    @classmethod
    def in_memory(cls, doc: dict[str, Any]) -> StateStore:
        return cls(doc, None, in_memory=True)

    @property
    def path(self) -> Path | None:
        return self._path

    def close(self) -> None:
        if self._tmp_blobs is not None:
            self._tmp_blobs.cleanup()
            self._tmp_blobs = None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """Lock, refresh from disk if another process wrote, yield, and persist if changed.

        Handlers validate a request completely before they change anything, so a refused request
        (an exception out of the body) has nothing to undo and nothing is written.
        """
        with self._lock, self._file_lock():
            self._refresh()
            txn = Transaction(self._doc)
            try:
                yield txn
            finally:
                if txn.dirty:
                    self.generation += 1
            if txn.dirty and self._persist:
                self._write()

    def blob_path_for_write(self, name: str) -> Path:
        return self.blob_dir / name

    def blob_path_for_read(self, name: str) -> Path | None:
        for folder in self._read_blob_dirs:
            candidate = folder / name
            if candidate.exists():
                return candidate
        return None

    # -- persistence -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _file_lock(self) -> Iterator[None]:
        if not self._persist:
            yield
            return
        assert self._path is not None
        with locked(self._path):
            yield

    def _refresh(self) -> None:
        if not self._persist:
            return
        assert self._path is not None
        seen = _stat(self._path)
        if seen != self._seen and seen is not None:
            assert self._path is not None
            self._doc.clear()
            self._doc.update(_read_state_file(self._path))
            self._seen = seen
            self.generation += 1

    def _write(self) -> None:
        assert self._path is not None
        write_state_file(self._path, self._doc)
        self._seen = _stat(self._path)


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold the exclusive lock that every process serving `path` takes around each transaction."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _stat(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def write_state_file(path: Path, doc: dict[str, Any]) -> None:
    """Write `doc` to `path` atomically: a temporary file in the same folder, then a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # No indent: json's C encoder handles only the compact form, and indenting made every write of a
        # 2,000-image state about 3x slower (benchmarks/simulator_bench.py).
        text = json.dumps(doc, sort_keys=True, separators=(",", ":"))
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _read_state_file(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SimulatorStateError(
            f"simulator state {path} does not exist",
        ) from None
    except (OSError, ValueError) as err:
        raise SimulatorStateError(f"simulator state {path} cannot be read: {err}") from None
    if not isinstance(doc, dict) or doc.get("format_version") != STATE_FORMAT_VERSION:
        raise SimulatorStateError(f"{path} is not a reconciler simulator state (format_version {STATE_FORMAT_VERSION})")
    return doc
