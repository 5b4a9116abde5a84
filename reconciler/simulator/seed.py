"""Seed files: validate them (with file:line:column) and turn them into a simulator state document.

The format is in docs/simulator.md, with its JSON Schema in `schemas/seed.schema.json`. The schema checks
shapes; this module adds the cross-references a schema can't (a server's project must be seeded, members
only on shared images, unique ids and names) and fills the defaults.
"""

from __future__ import annotations

import difflib
import math
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema

from reconciler.errors import SeedError
from reconciler.schemas import load_schema
from reconciler.simulator.behaviour import Behaviour, describe_error
from reconciler.simulator.compute import attach, next_free_device
from reconciler.simulator.image_records import new_image_fields, new_record
from reconciler.simulator.qcow2 import Qcow2Image, generated_digests
from reconciler.simulator.routes import check_fault_routes
from reconciler.simulator.state import StateStore, empty_state, locked, utc_now, write_state_file
from reconciler.simulator.volumes import volume_record
from reconciler.yaml_source import DocPath, LocatedDocument, Problem, format_path, load_located_file

# NHN: u2 and GPU flavors have local disks; every other type boots from a
# volume.
LOCAL_DISK_FLAVOR = re.compile(r"^(u2|g\d*)\.")
FLAVOR_SHAPE = re.compile(r"c(\d+)m(\d+)")
LOCAL_FLAVOR_DISK_GB = 20
SEED_MAX_BYTES = 64 * 1024 * 1024
SEED_MAX_VALUES = 20_000_000


def load_seed(path: Path) -> dict[str, Any]:
    """Read and validate a seed file; raise SeedError listing every problem with its location."""
    # Seeds may describe large inventories (benchmarks): a larger limit than a manifest's.
    doc = load_located_file(path, max_bytes=SEED_MAX_BYTES, max_values=SEED_MAX_VALUES)
    problems = list(doc.problems)
    if not problems:
        if not isinstance(doc.data, dict):
            problems.append(Problem(doc.location_of(()), "a seed must be a mapping with regions and projects"))
        else:
            problems.extend(_schema_problems(doc))
            if not problems:
                problems.extend(_reference_problems(doc))
    if problems:
        problems.sort(key=lambda p: (p.location.line, p.location.column))
        raise SeedError("invalid seed:\n  " + "\n  ".join(str(p) for p in problems))
    return doc.data


def _schema_problems(doc: LocatedDocument) -> list[Problem]:
    validator = jsonschema.Draft202012Validator(load_schema("seed"))
    problems = []
    for error in validator.iter_errors(doc.data):
        path: DocPath = tuple(error.absolute_path)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            # One problem per unknown key, at the key, with a suggestion for a near miss.
            allowed = list(error.schema.get("properties", {}))
            for key in sorted(set(error.instance) - set(allowed), key=str):
                message = f"{format_path(path + (key,))}: unknown key"
                close = difflib.get_close_matches(str(key), allowed, n=1)
                if close:
                    message += f" (did you mean {close[0]!r}?)"
                problems.append(Problem(doc.key_location_of(path + (key,)), message))
            continue
        location = doc.location_of(path)
        if list(error.absolute_schema_path)[-2:] == ["propertyNames", "not"]:
            path = path + (error.instance,)  # point at the offending key itself
            location = doc.key_location_of(path)
        where = format_path(path) or "seed"
        problems.append(Problem(location, f"{where}: {_schema_message(error, path)}"))
    return problems


def _schema_message(error: jsonschema.ValidationError, path: DocPath) -> str:
    if "users" in path:
        # Never quote a user's values: one of them is an API password.
        if error.validator == "type":
            return f"must be of type {error.validator_value}"
        if error.validator in ("required", "minItems"):
            return error.message
        return f"is invalid ({error.validator})"
    if list(error.absolute_schema_path)[-2:] == ["propertyNames", "not"]:
        return "an image attribute or reserved name, not a custom property (set attributes as keys of the image)"
    if error.validator == "pattern":
        return f"{error.instance!r} does not match the expected form {error.validator_value!r}"
    return describe_error(error)


