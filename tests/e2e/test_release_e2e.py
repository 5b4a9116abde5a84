"""Backing out of the tool without losing images (issue 18), with the installed CLI against two real
Glance servers: a project's pre-existing images are imported and applied, then every key is moved under
`removed:` with `destroy: false` and applied again. Every check of what happened reads Glance's own API
(the `e2e` fixture's direct clients, the front's record of PATCHes); only exit codes, and in the last test
the wording of the plan that is never applied, come from the tool.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.e2e

IMPORTED = "imported-kr1.yaml"  # what `reconciler import --region KR1` writes in the root
# Glance moves this on every PATCH: the one field a release may change besides taking the markers off.
MOVES_ON_PATCH = ("updated_at",)


def ok(done) -> None:
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


@dataclass
class Imported:
    """Six images the owner had before the tool (and a copy of one in JP1), imported and applied."""

    prefix: str
    ids: dict[str, tuple[str, str]]  # name -> (region, image id); the JP1 copy under "<copied name>@JP1"
    keys: list[str]  # the keys the imported manifest declares
    before: dict[str, dict[str, Any]]  # e2e.everything() before the import, without MOVES_ON_PATCH

    def name(self, what: str) -> str:
        return f"{self.prefix}{what}"

    def id_of(self, what: str) -> str:
        return self.ids[self.name(what)][1]


def pre_existing_images(e2e, prefix: str) -> dict[str, tuple[str, str]]:
    """One protected, one shared with the partner (who accepted), one with a copy in JP1 (same name and
    bytes: import recognises it by name and checksum), custom properties on some, sizes on one."""
    kr1, jp1 = e2e.glance("KR1"), e2e.glance("JP1")
    custom = {"team": "data", "build": "2025.10", "description": "made by hand before the tool"}
    made = {
        "protected": kr1.create(f"{prefix}protected", os_type="linux", protected=True, team="base"),
        "shared": kr1.create(f"{prefix}shared", os_type="linux"),
        "copied": kr1.create(f"{prefix}copied", os_type="linux", login_username="ubuntu"),
        "custom": kr1.create(f"{prefix}custom", os_type="linux", **custom),
        "sized": kr1.create(f"{prefix}sized", os_type="windows", min_disk=20, min_ram=512),
        "plain": kr1.create(f"{prefix}plain", os_type="linux"),
    }
    ids = {image["name"]: ("KR1", image["id"]) for image in made.values()}
    copy = jp1.create(f"{prefix}copied", os_type="linux", login_username="ubuntu")
    assert copy["checksum"] == made["copied"]["checksum"]
    ids[f"{prefix}copied@JP1"] = ("JP1", copy["id"])
    shared = made["shared"]["id"]
    kr1.share(shared, e2e.partner)
    accepted = kr1.as_project(e2e.partner).request(
        "PUT", f"/v2/images/{shared}/members/{e2e.partner}", json={"status": "accepted"}
    )
    assert accepted.status_code == 200, accepted.text[:300]
    assert kr1.members(shared) == {e2e.partner: "accepted"}
    return ids


def without_moving_fields(view: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {where: {k: v for k, v in image.items() if k not in MOVES_ON_PATCH} for where, image in view.items()}


def markers_of(image: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in image.items() if name.startswith("reconciler_")}


def import_and_apply(e2e, **cloud: Any) -> Imported:
    """The new user's first steps: import the project's images (only those with the prefix: the fixture's
    bystanders are not theirs to import), apply; every image then carries the set's markers."""
    if cloud:
        e2e.write({}, cloud=cloud)
    prefix = f"rel{uuid.uuid4().hex[:6]}-"
    ids = pre_existing_images(e2e, prefix)
    before = without_moving_fields(e2e.everything())
    ok(e2e.run("import", e2e.root, "--region", "KR1", "--name-prefix", prefix))
    manifest = yaml.safe_load((e2e.root / IMPORTED).read_text(encoding="utf-8"))
    keys = sorted(manifest["images"])
    assert len(keys) == 6, keys
    assert manifest["images"][f"{prefix}copied"]["copies"] == [
        {"region": "JP1", "image": ids[f"{prefix}copied@JP1"][1]}
    ]
    ok(e2e.apply())

    imported = Imported(prefix, ids, keys, before)
    for name, (region, image_id) in ids.items():
        image = e2e.glance(region).get(image_id)
        assert image["reconciler_set"] == e2e.set_name, (name, image)
        assert image["reconciler_key"] == name.split("@")[0], (name, image)
    assert e2e.glance("JP1").get(imported.id_of("copied@JP1"))["reconciler_copy_of"] == imported.id_of("copied")
    # Adopting changed nothing but the markers.
    assert_same(
        strip_markers(without_moving_fields(e2e.everything()), e2e.set_name), before, "after the adopting apply"
    )
    return imported


def strip_markers(view: dict[str, dict[str, Any]], set_name: str) -> dict[str, dict[str, Any]]:
    """The view without this set's markers (another set's bystander keeps its own)."""
    return {
        where: {k: v for k, v in image.items() if not (k.startswith("reconciler_") and owned)}
        for where, image in view.items()
        for owned in [image.get("reconciler_set") == set_name]
    }


def assert_same(now: dict[str, dict[str, Any]], before: dict[str, dict[str, Any]], when: str) -> None:
    """Glance's view `now` is `before`; else name each image and field that differs."""
    differences = [
        f"{where}.{field}: {image.get(field)!r} -> {now.get(where, {}).get(field)!r}"
        for where, image in before.items()
        for field in sorted(set(image) | set(now.get(where, {})))
        if image.get(field) != now.get(where, {}).get(field)
    ] + [f"{where}: new" for where in now if where not in before]
    assert not differences, f"{when}: " + "; ".join(differences)


