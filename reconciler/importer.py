"""`reconciler import`: write manifests for a project's unmanaged images, so that adopting the tool on
an existing project is one command and the first plan after it only adopts.

For each unmanaged image in the region (optionally only names starting with a prefix): a key derived
from its name, `source.image` set to it, its current protected / min_disk / min_ram / description /
download flag / share list and custom properties recorded as they are, and its copies recognised in the
other regions (same name, same checksum, also unmanaged) as `copies: [{region, image}]`. Images under a
temporary name (`<name>~rc-<token>`: some set's create, interrupted or running) are never written.

Import never writes what validation refuses: an image whose name holds a character that does not show
(escape.hidden: control and format characters, line breaks, the Hangul fillers...), contains `~rc-` or
is too long is left out with a note; a description or a custom property that cannot be declared is left
out of the image's declaration (absent, it is left alone) with a note.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from reconciler import markers
from reconciler.cloud.client import CloudClient
from reconciler.cloud.records import Image
from reconciler.desired import DesiredState
from reconciler.errors import UsageError
from reconciler.lock_claims import is_bookkeeping
from reconciler.render import escape

KEY_SANITISER = re.compile(r"[^A-Za-z0-9._-]+")
# The manifest schema's longest name, description, property name and value.
MAX_TEXT = 255


def key_for(name: str | None, image_id: str, taken: set[str]) -> str:
    """A valid, unused key from an image's name (letters, digits, . _ -), else from its id."""
    base = KEY_SANITISER.sub("-", name or "").strip(".-_")[:120] or f"image-{image_id[:8]}"
    if not base[0].isalnum():
        base = f"image-{base}"
    key, n = base, 2
    while key in taken:
        key, n = f"{base}-{n}", n + 1
    taken.add(key)
    return key


def _managed(image: Image) -> bool:
    return isinstance(image.properties.get(markers.SET), str) or is_bookkeeping(image.properties)


def _properties(image: Image) -> dict[str, str]:
    return {
        name: value
        for name, value in sorted(image.properties.items())
        if isinstance(value, str) and name not in markers.FIELD_FOR_PROPERTY and markers.reserved_property(name) is None
    }


def _same_declared_fields(copy: Image, home: Image) -> bool:
    """A copy carries the home image's declared fields: only then is adopting it a no-op."""
    return (
        bool(home.checksum)
        and (copy.min_disk, copy.min_ram) == (home.min_disk, home.min_ram)
        and copy.properties.get("description") == home.properties.get("description")
        and _properties(copy) == _properties(home)
    )


def _hidden_in(value: str) -> str | None:
    """The characters of `value` that do not show, escaped (the first three), or None when every one shows."""
    hidden = list(dict.fromkeys(c for c in value if escape.hidden(c)))
    if not hidden:
        return None
    more = f" and {len(hidden) - 3} more" if len(hidden) > 3 else ""
    return ", ".join(escape.text(c) for c in hidden[:3]) + more


def _undeclarable(value: str) -> str | None:
    """Why a manifest cannot hold `value` as a name, a description or a property (validation refuses it), or
    None when it can."""
    hidden = _hidden_in(value)
    if hidden is not None:
        return f"holds characters that do not show ({hidden}), which a manifest may not hold"
    if len(value) > MAX_TEXT:
        return f"is {len(value)} characters long, more than a manifest allows ({MAX_TEXT})"
    return None


def _unwritable_name(name: str | None) -> str | None:
    """Why import cannot declare an image under this name, or None when it can. (No name at all is fine:
    the declaration then has none.)"""
    if not name:
        return None
    why = _undeclarable(name)
    if why is None and markers.TOKEN_SEPARATOR in name:
        why = f"contains {markers.TOKEN_SEPARATOR}, which marks the tool's temporary names"
    return f"its name {why}; rename the image, then import again" if why else None


def _members(client: CloudClient, image: Image) -> list[str]:
    if image.visibility != "shared":
        return []
    return sorted(m.member_id for m in client.list_members(image.region, image.id))


def _project_members(members: list[str]) -> list[str]:
    """The members a manifest can declare: project ids. Any other was added by hand and is left alone."""
    return sorted(m for m in members if markers.PROJECT_ID.fullmatch(m))


def _declaration(image: Image, members: list[str], key: str, notes: list[str]) -> dict[str, Any]:
    """The image as a manifest declares it; what cannot be declared is left out, with a note."""
    spec: dict[str, Any] = {}
    if image.name:
        spec["name"] = image.name
    description = image.properties.get("description")
    if isinstance(description, str):
        why = _undeclarable(description)
        if why is None:
            spec["description"] = description
        else:
            notes.append(f"{key}: description left out (it is left alone): it {why}")
    spec["source"] = {"image": image.id}
    spec["protected"] = image.protected
    spec["min_disk"] = image.min_disk
    spec["min_ram"] = image.min_ram
    download = image.properties.get(markers.DOWNLOAD_FLAG)
    if isinstance(download, str) and download.lower() in ("true", "false"):
        spec["download"] = download.lower() == "true"
    properties = _declarable_properties(_properties(image), key, notes)
    if properties:
        spec["properties"] = properties
    if image.visibility == "shared":
        # A member that is no project id was added by hand: the plan leaves it alone, and no manifest can
        # declare it.
        spec["share"] = _project_members(members)
        odd = len(members) - len(spec["share"])
        if odd:
            notes.append(f"{key}: {odd} member(s) that are no project id left out of share (left alone)")
    return spec


