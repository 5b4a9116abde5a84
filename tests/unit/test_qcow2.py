"""Generated image content: a valid qcow2, deterministic from (size_mb, content), streamed in chunks."""

from __future__ import annotations

import hashlib
import shutil
import struct
import subprocess

import pytest

from reconciler.simulator.qcow2 import CLUSTER_SIZE, QCOW2_MAGIC, Qcow2Image, Qcow2Layout, generated_digests

MIB = 1024 * 1024


def read_all(image: Qcow2Image) -> bytes:
    return b"".join(image.iter_chunks())


def guest_cluster(data: bytes, index: int) -> bytes:
    """Follow the qcow2 header, L1 and L2 tables to guest cluster `index` (a reader written from the spec)."""
    magic, version = struct.unpack(">4sI", data[:8])
    assert magic == QCOW2_MAGIC and version == 3
    cluster_bits = struct.unpack(">I", data[20:24])[0]
    l1_size, l1_offset = struct.unpack(">IQ", data[36:48])
    cluster = 1 << cluster_bits
    entries_per_l2 = cluster // 8
    l1_index, l2_index = divmod(index, entries_per_l2)
    assert l1_index < l1_size
    l2_offset = struct.unpack(">Q", data[l1_offset + 8 * l1_index : l1_offset + 8 * l1_index + 8])[0] & (
        (1 << 56) - 512
    )
    entry = struct.unpack(">Q", data[l2_offset + 8 * l2_index : l2_offset + 8 * l2_index + 8])[0]
    host = entry & ((1 << 56) - 512)
    return data[host : host + cluster]


def test_header_declares_the_virtual_size():
    data = read_all(Qcow2Image(2, "label"))
    assert data[:4] == QCOW2_MAGIC
    assert struct.unpack(">Q", data[24:32])[0] == 2 * MIB


def test_length_matches_the_layout_and_covers_the_virtual_size():
    image = Qcow2Image(3, "label")
    data = read_all(image)
    assert len(data) == image.file_size
    assert image.file_size > 3 * MIB  # fully allocated: a copy moves about size_mb


def test_same_inputs_same_bytes_and_different_content_different_bytes():
    assert generated_digests(1, "a") == generated_digests(1, "a")
    assert generated_digests(1, "a") != generated_digests(1, "b")
    assert generated_digests(1, "a") != generated_digests(2, "a")
    md5, sha512 = generated_digests(2, "a")
    data = read_all(Qcow2Image(2, "a"))
    assert md5 == hashlib.md5(data).hexdigest() and sha512 == hashlib.sha512(data).hexdigest()


def test_every_guest_cluster_maps_to_its_own_data():
    image = Qcow2Image(2, "label")
    data = read_all(image)
    seen = {guest_cluster(data, i) for i in range(image.layout.data_clusters)}
    assert len(seen) == image.layout.data_clusters  # distinct content per cluster, all mapped


def test_streams_in_cluster_sized_chunks():
    assert {len(chunk) for chunk in Qcow2Image(2, "x").iter_chunks()} == {CLUSTER_SIZE}


def test_layout_grows_refcount_blocks_for_large_images():
    """Past 2 GiB (at 64 KiB clusters and 16-bit refcounts) one refcount block is not enough."""
    layout = Qcow2Layout.for_size(3 * 1024 * MIB)
    assert layout.refcount_blocks == 2
    assert layout.l2_tables == 6


@pytest.mark.skipif(shutil.which("qemu-img") is None, reason="qemu-img (Debian qemu-utils) not installed")
@pytest.mark.parametrize("size_mb", [1, 5, 2100])
def test_qemu_img_accepts_the_image(tmp_path, size_mb):
    """The reference implementation agrees: no errors, fully allocated, right virtual size."""
    path = tmp_path / "image.qcow2"
    with open(path, "wb") as out:
        for chunk in Qcow2Image(size_mb, "label").iter_chunks():
            out.write(chunk)
    check = subprocess.run(["qemu-img", "check", str(path)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "No errors were found" in check.stdout
    info = subprocess.run(["qemu-img", "info", "--output=json", str(path)], capture_output=True, text=True, check=True)
    assert f'"virtual-size": {size_mb * MIB}' in info.stdout


def test_an_image_of_any_virtual_size_stays_small():
    """doctor's scratch images: a valid qcow2 header for 512 KiB of disk, in well under 1 MiB of file."""
    from reconciler.simulator.qcow2 import Qcow2Image

    image = Qcow2Image.of_virtual_size(512 * 1024, "doctor")
    data = b"".join(image.iter_chunks())
    assert data[:4] == b"QFI\xfb" and len(data) == image.file_size < 1024 * 1024
    assert int.from_bytes(data[24:32], "big") == image.virtual_size == 512 * 1024
