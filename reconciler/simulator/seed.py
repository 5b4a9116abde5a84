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
from reconciler.simulator.image_records import new_image_fields, new_record
from reconciler.simulator.qcow2 import Qcow2Image, generated_digests
from reconciler.simulator.routes import check_fault_routes
from reconciler.simulator.state import StateStore, empty_state, locked, utc_now, write_state_file
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
    """Each server and image names a seeded project and region, and no two share an id. Two servers may
    share a name, as on Nova: the reconciler must cope with the ambiguity."""
    regions = set(seed["regions"])
    projects = {p["id"] for p in seed["projects"]}
    ids: set[str] = set()
    for section in ("servers", "images"):
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

    images_by_name: dict[tuple[str, str], str] = {}
    for index, raw in enumerate(seed.get("images") or []):
        image_id = raw.get("id") or _stable_uuid("image", str(index), raw["project"], raw["region"], raw["name"])
        state["images"][image_id] = _seeded_image(image_id, raw, now)
        images_by_name.setdefault((raw["region"], raw["name"]), image_id)

    for index, raw in enumerate(seed.get("servers") or []):
        server_id = raw.get("id") or _stable_uuid("server", str(index), raw["name"])
        local = raw.get("root", "local" if LOCAL_DISK_FLAVOR.match(raw["flavor"]) else "volume") == "local"
        flavor_id = _stable_uuid("flavor", raw["flavor"])
        state["flavors"].setdefault(flavor_id, flavor_record(raw["flavor"], local))
        disk_mb = raw.get("disk_mb", 16)
        base_image = raw.get("base_image")
        base_image_id = None
        if base_image:
            base_image_id = images_by_name.get((raw["region"], base_image)) or _stable_uuid("base", base_image)
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
            "metadata": _server_metadata(raw, local, disk_mb),
            "created": now,
            "updated": now,
        }
        if not local:
            volume_id = _stable_uuid("volume", server_id)
            server["root_volume_id"] = volume_id
            state["volumes"][volume_id] = {
                "id": volume_id,
                "project": raw["project"],
                "region": raw["region"],
                "size": max(1, math.ceil(disk_mb / 1024)),
                "status": "in-use",
                "attached_to": server_id,
                "device": "/dev/vda",
                "bootable": "true",
                "created_at": now,
                # A boot volume is made from the base image: Cinder shows it in volume_image_metadata.
                "image_id": base_image_id,
            }
        state["servers"][server_id] = server
    return state


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