def _declarable_properties(properties: dict[str, str], key: str, notes: list[str]) -> dict[str, str]:
    """The custom properties a manifest can hold; each other one is left out (left alone), with a note."""
    kept = {}
    for name, value in properties.items():
        name_why, value_why = _undeclarable(name), _undeclarable(value)
        if name_why is None and value_why is None:
            kept[name] = value
        elif name_why is not None:
            notes.append(f"{key}: a property left out (it is left alone): its name {name_why}")
        else:
            notes.append(f"{key}: the property {name} left out (it is left alone): its value {value_why}")
    return kept


def build_manifest(
    client: CloudClient, desired: DesiredState, region: str, name_prefix: str | None
) -> tuple[dict[str, Any], list[str]]:
    """The manifest document for `region`, and notes about what was left out."""
    regions = client.image_regions()
    if region not in regions:
        raise UsageError(f"region {region} is not in the service catalog (it has: {', '.join(regions)})")
    project = client.project_id
    listed = {r: [i for i in client.list_images(r, owner=project) if not _managed(i)] for r in regions}
    # An image under a temporary name is an interrupted or running create of some set: never declared,
    # neither as an image nor as a copy (the plan of its set finishes or deletes it).
    by_region = {r: [i for i in found if markers.parse_token(i.name) is None] for r, found in listed.items()}
    taken = {spec.key for spec in desired.images}
    referenced = {spec.source.image for spec in desired.images} | {c.image for s in desired.images for c in s.copies}
    images: dict[str, Any] = {}
    notes: list[str] = [
        f"left out {i.name} ({i.id}): a temporary name (an interrupted or running create)"
        for i in sorted(listed[region], key=lambda i: (i.name or "", i.id))
        if markers.parse_token(i.name) is not None and (not name_prefix or (i.name or "").startswith(name_prefix))
    ]
    used_as_copy: set[str] = set()
    home_images = sorted(by_region[region], key=lambda i: (i.name or "", i.id))
    for image in home_images:
        if image.id in referenced or image.id in used_as_copy:
            continue
        if name_prefix and not (image.name or "").startswith(name_prefix):
            continue
        why = _left_out(image)
        if why is not None:
            notes.append(f"left out {image.name} ({image.id}): {why}")
            continue
        members = _members(client, image)
        key = key_for(image.name, image.id, taken)
        spec = _declaration(image, members, key, notes)
        if region != desired.root.default_region:
            spec = {"region": region, **spec}
        copies = _copies(image, sorted(r for r in regions if r != region), by_region, used_as_copy)
        if copies:
            spec["copies"] = copies
            twins = [next(i for i in by_region[c["region"]] if i.id == c["image"]) for c in copies]
            if _shared_differently(client, image, members, twins):
                # share applies to the home image and every copy: with different members per region,
                # declaring one list would change some. Leave sharing alone (share absent).
                spec.pop("share", None)
                notes.append(f"{key}: share left out, its copies are shared differently; members are left alone")
        images[key] = spec
    return {"version": 1, "images": images}, notes


def _left_out(image: Image) -> str | None:
    """Why a home image is not declared: not active, public, no os_type, or a name no manifest can hold."""
    if image.status != "active":
        return image.status
    if image.visibility == "public":
        return "public"
    if not image.properties.get("os_type"):
        return "no os_type"
    return _unwritable_name(image.name)


def _copies(
    image: Image, other_regions: list[str], by_region: dict[str, list[Image]], used_as_copy: set[str]
) -> list[dict[str, Any]]:
    """The image's copies as declared: in each other region, the first image not yet taken as a copy with
    its name, checksum and declared fields (taken now, in `used_as_copy`)."""
    copies = []
    for other in other_regions:
        twin = next(
            (
                i
                for i in by_region[other]
                if i.name == image.name
                and i.checksum == image.checksum
                and i.id not in used_as_copy
                and _same_declared_fields(i, image)
            ),
            None,
        )
        if twin is None:
            continue
        used_as_copy.add(twin.id)
        copy: dict[str, Any] = {"region": other, "image": twin.id}
        if twin.protected != image.protected:
            copy["protected"] = twin.protected
        copies.append(copy)
    return copies


def _shared_differently(client: CloudClient, image: Image, members: list[str], twins: list[Image]) -> bool:
    """Whether some copy has other project members or another visibility than the home image."""
    shared = _project_members(members)
    return any(
        _project_members(_members(client, twin)) != shared or twin.visibility != image.visibility for twin in twins
    )


# These images existed before the tool: deleting a key from this file deletes its images. The way out
# that keeps them is written where the user will look, the file itself.
BACK_OUT = """\
#
# These images existed before reconciler managed them. Deleting a key from this file (or the file) DELETES
# its images (all but protected ones). To stop managing an image and keep it as it is, move its key to removed:
#
#   removed:
#     - key: <the key>
#       destroy: false     # keep the image; only the reconciler_* markers are taken off
#
# and apply. To back out of the tool altogether, do that for every key, apply, then delete the root.
"""


def write_manifest(path: Path, document: Mapping[str, Any], region: str) -> None:
    if path.exists():
        raise UsageError(f"{path} already exists: import never overwrites a manifest", hint="move it aside first")
    header = (
        "# yaml-language-server: $schema=https://reconciler.invalid/schemas/manifest.schema.json\n"
        f"# Written by `reconciler import --region {region}`: the images as they are. The first plan only adopts.\n"
        f"{BACK_OUT}"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + yaml.safe_dump(dict(document), sort_keys=False, allow_unicode=True), encoding="utf-8")
