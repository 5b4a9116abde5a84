"""Building blocks of the planner's property tests: live images as the cloud client would return them,
without a cloud (tests/unit/test_release_properties.py, test_planner_never_crashes.py)."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from reconciler.cloud.records import Image
from reconciler.live import Snapshot


def image_record(
    project: str, image_id: str, region: str, name: str, status: str, protected: bool, props: dict[str, str]
) -> Image:
    """A shared qcow2 image of `project` with os_type linux and `props`: the fields the planner reads."""
    return Image(
        region=region, id=image_id, name=name, status=status, visibility="shared", protected=protected,
        owner=project, min_disk=0, min_ram=0, size=1024, virtual_size=1024, checksum="c" * 32, os_hash_value=None,
        disk_format="qcow2", container_format="bare", tags=(), created_at="2026-11-26T00:00:00Z", updated_at=None,
        properties=MappingProxyType({"os_type": "linux", **props}),
    )  # fmt: skip


def two_region_snapshot(project: str, images: tuple[Image, ...], **fields: Any) -> Snapshot:
    """A snapshot of KR1 and JP1 holding `images` (each listed in its region, by id, as the client sorts
    them); `fields` fills the rest (members, usage, artifacts, server_time...), read-only like the real one."""
    by_region: dict[str, list[Image]] = {"JP1": [], "KR1": []}
    for each in images:
        by_region[each.region].append(each)
    return Snapshot(
        project=project,
        regions=("JP1", "KR1"),
        catalog_regions=("JP1", "KR1"),
        images=MappingProxyType({r: tuple(sorted(v, key=lambda i: i.id)) for r, v in by_region.items()}),
        **{name: MappingProxyType(value) for name, value in fields.items()},
    )
