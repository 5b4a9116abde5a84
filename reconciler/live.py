"""The live state the planner reads, as frozen data: what the cloud holds for one project, observed before
planning (reconciler/snapshot.py reads it through the cloud client). Pure: no I/O here."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from reconciler.cloud.records import Image, Member, Server

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)


def frozen(mapping: Mapping | None = None) -> Mapping:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the cloud holds, for one project."""

    project: str
    regions: tuple[str, ...]  # the regions read
    catalog_regions: tuple[str, ...]  # every image region of the catalog
    # Every image the project owns, per region read, sorted by id.
    images: Mapping[str, tuple[Image, ...]] = field(default_factory=frozen)
    # Members of the images whose sharing the plan may change, by image id.
    members: Mapping[str, tuple[Member, ...]] = field(default_factory=frozen)
    # The servers the manifests name, by (region, name or id); None when there is none.
    servers: Mapping[tuple[str, str], Server | None] = field(default_factory=frozen)
    # Images named by `source.image` that the project does not own, by id; None when not visible.
    foreign: Mapping[str, Image | None] = field(default_factory=frozen)
    # The server's clock when each region's images were listed (the answer's `Date`, seconds since the
    # epoch; None or absent when unknown): how old a temporary-name image is, judged on the server's
    # clock, never on this machine's (docs/plan-format.md, "Temporary names").
    server_time: Mapping[str, float | None] = field(default_factory=frozen)

    def all_images(self) -> list[Image]:
        return [image for region in self.regions for image in self.images.get(region, ())]