def _reference_problems(doc: LocatedDocument) -> list[Problem]:
    seed = doc.data
    problems: list[Problem] = []

    def report(path: DocPath, message: str) -> None:
        problems.append(Problem(doc.location_of(path), f"{format_path(path)}: {message}"))

    _project_problems(seed, report)
    _placement_problems(seed, report)
    _member_problems(seed, report)
    if not problems:  # image and server references assume placements and ids are sound
        _server_image_problems(seed, report)
        _volume_problems(seed, report)
    try:
        check_fault_routes(Behaviour.from_dict(seed.get("behaviour")))
    except ValueError as err:
        report(("behaviour", "faults"), str(err))
    return problems


_Report = Callable[[DocPath, str], None]


def _project_problems(seed: dict[str, Any], report: _Report) -> None:
    seen: set[str] = set()
    for i, project in enumerate(seed["projects"]):
        if project["id"] in seen:
            report(("projects", i, "id"), "duplicate project id")
        seen.add(project["id"])


def _placement_problems(seed: dict[str, Any], report: _Report) -> None:
    """Each server, image and volume names a seeded project and region, and no two share an id. Two
    servers may share a name, as on Nova: the reconciler must cope with the ambiguity."""
    regions = set(seed["regions"])
    projects = {p["id"] for p in seed["projects"]}
    ids: set[str] = set()
    for section in ("servers", "images", "volumes"):
        for i, item in enumerate(seed.get(section) or []):
            if item["project"] not in projects:
                report((section, i, "project"), f"project {item['project']} is not in projects")
            if item["region"] not in regions:
                report((section, i, "region"), f"region {item['region']} is not in regions")
            if "id" in item:
                if item["id"] in ids:
                    report((section, i, "id"), "duplicate id")
                ids.add(item["id"])


def _member_problems(seed: dict[str, Any], report: _Report) -> None:
    for i, image in enumerate(seed.get("images") or []):
        if image.get("members") and image.get("visibility", "private") != "shared":
            report(("images", i, "members"), "only images with visibility: shared have members")
        member_ids = [m["project"] for m in image.get("members") or []]
        if len(member_ids) != len(set(member_ids)):
            report(("images", i, "members"), "a project is listed twice")
        if image["project"] in member_ids:
            report(("images", i, "members"), "the owner cannot be a member of its own image")


def _server_image_problems(seed: dict[str, Any], report: _Report) -> None:
    """A server's `image` names one image its project may boot from; `image: ""` (a volume root) cannot go
    with `root: local`; `image` and `base_image` together must name the same image."""
    for i, raw in enumerate(seed.get("servers") or []):
        ref = raw.get("image")
        if ref is None:
            continue
        if ref == "":
            if raw.get("root") == "local":
                report(
                    ("servers", i, "image"), f'server {raw["name"]!r}: image "" means a volume root, not root: local'
                )
            continue
        try:
            image_id = resolve_image(seed, raw["project"], raw["region"], ref)
        except ValueError as err:
            report(("servers", i, "image"), f"server {raw['name']!r}: {err}")
            continue
        name = _image_name(seed, image_id)
        if raw.get("base_image") and raw["base_image"] != name:
            report(
                ("servers", i, "base_image"),
                f"server {raw['name']!r}: base_image {raw['base_image']!r} is not the name of its image {ref!r} "
                f"({name!r}); give one of them, or both naming the same image",
            )


def _volume_problems(seed: dict[str, Any], report: _Report) -> None:
    """A volume's `image` is one its project may use; `attached_to` is one server of its project and region."""
    for i, raw in enumerate(seed.get("volumes") or []):
        if raw.get("image"):
            try:
                resolve_image(seed, raw["project"], raw["region"], raw["image"])
            except ValueError as err:
                report(("volumes", i, "image"), f"volume {raw['name']!r}: {err}")
        if raw.get("attached_to"):
            try:
                resolve_server(seed, raw["project"], raw["region"], raw["attached_to"])
            except ValueError as err:
                report(("volumes", i, "attached_to"), f"volume {raw['name']!r}: {err}")


