"""A `source.file`: found under the root, then under each --artifacts directory, and read without following a
symbolic link anywhere below that directory.

A manifest comes from a pull request and the apply job reads with the job's rights, so the path must not
lead out of the directories the operator named: no `..`, no absolute path (validation refuses both; this
module refuses them again), and no symbolic link on any component (a link committed to the repository could
point at the job's credentials). The checks are made on the open file descriptors, walking one directory at
a time with `dir_fd`, so nothing can swap a component between a check and the open."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from reconciler.live import Artifact
from reconciler.sources.access import SourceAccess
from reconciler.sources.reading import CHUNK, Opened, SourceError

# O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer (apply would hang before the
# check that refuses it); a regular file ignores the flag.
_LAST = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY
_DIRECTORY = os.O_RDONLY | os.O_NOFOLLOW | os.O_DIRECTORY | os.O_CLOEXEC


def parts(path: str) -> tuple[str, ...]:
    """The components of a relative `source.file`; SourceError for an absolute path or a `..`."""
    pure = PurePosixPath(path)
    if not path or pure.is_absolute() or ".." in pure.parts or "\x00" in path:
        raise SourceError(f"source.file {path!r} must be a relative path without '..'")
    return tuple(part for part in pure.parts if part != ".")


def bases(root: Path, access: SourceAccess) -> list[tuple[Path, str]]:
    """Where a file is looked up, in order, each with the words that name it in a message."""
    return [(root, f"the root ({root})")] + [(directory, str(directory)) for directory in access.artifacts]


def shown(base: Path, root: Path, path: str) -> str:
    """The file as found, for humans: relative to the root, or under its --artifacts directory."""
    return path if base == root else f"{base}/{path}"


def locate(path: str, root: Path, access: SourceAccess) -> tuple[Path, os.stat_result]:
    """The first base holding an entry at `path` (not following a final symbolic link), and that entry's
    lstat. SourceError naming every place looked when none does."""
    components = parts(path)
    for base, _ in bases(root, access):
        try:
            return base, os.lstat(base.joinpath(*components))
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as err:
            raise SourceError(f"{shown(base, root, path)} cannot be read: {err.strerror}") from None
    raise SourceError(_missing(path, root, access), hint="build it first, or pass --artifacts DIR where it is built")


def open_file(path: str, root: Path, access: SourceAccess) -> Opened:
    """The file's bytes, opened without following a symbolic link below its base directory. Raises
    SourceError for a missing file, a link, anything but a regular file, or one over --max-upload-bytes."""
    base, _ = locate(path, root, access)
    where = shown(base, root, path)
    fd = _open_below(base, parts(path), where)
    try:
        size = _regular_size(fd, where, access.max_upload_bytes)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    reader = os.fdopen(fd, "rb", buffering=0)
    return Opened(
        where=where,
        size=size,
        _stream=lambda: _read(reader, where, access.max_upload_bytes),
        _close=reader.close,
    )


def probe_file(path: str, root: Path, access: SourceAccess) -> Artifact:
    """Whether the file is there and its size, judged as apply will judge it: opened the same way (no link on
    any component; nothing is read), then closed. Never raises: a file that is not there is
    `source_not_built` at plan time, not a failure."""
    try:
        base, _ = locate(path, root, access)
    except SourceError as err:
        return Artifact(where=path, found=False, note=err.message)
    where = shown(base, root, path)
    try:
        fd = _open_below(base, parts(path), where)
    except SourceError as err:
        return Artifact(where=where, note=f"{err.message} (apply will refuse it)")
    try:
        status = os.fstat(fd)
    finally:
        os.close(fd)
    if stat.S_ISREG(status.st_mode):
        return Artifact(where=where, size=status.st_size)
    return Artifact(where=where, note=f"{_what(status.st_mode)}, not a regular file: apply will refuse it")


def _missing(path: str, root: Path, access: SourceAccess) -> str:
    looked = f"{path} is not in the root ({root})"
    if access.artifacts:
        looked += ", nor in --artifacts " + ", ".join(str(directory) for directory in access.artifacts)
    return looked


def _open_below(base: Path, components: tuple[str, ...], where: str) -> int:
    """The last component opened read-only, each directory before it opened with O_NOFOLLOW from the one
    above it. The base itself is the operator's (the root or an --artifacts directory) and may be a link."""
    try:
        fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as err:
        raise SourceError(f"{where}: its directory {base} cannot be opened: {err.strerror}") from None
    walked = PurePosixPath()
    try:
        for index, part in enumerate(components):
            walked /= part
            last = index == len(components) - 1
            try:
                child = os.open(part, _LAST if last else _DIRECTORY, dir_fd=fd)
            except OSError as err:
                raise _refusal(fd, part, walked, where, err) from None
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def _refusal(parent: int, part: str, walked: PurePosixPath, where: str, err: OSError) -> SourceError:
    """Why `part` could not be opened, naming what it is when that is the reason (a link, not a directory)."""
    try:
        mode: int | None = os.lstat(part, dir_fd=parent).st_mode
    except OSError:
        mode = None
    inside = "" if str(walked) == where else f" (in {where})"
    if mode is not None and stat.S_ISLNK(mode):
        return SourceError(f"{walked}{inside} is a symbolic link: an upload follows no links")
    if mode is not None and err.errno == errno.ENOTDIR:
        return SourceError(f"{walked}{inside} is {_what(mode)}, not a directory")
    return SourceError(f"{where} cannot be opened: {err.strerror}")


def _regular_size(fd: int, where: str, limit: int) -> int:
    status = os.fstat(fd)
    if not stat.S_ISREG(status.st_mode):
        raise SourceError(f"{where} is {_what(status.st_mode)}: an upload reads only regular files")
    if status.st_size > limit:
        raise SourceError(
            f"{where} is {status.st_size} bytes, more than --max-upload-bytes {limit}",
            hint="pass a larger --max-upload-bytes if the file is right",
        )
    return status.st_size


def _read(reader, where: str, limit: int) -> Iterator[bytes]:
    sent = 0
    while True:
        try:
            chunk = reader.read(CHUNK)
        except OSError as err:
            raise SourceError(f"reading {where} failed after {sent} bytes: {err.strerror}") from None
        except ValueError:  # closed meanwhile: a cancelled apply
            raise SourceError(f"reading {where} stopped after {sent} bytes: it was closed") from None
        if not chunk:
            return
        sent += len(chunk)
        if sent > limit:
            raise SourceError(f"{where} grew past --max-upload-bytes {limit} while it was read")
        yield chunk


def _what(mode: int) -> str:
    for test, words in (
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISREG, "a regular file"),
    ):
        if test(mode):
            return words
    return "not a regular file"
