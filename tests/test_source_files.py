"""A `source.file` is found under the root, then under each --artifacts directory, and read only when it is
a regular file reached without any symbolic link, at most --max-upload-bytes (reconciler.sources.files)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reconciler.desired import Source
from reconciler.sources.access import SourceAccess
from reconciler.sources.reading import CHUNK, SourceError, open_source, probe

DIGEST = "0" * 64


def file_source(path: str) -> Source:
    return Source(file=path, sha256=DIGEST, disk_format="qcow2")


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def read_all(source: Source, root: Path, access: SourceAccess) -> tuple[str, int | None, bytes]:
    with open_source(source, root, access) as opened:
        return opened.where, opened.size, b"".join(opened.chunks())


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "root"
    path.mkdir()
    return path


def test_a_file_under_the_root_is_read_in_chunks(root):
    data = os.urandom(CHUNK * 2 + 5)
    write(root / "build" / "x.qcow2", data)
    with open_source(file_source("build/x.qcow2"), root, SourceAccess()) as opened:
        assert (opened.where, opened.size) == ("build/x.qcow2", len(data))
        chunks = list(opened.chunks())
    assert [len(chunk) for chunk in chunks] == [CHUNK, CHUNK, 5]
    assert b"".join(chunks) == data


def test_the_root_comes_first_then_each_artifacts_directory_in_order(tmp_path, root):
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    write(second / "build" / "x.qcow2", b"from b")
    access = SourceAccess(artifacts=(first, second))
    assert read_all(file_source("build/x.qcow2"), root, access) == (f"{second}/build/x.qcow2", 6, b"from b")
    write(root / "build" / "x.qcow2", b"from the root")
    assert read_all(file_source("build/x.qcow2"), root, access)[2] == b"from the root"


def test_a_missing_file_names_every_place_looked(tmp_path, root):
    access = SourceAccess(artifacts=(tmp_path / "a", tmp_path / "b"))
    with pytest.raises(SourceError) as caught:
        read_all(file_source("build/x.qcow2"), root, access)
    assert caught.value.message == (
        f"build/x.qcow2 is not in the root ({root}), nor in --artifacts {tmp_path / 'a'}, {tmp_path / 'b'}"
    )
    assert caught.value.exit_code == 1


def test_a_symlinked_file_is_refused(tmp_path, root):
    write(tmp_path / "secret", b"credentials")
    (root / "build").mkdir()
    (root / "build" / "x.qcow2").symlink_to(tmp_path / "secret")
    with pytest.raises(SourceError, match=r"^build/x\.qcow2 is a symbolic link"):
        read_all(file_source("build/x.qcow2"), root, SourceAccess())


def test_a_symlinked_directory_on_the_way_is_refused(tmp_path, root):
    write(tmp_path / "elsewhere" / "x.qcow2", b"bytes")
    (root / "build").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(SourceError, match=r"^build \(in build/x\.qcow2\) is a symbolic link"):
        read_all(file_source("build/x.qcow2"), root, SourceAccess())


def test_a_fifo_is_refused_without_waiting_for_a_writer(root):
    os.mkfifo(root / "x.qcow2")
    with pytest.raises(SourceError, match=r"^x\.qcow2 is a FIFO"):
        read_all(file_source("x.qcow2"), root, SourceAccess())


def test_a_directory_and_a_device_are_refused(tmp_path, root):
    (root / "x.qcow2").mkdir()
    with pytest.raises(SourceError, match=r"^x\.qcow2 is a directory"):
        read_all(file_source("x.qcow2"), root, SourceAccess())
    access = SourceAccess(artifacts=(Path("/dev"),))
    with pytest.raises(SourceError, match=r"^/dev/null is a character device"):
        read_all(file_source("null"), tmp_path / "empty", access)


def test_a_file_over_max_upload_bytes_is_refused_before_reading(root):
    write(root / "x.qcow2", b"12345")
    with pytest.raises(SourceError, match=r"x\.qcow2 is 5 bytes, more than --max-upload-bytes 4"):
        read_all(file_source("x.qcow2"), root, SourceAccess(max_upload_bytes=4))
    assert read_all(file_source("x.qcow2"), root, SourceAccess(max_upload_bytes=5))[2] == b"12345"


@pytest.mark.parametrize("path", ["../x.qcow2", "build/../../x.qcow2", "/etc/passwd", ""])
def test_a_path_leaving_the_directory_is_refused(tmp_path, root, path):
    write(tmp_path / "x.qcow2", b"outside")
    with pytest.raises(SourceError, match="must be a relative path without '..'"):
        read_all(file_source(path), root, SourceAccess())
    assert probe(file_source(path), root, SourceAccess()).found is False


def test_probe_finds_a_file_and_its_size(tmp_path, root):
    write(tmp_path / "a" / "x.qcow2", b"1234567")
    artifact = probe(file_source("x.qcow2"), root, SourceAccess(artifacts=(tmp_path / "a",)))
    assert (artifact.where, artifact.found, artifact.size, artifact.note) == (f"{tmp_path}/a/x.qcow2", True, 7, None)


def test_probe_of_a_missing_file_says_where_it_looked_and_never_raises(tmp_path, root):
    artifact = probe(file_source("build/x.qcow2"), root, SourceAccess(artifacts=(tmp_path / "a",)))
    assert (artifact.where, artifact.found, artifact.size) == ("build/x.qcow2", False, None)
    assert artifact.note == f"build/x.qcow2 is not in the root ({root}), nor in --artifacts {tmp_path}/a"


def test_probe_of_a_link_finds_it_and_says_apply_refuses_it(tmp_path, root):
    write(tmp_path / "secret", b"credentials")
    (root / "x.qcow2").symlink_to(tmp_path / "secret")
    artifact = probe(file_source("x.qcow2"), root, SourceAccess())
    assert artifact.found and artifact.size is None
    assert artifact.note == "x.qcow2 is a symbolic link: an upload follows no links (apply will refuse it)"


def test_probe_judges_a_linked_directory_as_apply_does(tmp_path, root):
    """A link on a parent component: plan used to find the file through it, and apply refused it."""
    write(tmp_path / "elsewhere" / "x.qcow2", b"1234567")
    (root / "sub").symlink_to(tmp_path / "elsewhere")
    artifact = probe(file_source("sub/x.qcow2"), root, SourceAccess())
    assert artifact.found and artifact.size is None
    assert artifact.note == "sub (in sub/x.qcow2) is a symbolic link: an upload follows no links (apply will refuse it)"


def test_closing_the_source_closes_the_file(root):
    write(root / "x.qcow2", b"x" * (CHUNK + 1))
    with open_source(file_source("x.qcow2"), root, SourceAccess()) as opened:
        chunks = opened.chunks()
        next(chunks)
    with pytest.raises(SourceError, match=r"^reading x\.qcow2 stopped after 1048576 bytes: it was closed"):
        next(chunks)