# -- references between sections: shared by the checks above and by state_from_seed ---------------


def _image_ids(seed: dict[str, Any]) -> list[str]:
    """The id of each seeded image, in seed order (given, or derived as state_from_seed derives it)."""
    return [
        raw.get("id") or _stable_uuid("image", str(index), raw["project"], raw["region"], raw["name"])
        for index, raw in enumerate(seed.get("images") or [])
    ]


def _server_ids(seed: dict[str, Any]) -> list[str]:
    return [
        raw.get("id") or _stable_uuid("server", str(index), raw["name"])
        for index, raw in enumerate(seed.get("servers") or [])
    ]


def _image_name(seed: dict[str, Any], image_id: str) -> str:
    return next(raw["name"] for raw, i in zip(seed.get("images") or [], _image_ids(seed), strict=True) if i == image_id)


def _usable(raw: dict[str, Any], project: str) -> bool:
    """Whether `project` may boot from (or make a volume of) this seeded image, as Glance lets it read it:
    its own, a public or community one, or one shared with it (whatever its member status)."""
    visibility = raw.get("visibility", "private")
    members = {m["project"] for m in raw.get("members") or []}
    return raw["project"] == project or visibility in ("public", "community") or project in members


def resolve_image(seed: dict[str, Any], project: str, region: str, ref: str) -> str:
    """The id of the seeded image `ref` (an id, or a name) that `project` may use in `region`; ValueError
    saying why not (unknown, or a name several such images have)."""
    usable = [
        (image_id, raw)
        for image_id, raw in zip(_image_ids(seed), seed.get("images") or [], strict=True)
        if raw["region"] == region and _usable(raw, project)
    ]
    by_id = [image_id for image_id, _ in usable if image_id == ref]
    if by_id:
        return by_id[0]
    by_name = [image_id for image_id, raw in usable if raw["name"] == ref]
    if len(by_name) > 1:
        raise ValueError(f"{len(by_name)} images of region {region} are named {ref!r}: give its id")
    if not by_name:
        raise ValueError(f"no image {ref!r} (an id or a name) that project {project} may use in region {region}")
    return by_name[0]


def resolve_server(seed: dict[str, Any], project: str, region: str, ref: str) -> str:
    """The id of the seeded server `ref` (an id, or a name no other server of the place has)."""
    here = [
        (server_id, raw)
        for server_id, raw in zip(_server_ids(seed), seed.get("servers") or [], strict=True)
        if raw["project"] == project and raw["region"] == region
    ]
    matches = [server_id for server_id, raw in here if server_id == ref] or [
        server_id for server_id, raw in here if raw["name"] == ref
    ]
    if len(matches) > 1:
        raise ValueError(f"{len(matches)} servers of project {project} in {region} are named {ref!r}: give its id")
    if not matches:
        raise ValueError(f"no server {ref!r} (an id or a name) of project {project} in region {region}")
    return matches[0]


def _stable_uuid(*parts: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "reconciler-simulator-seed:" + ":".join(parts)))


def flavor_record(name: str, local_disk: bool) -> dict[str, Any]:
    shape = FLAVOR_SHAPE.search(name)
    vcpus, ram_gb = (int(shape.group(1)), int(shape.group(2))) if shape else (1, 1)
    return {
        "name": name,
        "vcpus": vcpus,
        "ram": ram_gb * 1024,
        # Volume-rooted flavors have no local disk on NHN (disk 0); local-disk ones carry their disk.
        "disk": LOCAL_FLAVOR_DISK_GB if local_disk else 0,
    }


