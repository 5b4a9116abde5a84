"""Deterministic qcow2 images made on demand from `(size_mb, content)` alone.

The simulator never stores the bytes of a seeded image or of an image made from a server: it regenerates
them, streaming, whenever they are read. Two images with the same `(size_mb, content)` therefore have the
same bytes and the same checksums, which is what lets a seed declare a home image and its copies in other
regions that verify against each other.

The file is a valid, fully allocated qcow2 version 3 image (the format NHN Cloud and Glance expect for
`disk_format: qcow2`; Glance 33 refuses bytes that don't match the declared format
section 2). Layout, in 64 KiB clusters:

    header | L1 table | refcount table | refcount blocks | L2 tables | data clusters

Every guest cluster is allocated, so the file is slightly larger than the virtual size and a copy moves
about `size_mb` MiB, as a real full disk image would.
"""

from __future__ import annotations

import hashlib
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

CLUSTER_BITS = 16
CLUSTER_SIZE = 1 << CLUSTER_BITS
REFCOUNT_ORDER = 4  # 16-bit refcounts, qemu's default
REFCOUNT_BYTES = (1 << REFCOUNT_ORDER) // 8
L2_ENTRIES = CLUSTER_SIZE // 8
REFCOUNTS_PER_BLOCK = CLUSTER_SIZE // REFCOUNT_BYTES
HEADER_LENGTH = 104
QCOW2_MAGIC = b"QFI\xfb"
# Bit 63 of an L1/L2 entry: the cluster's refcount is exactly one (QCOW_OFLAG_COPIED).
OFLAG_COPIED = 1 << 63
MIB = 1024 * 1024


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True, slots=True)
class Qcow2Layout:
    """Where each part of a fully allocated qcow2 of `virtual_size` bytes lives, in clusters."""

    virtual_size: int
    data_clusters: int
    l2_tables: int
    l1_clusters: int
    refcount_table_clusters: int
    refcount_blocks: int

    @classmethod
    def for_size(cls, virtual_size: int) -> Qcow2Layout:
        data = _ceil_div(virtual_size, CLUSTER_SIZE)
        l2_tables = _ceil_div(data, L2_ENTRIES)
        l1_clusters = max(1, _ceil_div(l2_tables * 8, CLUSTER_SIZE))
        # The refcount blocks count themselves: grow them until they cover every cluster.
        blocks, table = 1, 1
        while True:
            total = 1 + l1_clusters + table + blocks + l2_tables + data
            need_blocks = _ceil_div(total, REFCOUNTS_PER_BLOCK)
            need_table = _ceil_div(need_blocks * 8, CLUSTER_SIZE)
            if need_blocks <= blocks and need_table <= table:
                break
            blocks, table = max(blocks, need_blocks), max(table, need_table)
        return cls(virtual_size, data, l2_tables, l1_clusters, table, blocks)

    @property
    def l1_start(self) -> int:
        return 1

    @property
    def refcount_table_start(self) -> int:
        return self.l1_start + self.l1_clusters

    @property
    def refcount_blocks_start(self) -> int:
        return self.refcount_table_start + self.refcount_table_clusters

    @property
    def l2_start(self) -> int:
        return self.refcount_blocks_start + self.refcount_blocks

    @property
    def data_start(self) -> int:
        return self.l2_start + self.l2_tables

    @property
    def total_clusters(self) -> int:
        return self.data_start + self.data_clusters

    @property
    def file_size(self) -> int:
        return self.total_clusters * CLUSTER_SIZE