def release_all(e2e, imported: Imported) -> None:
    """Replace the imported manifest with one that lists every key under removed: with destroy: false."""
    removed = [{"key": key, "destroy": False} for key in imported.keys]
    document = {"version": 1, "removed": removed}
    (e2e.root / IMPORTED).write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")


def assert_as_before_the_tool(e2e, imported: Imported) -> None:
    """Every pre-existing image exists, with its name, protection, members (and their status) and custom
    properties as before the import, and without any reconciler_* property."""
    now = without_moving_fields(e2e.everything())
    for name, (region, image_id) in imported.ids.items():
        where = f"{region}/{image_id}"
        assert where in now, f"{name} ({where}) is gone"
        assert markers_of(now[where]) == {}, (name, markers_of(now[where]))
    assert_same(now, imported.before, "after the release")
    assert e2e.glance("KR1").get(imported.id_of("protected"))["protected"] is True
    assert e2e.glance("KR1").members(imported.id_of("shared")) == {e2e.partner: "accepted"}
    assert e2e.reads_as(e2e.partner, "KR1", imported.id_of("shared"))


def test_import_apply_then_release_all_leaves_every_image_as_it_was_before_the_tool(e2e):
    imported = import_and_apply(e2e)

    release_all(e2e, imported)
    ok(e2e.apply())
    assert_as_before_the_tool(e2e, imported)

    # The root's next plan has nothing to do (each removed: entry now only warns removed_nothing).
    again = e2e.run("plan", e2e.root, "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "removed_nothing" in again.stdout + again.stderr


def test_under_strict_protection_the_released_protected_image_ends_protected(e2e, monkeypatch):
    """protected_patch: strict brackets the release of a protected image: Glance sees it unprotected, the
    markers taken off, and protected again (the closing protect, guard (7))."""
    imported = import_and_apply(e2e, protected_patch="strict")
    protected = imported.id_of("protected")
    ops_seen = record_patch_ops(e2e.front, monkeypatch)
    patches = len(e2e.front.patches)

    release_all(e2e, imported)
    ok(e2e.apply())
    assert_as_before_the_tool(e2e, imported)

    on_protected = [p for p in e2e.front.patches[patches:] if p.image_id == protected]
    assert [p.status for p in on_protected] == [200, 200, 200], on_protected
    sequence = [ops for image_id, ops in ops_seen if image_id == protected]
    assert len(sequence) == 3, sequence
    opening, release, closing = sequence
    assert opening == [{"op": "replace", "path": "/protected", "value": False}], opening
    assert closing == [{"op": "replace", "path": "/protected", "value": True}], closing
    assert release and all(op["op"] == "remove" and op["path"].startswith("/reconciler_") for op in release), release
    # An unprotected image is released in one PATCH, unbracketed.
    plain = [ops for image_id, ops in ops_seen if image_id == imported.id_of("plain")]
    assert len(plain) == 1, plain

    again = e2e.run("plan", e2e.root, "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr


def record_patch_ops(front, monkeypatch) -> list[tuple[str, list[dict[str, Any]]]]:
    """The JSON-patch ops of each image PATCH the front forwards from now on, as (image id, ops). The
    front classifies every PATCH body (`_image_patch`); this listens in on that call."""
    seen: list[tuple[str, list[dict[str, Any]]]] = []
    classify = front._image_patch

    def listening(path: str, body: bytes) -> str | None:
        image_id = classify(path, body)
        if image_id is not None:
            seen.append((image_id, json.loads(body or b"[]")))
        return image_id

    monkeypatch.setattr(front, "_image_patch", listening)
    return seen


def test_deleting_the_imported_manifest_plans_deletes_that_point_at_removed(e2e, tmp_path):
    """The trap the issue fell into: without removed:, the imported manifest gone, the plan deletes the
    unprotected images and refuses the protected one. Its reasons say the images were imported and how to
    keep them. (The wording is read from the tool's JSON plan; the plan is never applied.)"""
    imported = import_and_apply(e2e)
    (e2e.root / IMPORTED).rename(tmp_path / IMPORTED)
    before = e2e.everything()

    # An empty root refuses outright; its hint offers removed: besides allow_empty_set.
    empty = e2e.run("plan", e2e.root, "--format", "json")
    assert empty.returncode == 3, empty.stdout + empty.stderr
    (refusal,) = json.loads(empty.stdout)["refusals"]
    assert refusal["code"] == "empty_root" and "removed: with destroy: false" in refusal["hint"], refusal

    e2e.write({}, allow_empty_set=True)
    planned = e2e.run("plan", e2e.root, "--format", "json")
    assert planned.returncode == 3, planned.stdout + planned.stderr
    plan = json.loads(planned.stdout)
    deletes = {a["image_id"]: a["reason"]["message"] for a in plan["actions"] if a["kind"] == "delete"}
    unprotected = {imported.id_of(what) for what in ("shared", "copied", "custom", "sized", "plain")}
    assert unprotected <= set(deletes), deletes
    # (The JP1 copy goes too: the plan deletes its key's images wherever they are.)
    assert imported.id_of("copied@JP1") in deletes, deletes
    for image_id in unprotected:
        message = deletes[image_id]
        assert "imported" in message and "removed: with destroy: false" in message, message
    (refusal,) = plan["refusals"]
    assert refusal["code"] == "protected_undeclared" and refusal["key"] == imported.name("protected"), refusal
    assert "removed: with destroy: false" in refusal["hint"], refusal
    assert e2e.everything() == before  # plans change nothing