def state_from_seed(seed: dict[str, Any]) -> dict[str, Any]:
    """Build a fresh state document from a validated seed. Computes every seeded image's checksums."""
    now = utc_now()
    state = empty_state()
    state["regions"] = list(seed["regions"])
    state["behaviour"] = Behaviour.from_dict(seed.get("behaviour")).to_dict()
    state["default_project"] = seed["projects"][0]["id"] if seed["projects"] else None
    for project in seed["projects"]:
        state["projects"][project["id"]] = {
            "name": project.get("name", project["id"]),
            "users": [
                {
                    "id": uuid.uuid5(uuid.NAMESPACE_URL, f"user:{project['id']}:{u['username']}").hex,
                    "username": u["username"],
                    "api_password": u["api_password"],
                }
                for u in project.get("users") or []
            ],
        }

    image_ids = _image_ids(seed)
    images_by_name: dict[tuple[str, str], str] = {}
    for raw, image_id in zip(seed.get("images") or [], image_ids, strict=True):
        state["images"][image_id] = _seeded_image(image_id, raw, now)
        images_by_name.setdefault((raw["region"], raw["name"]), image_id)

    for raw, server_id in zip(seed.get("servers") or [], _server_ids(seed), strict=True):
        _add_seeded_server(state, seed, server_id, raw, images_by_name, now)
    for index, raw in enumerate(seed.get("volumes") or []):
        _add_seeded_volume(state, seed, index, raw, now)
    return state


def _booted_from(
    seed: dict[str, Any], raw: dict[str, Any], images_by_name: dict[tuple[str, str], str]
) -> tuple[str | None, str | None]:
    """(name, id) of the image a seeded server was made from: its `image` (checked by load_seed), else
    its `base_image` by name (a seeded image of the region with that name, else a made-up id)."""
    ref = raw.get("image")
    if ref:
        image_id = resolve_image(seed, raw["project"], raw["region"], ref)
        return _image_name(seed, image_id), image_id
    base_image = raw.get("base_image")
    if not base_image:
        return None, None
    return base_image, images_by_name.get((raw["region"], base_image)) or _stable_uuid("base", base_image)


def _add_seeded_server(
    state: dict[str, Any],
    seed: dict[str, Any],
    server_id: str,
    raw: dict[str, Any],
    images_by_name: dict[tuple[str, str], str],
    now: str,
) -> None:
    default_root = "local" if LOCAL_DISK_FLAVOR.match(raw["flavor"]) and raw.get("image") != "" else "volume"
    local = raw.get("root", default_root) == "local"
    flavor_id = _stable_uuid("flavor", raw["flavor"])
    state["flavors"].setdefault(flavor_id, flavor_record(raw["flavor"], local))
    disk_mb = raw.get("disk_mb", 16)
    base_image, base_image_id = _booted_from(seed, raw, images_by_name)
    server = {
        "id": server_id,
        "project": raw["project"],
        "region": raw["region"],
        "name": raw["name"],
        "flavor_id": flavor_id,
        "status": raw.get("status", "ACTIVE"),
        "task": None,
        "os_type": raw["os_type"],
        "os_distro": raw.get("os_distro"),
        "os_version": raw.get("os_version"),
        "base_image": base_image,
        "base_image_id": base_image_id,
        "disk_mb": disk_mb,
        "root": "local" if local else "volume",
        "root_volume_id": None,
        "metadata": _server_metadata({**raw, "base_image": base_image}, local, disk_mb),
        "created": now,
        "updated": now,
    }
    if not local:
        volume_id = _stable_uuid("volume", server_id)
        server["root_volume_id"] = volume_id
        # A boot volume is made from the base image: Cinder shows it in volume_image_metadata.
        state["volumes"][volume_id] = volume_record(
            volume_id,
            raw["project"],
            raw["region"],
            name=None,
            size=max(1, math.ceil(disk_mb / 1024)),
            image_id=base_image_id,
            created_at=now,
            bootable=True,
        )
        attach(state["volumes"][volume_id], server_id, "/dev/vda")
    state["servers"][server_id] = server