class Qcow2Image:
    """The bytes of one generated image. `iter_chunks()` streams them; nothing is held in memory."""

    def __init__(self, size_mb: int, content: str) -> None:
        if size_mb < 1:
            raise ValueError("size_mb must be at least 1")
        self.size_mb = size_mb
        self.content = content
        self.layout = Qcow2Layout.for_size(size_mb * MIB)

    @classmethod
    def of_virtual_size(cls, virtual_size: int, content: str) -> Qcow2Image:
        """An image of any virtual size, below 1 MiB too (doctor's scratch images must stay under 1 MiB
        of file to be recognisable as its own later). `size_mb` then says nothing of it."""
        image = cls(1, content)
        image.size_mb = 0
        image.layout = Qcow2Layout.for_size(virtual_size)
        return image

    @property
    def virtual_size(self) -> int:
        return self.layout.virtual_size

    @property
    def file_size(self) -> int:
        return self.layout.file_size

    def iter_chunks(self) -> Iterator[bytes]:
        """Yield the file one cluster at a time, in order."""
        yield self._header()
        yield from self._l1_table()
        yield from self._refcount_table()
        yield from self._refcount_blocks()
        yield from self._l2_tables()
        yield from self._data_clusters()

    def _header(self) -> bytes:
        lay = self.layout
        header = struct.pack(
            ">4sIQIIQIIQQIIQQQQII",
            QCOW2_MAGIC,
            3,  # version
            0,  # backing_file_offset: none (Glance refuses images with backing files)
            0,  # backing_file_size
            CLUSTER_BITS,
            lay.virtual_size,
            0,  # crypt_method: none
            lay.l2_tables,  # l1_size: number of L1 entries
            lay.l1_start * CLUSTER_SIZE,
            lay.refcount_table_start * CLUSTER_SIZE,
            lay.refcount_table_clusters,
            0,  # nb_snapshots
            0,  # snapshots_offset
            0,  # incompatible_features
            0,  # compatible_features
            0,  # autoclear_features
            REFCOUNT_ORDER,
            HEADER_LENGTH,
        )
        assert len(header) == HEADER_LENGTH
        # An end-of-extensions marker (type 0, length 0) closes the header.
        return (header + b"\0" * 8).ljust(CLUSTER_SIZE, b"\0")

    def _table(self, first: int, count: int, entries_per_cluster: int, clusters: int, value) -> Iterator[bytes]:
        """`clusters` clusters of big-endian u64 entries; entry i (< count) is `value(first + i)`."""
        for c in range(clusters):
            lo = c * entries_per_cluster
            hi = min(count, lo + entries_per_cluster)
            entries = [value(first + i) for i in range(lo, hi)] if hi > lo else []
            yield struct.pack(f">{len(entries)}Q", *entries).ljust(CLUSTER_SIZE, b"\0")

    def _l1_table(self) -> Iterator[bytes]:
        lay = self.layout
        yield from self._table(
            0,
            lay.l2_tables,
            L2_ENTRIES,
            lay.l1_clusters,
            lambda i: ((lay.l2_start + i) * CLUSTER_SIZE) | OFLAG_COPIED,
        )

    def _refcount_table(self) -> Iterator[bytes]:
        lay = self.layout
        yield from self._table(
            0,
            lay.refcount_blocks,
            L2_ENTRIES,
            lay.refcount_table_clusters,
            lambda i: (lay.refcount_blocks_start + i) * CLUSTER_SIZE,
        )

    def _refcount_blocks(self) -> Iterator[bytes]:
        total = self.layout.total_clusters
        one = struct.pack(">H", 1)
        for block in range(self.layout.refcount_blocks):
            used = max(0, min(REFCOUNTS_PER_BLOCK, total - block * REFCOUNTS_PER_BLOCK))
            yield (one * used).ljust(CLUSTER_SIZE, b"\0")

    def _l2_tables(self) -> Iterator[bytes]:
        lay = self.layout
        for table in range(lay.l2_tables):
            first = table * L2_ENTRIES
            count = min(L2_ENTRIES, lay.data_clusters - first)
            yield from self._table(
                first,
                count,
                L2_ENTRIES,
                1,
                lambda i: ((lay.data_start + i) * CLUSTER_SIZE) | OFLAG_COPIED,
            )

    def _data_clusters(self) -> Iterator[bytes]:
        # Cheap, deterministic, label-dependent bytes: a 64-byte digest per cluster, repeated.
        label = self.content.encode("utf-8")
        for i in range(self.layout.data_clusters):
            digest = hashlib.blake2b(label + i.to_bytes(8, "big"), digest_size=64).digest()
            yield digest * (CLUSTER_SIZE // len(digest))


def generated_image(size_mb: int, content: str) -> Qcow2Image:
    return Qcow2Image(size_mb, content)


@lru_cache(maxsize=1024)
def generated_digests(size_mb: int, content: str) -> tuple[str, str]:
    """(md5, sha512) hex digests of a generated image, as Glance's `checksum` and `os_hash_value`.

    Cached: a seed with a home image and its copies hashes their shared content once.
    """
    md5, sha512 = hashlib.md5(usedforsecurity=False), hashlib.sha512()
    for chunk in Qcow2Image(size_mb, content).iter_chunks():
        md5.update(chunk)
        sha512.update(chunk)
    return md5.hexdigest(), sha512.hexdigest()


class BackgroundDigests:
    """Computes generated images' digests off the request path: imaging a 20 GiB server must answer at
    once (as Nova does) and must not hold the state lock through a minute of hashing."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._results: dict[tuple[int, str], tuple[str, str] | None] = {}

    def result(self, size_mb: int, content: str) -> tuple[str, str] | None:
        """The digests when computed; otherwise None, and the computation runs in the background."""
        key = (size_mb, content)
        with self._lock:
            if key in self._results:
                return self._results[key]
            self._results[key] = None
        threading.Thread(target=self._compute, args=key, name="simulator-digests", daemon=True).start()
        return None

    def _compute(self, size_mb: int, content: str) -> None:
        digests = generated_digests(size_mb, content)
        with self._lock:
            self._results[(size_mb, content)] = digests


background_digests = BackgroundDigests()
