"""A `Snapshot` (reconciler/snapshot.py) as a JSON document and back, for tests that run the planner on
recorded live state with no simulator (tests/test_golden_pure.py).

The document is deterministic (sorted keys, two-space indentation, one trailing newline) and round-trips
exactly: `snapshot_from_json(snapshot_to_json(s)) == s`, and writing what was read gives the same text.
Mappings keyed by tuples are written as lists of objects (JSON keys are strings): `servers` is a list of
`{"region", "ref", "server"}`, sorted by region, then ref. `usage` (region -> image id -> its users as
`{"kind", "id", "name"}`) is written only when some region's usage was read: a plan that deletes nothing
reads none, and its document has no `usage` key (an empty region, `{}`, is one read and used by nobody).
`shared` (region -> the images other projects share with this one, each `{"image", "status"}`: this
project's member status) is written only when it was read: only a root with accept: or reject: rules reads
it, and a region read with nothing shared is `[]`. `artifacts` (an uploaded key -> what plan time knows of its
bytes, `{"where", "found", "size", "note"}`) is written only when some key was probed: only a root with a
file or URL source that has no image yet probes one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import fields
from types import MappingProxyType
from typing import Any

from reconciler.cloud.records import Image, Member, Server
from reconciler.live import Artifact, ImageUser, SharedImage
from reconciler.snapshot import Snapshot

FORMAT = 1  # bump when the document's shape changes; snapshot_from_json refuses any other
IMAGE_FIELDS = tuple(f.name for f in fields(Image))
MEMBER_FIELDS = tuple(f.name for f in fields(Member))
SERVER_FIELDS = tuple(f.name for f in fields(Server))
USER_FIELDS = tuple(f.name for f in fields(ImageUser))
ARTIFACT_FIELDS = tuple(f.name for f in fields(Artifact))


class SnapshotDataError(ValueError):
    """A snapshot document that does not have the shape this codec writes."""


def snapshot_to_json(snapshot: Snapshot) -> str:
    document = {
        "format": FORMAT,
        "project": snapshot.project,
        "regions": list(snapshot.regions),
        "catalog_regions": list(snapshot.catalog_regions),
        "images": {region: [_image_doc(i) for i in images] for region, images in snapshot.images.items()},
        "members": {image_id: [_member_doc(m) for m in found] for image_id, found in snapshot.members.items()},
        "servers": [
            {"region": region, "ref": ref, "server": None if server is None else _server_doc(server)}
            for (region, ref), server in sorted(snapshot.servers.items())
        ],
        "foreign": {image_id: None if i is None else _image_doc(i) for image_id, i in snapshot.foreign.items()},
        "server_time": dict(snapshot.server_time),
    }
    if snapshot.usage:
        document["usage"] = {
            region: {image_id: [_user_doc(u) for u in users] for image_id, users in found.items()}
            for region, found in snapshot.usage.items()
        }
    if snapshot.shared:
        document["shared"] = {region: [_shared_doc(s) for s in found] for region, found in snapshot.shared.items()}
    if snapshot.artifacts:
        document["artifacts"] = {key: _artifact_doc(a) for key, a in snapshot.artifacts.items()}
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"


def snapshot_from_json(text: str, *, where: str = "snapshot.json") -> Snapshot:
    document = json.loads(text)
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise SnapshotDataError(f"{where}: not a snapshot document of format {FORMAT}")
    return Snapshot(
        project=document["project"],
        regions=tuple(document["regions"]),
        catalog_regions=tuple(document["catalog_regions"]),
        images=_frozen(
            {region: tuple(_image(doc, where) for doc in docs) for region, docs in document["images"].items()}
        ),
        members=_frozen(
            {image_id: tuple(_member(doc, where) for doc in docs) for image_id, docs in document["members"].items()}
        ),
        servers=_frozen(
            {
                (row["region"], row["ref"]): None if row["server"] is None else _server(row["server"], where)
                for row in document["servers"]
            }
        ),
        foreign=_frozen(
            {image_id: None if doc is None else _image(doc, where) for image_id, doc in document["foreign"].items()}
        ),
        server_time=_frozen(document["server_time"]),
        usage=_frozen(
            {
                region: _frozen(
                    {image_id: tuple(_user(doc, where) for doc in docs) for image_id, docs in found.items()}
                )
                for region, found in document.get("usage", {}).items()
            }
        ),
        shared=_frozen(
            {region: tuple(_shared(doc, where) for doc in docs) for region, docs in document.get("shared", {}).items()}
        ),
        artifacts=_frozen({key: _artifact(doc, where) for key, doc in document.get("artifacts", {}).items()}),
    )


def _frozen(mapping: Mapping) -> Mapping:
    # Snapshot's own mappings are read-only views (reconciler.snapshot._frozen): so are these.
    return MappingProxyType(dict(mapping))


def _image_doc(image: Image) -> dict[str, Any]:
    doc = {name: getattr(image, name) for name in IMAGE_FIELDS}
    doc["tags"] = list(image.tags)
    doc["properties"] = dict(image.properties)
    return doc


def _member_doc(member: Member) -> dict[str, Any]:
    return {name: getattr(member, name) for name in MEMBER_FIELDS}


def _server_doc(server: Server) -> dict[str, Any]:
    doc = {name: getattr(server, name) for name in SERVER_FIELDS}
    doc["metadata"] = dict(server.metadata)
    return doc


def _user_doc(user: ImageUser) -> dict[str, Any]:
    return {name: list(value) if isinstance(value := getattr(user, name), tuple) else value for name in USER_FIELDS}


def _shared_doc(shared: SharedImage) -> dict[str, Any]:
    return {"image": _image_doc(shared.image), "status": shared.status}


def _artifact_doc(artifact: Artifact) -> dict[str, Any]:
    return {name: getattr(artifact, name) for name in ARTIFACT_FIELDS}


def _fields(doc: Any, names: tuple[str, ...], kind: str, where: str) -> dict[str, Any]:
    """The document's fields, exactly `names`: a missing or unknown one is an error naming it."""
    if not isinstance(doc, dict):
        raise SnapshotDataError(f"{where}: a {kind} is not an object")
    missing, unknown = sorted(set(names) - set(doc)), sorted(set(doc) - set(names))
    if missing or unknown:
        raise SnapshotDataError(f"{where}: {kind} {doc.get('id', '?')}: missing {missing}, unknown {unknown}")
    return doc


def _image(doc: Any, where: str) -> Image:
    values = _fields(doc, IMAGE_FIELDS, "image", where)
    return Image(
        **{**values, "tags": tuple(values["tags"]), "properties": MappingProxyType(dict(values["properties"]))}
    )


def _member(doc: Any, where: str) -> Member:
    return Member(**_fields(doc, MEMBER_FIELDS, "member", where))


def _server(doc: Any, where: str) -> Server:
    values = _fields(doc, SERVER_FIELDS, "server", where)
    return Server(**{**values, "metadata": MappingProxyType(dict(values["metadata"]))})


def _user(doc: Any, where: str) -> ImageUser:
    values = _fields(doc, USER_FIELDS, "image user", where)
    return ImageUser(**{**values, "attached_to": tuple(values["attached_to"])})


def _shared(doc: Any, where: str) -> SharedImage:
    values = _fields(doc, ("image", "status"), "shared image", where)
    return SharedImage(_image(values["image"], where), values["status"])


def _artifact(doc: Any, where: str) -> Artifact:
    return Artifact(**_fields(doc, ARTIFACT_FIELDS, "artifact", where))