def _add_seeded_volume(state: dict[str, Any], seed: dict[str, Any], index: int, raw: dict[str, Any], now: str) -> None:
    volume_id = raw.get("id") or _stable_uuid("seeded-volume", str(index), raw["project"], raw["region"], raw["name"])
    image_id = resolve_image(seed, raw["project"], raw["region"], raw["image"]) if raw.get("image") else None
    volume = volume_record(
        volume_id,
        raw["project"],
        raw["region"],
        name=raw["name"],
        size=raw.get("size_gb", 10),
        image_id=image_id,
        created_at=now,
    )
    state["volumes"][volume_id] = volume
    if raw.get("attached_to"):
        server_id = resolve_server(seed, raw["project"], raw["region"], raw["attached_to"])
        attach(volume, server_id, next_free_device(state["volumes"].values(), server_id))


def _server_metadata(raw: dict[str, Any], local: bool, disk_mb: int) -> dict[str, str]:
    """NHN copies the base image's properties into an instance's metadata (the Compute-Instance API
    sample shows os_type, os_distro, os_version, image_name, volume_size); the seed's own keys win."""
    metadata = {"os_type": raw["os_type"]}
    for key in ("os_distro", "os_version"):
        if raw.get(key):
            metadata[key] = raw[key]
    if raw.get("base_image"):
        metadata["image_name"] = raw["base_image"]
    if not local:
        metadata["volume_size"] = str(max(1, math.ceil(disk_mb / 1024)))
    metadata.update(raw.get("metadata") or {})
    return metadata


def _seeded_image(image_id: str, raw: dict[str, Any], now: str) -> dict[str, Any]:
    status = raw.get("status", "active")
    fields = new_image_fields(
        image_id,
        raw["project"],
        now,
        name=raw["name"],
        status=status,
        visibility=raw.get("visibility", "private"),
        protected=raw.get("protected", False),
        min_disk=raw.get("min_disk", 0),
        min_ram=raw.get("min_ram", 0),
        container_format="bare",
        disk_format="qcow2",
        tags=list(raw.get("tags") or []),
    )
    fields.update(raw.get("properties") or {})
    data = None
    if status in ("active", "deactivated"):
        data = {"kind": "generated", "size_mb": raw.get("size_mb", 1), "content": raw.get("content", image_id)}
        image = Qcow2Image(data["size_mb"], data["content"])
        md5, sha512 = generated_digests(data["size_mb"], data["content"])
        fields.update(
            size=image.file_size,
            virtual_size=image.virtual_size,
            checksum=md5,
            os_hash_algo="sha512",
            os_hash_value=sha512,
        )
    members = {
        m["project"]: {"status": m.get("status", "pending"), "created_at": now, "updated_at": now}
        for m in raw.get("members") or []
    }
    record = new_record(raw["region"], fields, data)
    record["members"] = members
    return record


def init_state_file(state_path: Path, seed_path: Path, *, force: bool = False) -> dict[str, Any]:
    """`reconciler simulator init`: write a new state file from a seed. Returns the state."""
    if state_path.exists() and not force:
        raise SeedError(f"{state_path} already exists; remove it or pass --force to start over")
    state = state_from_seed(load_seed(seed_path))
    # Under the serving processes' lock: a simulator serving this file re-reads it, never overwrites it.
    with locked(state_path):
        write_state_file(state_path, state)
    return state


def open_or_init(state_path: Path, seed_path: Path | None, *, in_memory: bool = False) -> StateStore:
    """Open a state file, creating it from `seed_path` first if it does not exist yet."""
    if not state_path.exists():
        if seed_path is None:
            raise SeedError(f"simulator state {state_path} does not exist and no seed was given to create it")
        init_state_file(state_path, seed_path)
    return StateStore.open(state_path, in_memory=in_memory)
