"""The live state the planner reads, as frozen data: what the cloud holds for one project, observed before
planning (reconciler/snapshot.py reads it through the cloud client). Pure: no I/O here."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from reconciler.cloud.records import Image, Member, Server

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)


def frozen(mapping: Mapping | None = None) -> Mapping:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True, slots=True)
class ImageUser:
    """Something of the project that uses an image: a server booted from it (Nova's `image.id`), or a
    volume made from it, attached or not (Cinder's `volume_image_metadata.image_id`)."""

    kind: str  # "server" or "volume"
    id: str
    name: str | None
    # A volume's servers, by name (else id): a volume-rooted server uses its image through its root volume.
    attached_to: tuple[str, ...] = ()

    def describe(self) -> str:
        said = f"{self.kind} {self.name} ({self.id})" if self.name else f"{self.kind} {self.id}"
        if self.attached_to:
            said += f", attached to server {', '.join(self.attached_to)}"
        return said


# The users a refusal, a warning or an error names; the rest are counted.
NAMED_USERS = 5


def described(users: Iterable[ImageUser]) -> str:
    """Up to NAMED_USERS users by kind, name and id, and how many there are."""
    listed = list(users)
    named = ", ".join(user.describe() for user in listed[:NAMED_USERS])
    more = len(listed) - NAMED_USERS
    return f"{named} and {more} more ({len(listed)} in all)" if more > 0 else named


# region -> image id -> the project's servers and volumes that use it, sorted.
Usage = Mapping[str, Mapping[str, tuple[ImageUser, ...]]]


@dataclass(frozen=True, slots=True)
class SharedImage:
    """An image another project shares with this one, and this project's member status for it."""

    image: Image
    status: str  # "pending", "accepted" or "rejected"


@dataclass(frozen=True, slots=True)
class Artifact:
    """What plan time knows of an upload's bytes (a `source.file` or `source.url`): display data and
    `source_not_built`, never a reason to refuse. `found` is False only for a file that is not there; a
    URL is not contacted without --fetch-sources, so its size is then unknown."""

    where: str  # the file as found (relative to the root or an --artifacts directory), or the URL
    found: bool = True
    size: int | None = None  # bytes, when known
    note: str | None = None  # why it was not found, or why its size is unknown


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
    # Who uses each image, for the regions read for it only (a region absent has no usage data): read
    # where the plan deletes something (reconciler/planning.py), so that a plan without deletes reads no
    # server or volume list for it.
    usage: Usage = field(default_factory=frozen)
    # The images other projects share with this one, per region read, sorted by id: read only when the root
    # has accept: or reject: rules (a root without rules makes no such request).
    shared: Mapping[str, tuple[SharedImage, ...]] = field(default_factory=frozen)
    # Each uploaded key's bytes as plan time sees them, by key (keys whose source is a file or a URL):
    # local look-ups, and a HEAD only with --fetch-sources.
    artifacts: Mapping[str, Artifact] = field(default_factory=frozen)

    def all_images(self) -> list[Image]:
        return [image for region in self.regions for image in self.images.get(region, ())]
