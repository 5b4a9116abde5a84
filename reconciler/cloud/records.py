"""What the cloud client returns: frozen records parsed from the APIs' JSON, with clear errors for
answers that lack what the tool relies on.

Only fields the tool reads are typed; every other key the server returns (NHN adds many server-owned
properties) stays in `Image.properties` untouched, so a diff can look at managed keys only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from reconciler.cloud.errors import CloudResponseError

# Glance's base attributes and links: everything else in an image document is a custom property.
IMAGE_BASE_ATTRIBUTES = frozenset(
    {"id", "name", "status", "visibility", "protected", "owner", "min_disk", "min_ram", "size", "virtual_size",
     "checksum", "os_hash_algo", "os_hash_value", "container_format", "disk_format", "tags", "created_at",
     "updated_at", "self", "file", "schema", "os_hidden", "locations", "direct_url", "stores"}
)  # fmt: skip
IN_PROGRESS_IMAGE = frozenset({"queued", "saving", "uploading", "importing"})
FAILED_IMAGE = frozenset({"killed", "deleted", "pending_delete", "deactivated"})


def _require(doc: Mapping[str, Any], key: str, kind: str, types: type | tuple[type, ...]) -> Any:
    if key not in doc:
        raise CloudResponseError(f"the {kind} in the server's answer has no {key!r} field")
    value = doc[key]
    if not isinstance(value, types):
        raise CloudResponseError(f"the {kind}'s {key!r} field is {type(value).__name__}, not the expected type")
    return value


def _optional(doc: Mapping[str, Any], key: str, types: type | tuple[type, ...], default: Any = None) -> Any:
    value = doc.get(key, default)
    return value if isinstance(value, types) else default


@dataclass(frozen=True, slots=True)
class Image:
    """One image in one region, as Glance shows it."""

    region: str
    id: str
    name: str | None
    status: str
    visibility: str
    protected: bool
    owner: str | None
    min_disk: int
    min_ram: int
    size: int | None
    virtual_size: int | None
    checksum: str | None
    os_hash_value: str | None
    disk_format: str | None
    container_format: str | None
    tags: tuple[str, ...]
    created_at: str | None
    updated_at: str | None
    properties: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    # The algorithm of os_hash_value (Glance's default: sha512); None when the image has no data.
    os_hash_algo: str | None = None

    @classmethod
    def from_api(cls, region: str, doc: Any) -> Image:
        if not isinstance(doc, dict):
            raise CloudResponseError("an image in the server's answer is not a JSON object")
        return cls(
            region=region,
            id=_require(doc, "id", "image", str),
            name=_optional(doc, "name", str),
            status=_require(doc, "status", "image", str),
            visibility=_optional(doc, "visibility", str, "private"),
            protected=_require(doc, "protected", "image", bool),
            owner=_optional(doc, "owner", str),
            min_disk=_optional(doc, "min_disk", int, 0),
            min_ram=_optional(doc, "min_ram", int, 0),
            size=_optional(doc, "size", int),
            virtual_size=_optional(doc, "virtual_size", int),
            checksum=_optional(doc, "checksum", str),
            os_hash_value=_optional(doc, "os_hash_value", str),
            disk_format=_optional(doc, "disk_format", str),
            container_format=_optional(doc, "container_format", str),
            tags=tuple(t for t in _optional(doc, "tags", list, []) if isinstance(t, str)),
            created_at=_optional(doc, "created_at", str),
            updated_at=_optional(doc, "updated_at", str),
            properties=MappingProxyType({k: v for k, v in doc.items() if k not in IMAGE_BASE_ATTRIBUTES}),
            os_hash_algo=_optional(doc, "os_hash_algo", str),
        )

    @property
    def in_progress(self) -> bool:
        return self.status in IN_PROGRESS_IMAGE

    @property
    def failed(self) -> bool:
        return self.status in FAILED_IMAGE


def parse_server_time(text: str | None) -> float | None:
    """Seconds since the epoch from a server's ISO 8601 time (`2026-11-30T05:01:02Z`, Glance's
    `created_at` / `updated_at`) or HTTP date (`Mon, 30 Nov 2026 05:01:02 GMT`); None if unreadable."""
    if not text:
        return None
    try:
        if text[:1].isdigit():
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        else:
            # Imported here: email.utils loads `socket`, and the pure layers (model, planner) must not.
            from email.utils import parsedate_to_datetime

            moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:  # OpenStack's times without a zone are UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


@dataclass(frozen=True, slots=True)
class ImageListing:
    """A list of images with the server's clock at the time of the answer: the `Date` header of the first
    page (seconds since the epoch; None if the server sent none). Coordination between machines (the apply
    lock's leases) is judged on the server's clock, never on a client's."""

    images: tuple[Image, ...]
    server_time: float | None


@dataclass(frozen=True, slots=True)
class Member:
    """A project an image is shared with, and whether it accepted."""

    image_id: str
    member_id: str
    status: str

    @classmethod
    def from_api(cls, doc: Any) -> Member:
        if not isinstance(doc, dict):
            raise CloudResponseError("a member in the server's answer is not a JSON object")
        return cls(
            image_id=_require(doc, "image_id", "member", str),
            member_id=_require(doc, "member_id", "member", str),
            status=_require(doc, "status", "member", str),
        )


@dataclass(frozen=True, slots=True)
class Server:
    """An instance, with what imaging it needs: its flavor's name and its root device (get_server), or
    without them (list_servers: enough to name, match and restart it, not to image it)."""

    region: str
    id: str
    name: str
    status: str
    task_state: str | None
    flavor_id: str
    flavor_name: str | None
    # "volume" (imaged through Cinder's os-volume_upload_image) or "local" (Nova createImage); None for
    # a server from a list, whose root device and flavor name were not read (list_servers).
    root_device: str | None
    root_volume_id: str | None
    metadata: Mapping[str, str]
    # The image it was booted from; None when booted from a volume (Nova shows `image: ""`).
    image_id: str | None = None

    @property
    def os_type(self) -> str | None:
        return self.metadata.get("os_type")

    @property
    def base_image_name(self) -> str | None:
        # NHN copies the base image's name into the instance's metadata (Compute-Instance API sample).
        return self.metadata.get("image_name")


@dataclass(frozen=True, slots=True)
class Volume:
    """A block-storage volume, with the image it was made from (`volume_image_metadata.image_id`), if any."""

    region: str
    id: str
    name: str | None
    status: str | None
    image_id: str | None
    # The servers it is attached to (Cinder's `attachments[].server_id`): a volume-rooted server's root
    # volume names its server.
    attached_to: tuple[str, ...] = ()

    @classmethod
    def from_api(cls, region: str, doc: Any) -> Volume:
        if not isinstance(doc, dict):
            raise CloudResponseError("a volume in the server's answer is not a JSON object")
        meta = doc.get("volume_image_metadata")
        image_id = meta.get("image_id") if isinstance(meta, dict) else None
        attachments = doc.get("attachments")
        listed = attachments if isinstance(attachments, list) else []
        servers = [a.get("server_id") for a in listed if isinstance(a, dict)]
        return cls(
            region=region,
            id=_require(doc, "id", "volume", str),
            name=_optional(doc, "name", str),
            status=_optional(doc, "status", str),
            image_id=image_id if isinstance(image_id, str) else None,
            attached_to=tuple(sorted({s for s in servers if isinstance(s, str) and s})),
        )


@dataclass(frozen=True, slots=True)
class PatchOp:
    """One JSON-patch operation on an image attribute or custom property."""

    op: str  # "add" | "replace" | "remove"
    name: str
    value: Any = None

    def to_api(self) -> dict[str, Any]:
        path = "/" + self.name.replace("~", "~0").replace("/", "~1")
        return (
            {"op": self.op, "path": path} if self.op == "remove" else {"op": self.op, "path": path, "value": self.value}
        )


def set_ops(values: Mapping[str, Any]) -> list[PatchOp]:
    """Operations that set each attribute or property: `replace` for Glance's base attributes (always
    present), `add` for custom properties (`add` overwrites, while `replace` of a missing one is 409)."""
    return [
        PatchOp("replace" if name in IMAGE_BASE_ATTRIBUTES else "add", name, value) for name, value in values.items()
    ]
