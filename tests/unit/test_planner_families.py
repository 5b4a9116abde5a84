"""Families in the planner (issue 23), on hand-built desired states and snapshots: no server, no HTTP.

The world: family web-base, built from web-golden-01 in KR1, copied to JP1 and shared with a partner. Each
live version has its home image and its copy, both carrying reconciler_family / reconciler_version; the
newest live version carries reconciler_newest in both regions."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import MappingProxyType

from reconciler import markers
from reconciler.cloud.records import Image, Member, Server
from reconciler.desired import (
    CloudConfig,
    CopySpec,
    DesiredState,
    Family,
    ImageSpec,
    RootConfig,
    Settings,
    Source,
)
from reconciler.live import ImageUser, Snapshot
from reconciler.location import Location
from reconciler.plan import Plan, Target
from reconciler.planner import build_plan

PROJECT = "3f0c9d2e6b7a4f0e9a1b2c3d4e5f6a7b"
PARTNER = "8989447062e04a818baf9e073fd04fa7"
TARGET = Target("simulator", PROJECT, "loopback", ("JP1", "KR1"), ".reconciler/sim-state.json")
SET = "web"
FAMILY = "web-base"
SERVER = Server("KR1", "s1", "web-golden-01", "SHUTOFF", None, "f", "m2.c4m8", "volume", "v1",
                MappingProxyType({"os_type": "linux"}))  # fmt: skip
USER = ImageUser("server", "10000000-0000-4000-8000-000000000001", "app-01")
FILE = "families.yaml"


def family(versions, keep=3, protect_newest=2, overrides=()) -> Family:
    return Family(
        name=FAMILY, versions=tuple(versions), keep=keep, protect_newest=protect_newest, file=FILE,
        location=Location(FILE, 2, 3),
        version_locations=MappingProxyType({v: Location(FILE, 4, 10 + 12 * i) for i, v in enumerate(versions)}),
        protected_overrides=MappingProxyType({v: Location(FILE, 9, 7) for v in overrides}),
    )  # fmt: skip


def spec(fam: Family, version: str, **fields) -> ImageSpec:
    protected = version in fam.protected or version in fam.protected_overrides
    return ImageSpec(
        key=fam.key(version), file=FILE, region="KR1", source=fields.pop("source", Source(instance="web-golden-01")),
        name=f"web-base-{version}", protected=protected, copies=(CopySpec("JP1"),), share=(PARTNER,),
        locations=MappingProxyType({"": Location(FILE, 4, 10)}), family=FAMILY, version=version, **fields,
    )  # fmt: skip


def desired(fam: Family, *extra: ImageSpec) -> DesiredState:
    root = RootConfig(Path("/root"), SET, CloudConfig("nhn", PROJECT, None), "KR1", Settings())
    images = tuple(sorted((*(spec(fam, v) for v in fam.kept), *extra), key=lambda s: s.key))
    return DesiredState(root, images, (FILE,), families=(fam,))


def image_id(version: str, region: str) -> str:
    month = version.replace("-", "")
    return f"{month}0-0000-4000-8000-00000000000{1 if region == 'KR1' else 2}"


def live(version: str, region: str, *, protected=False, newest=False, home_id=None, **props) -> Image:
    """The image of `version` in `region` (the home image in KR1, its copy in JP1), as the tool left it."""
    key = f"{FAMILY}-{version}"
    marks = {markers.SET: SET, markers.KEY: key, markers.FAMILY: FAMILY, markers.VERSION: version}
    if region == "KR1":
        marks[markers.SOURCE] = "instance:s1"
    else:
        marks[markers.COPY_OF] = home_id or image_id(version, "KR1")
    if newest:
        marks[markers.NEWEST] = "true"
    marks.update(props)
    return Image(
        region=region, id=image_id(version, region), name=key, status="active", visibility="shared",
        protected=protected, owner=PROJECT, min_disk=0, min_ram=0, size=1024, virtual_size=1024, checksum="c" * 32,
        os_hash_value=None, disk_format="qcow2", container_format="bare", tags=(), created_at="2026-11-26T00:00:00Z",
        updated_at=None, properties=MappingProxyType({"os_type": "linux", **marks}),
    )  # fmt: skip


def both(version: str, **kwargs) -> tuple[Image, Image]:
    return live(version, "KR1", **kwargs), live(version, "JP1", **kwargs)


def snapshot(*images: Image, usage=None) -> Snapshot:
    by_region: dict[str, list[Image]] = {"JP1": [], "KR1": []}
    for each in images:
        by_region[each.region].append(each)
    members = {i.id: (Member(i.id, PARTNER, "accepted"),) for i in images}
    return Snapshot(
        project=PROJECT, regions=("JP1", "KR1"), catalog_regions=("JP1", "KR1"),
        images=MappingProxyType({r: tuple(sorted(v, key=lambda i: i.id)) for r, v in by_region.items()}),
        members=MappingProxyType(members), servers=MappingProxyType({("KR1", "web-golden-01"): SERVER}),
        foreign=MappingProxyType({}), usage=MappingProxyType({r: MappingProxyType(u) for r, u in (usage or {}).items()}),
    )  # fmt: skip


def ids(plan: Plan) -> list[str]:
    return [a.id for a in plan.actions]


def action(plan: Plan, action_id: str):
    return next(a for a in plan.actions if a.id == action_id)


def deps(plan: Plan, action_id: str) -> set[str]:
    return {d.id for d in action(plan, action_id).depends_on}


def codes(findings) -> list[str]:
    return [f.code for f in findings]


# Three months live: 09 (unprotected), 10 and 11 (protected), 11 the newest.
BEFORE = (*both("2026-09"), *both("2026-10", protected=True), *both("2026-11", protected=True, newest=True))
USAGE_READ = {"KR1": {}, "JP1": {}}
NEW = "web-base-2026-12"
NEW_VERSION = {
    f"create:{NEW}:KR1", f"copy:{NEW}:JP1", f"share:{NEW}:KR1:{PARTNER}", f"share:{NEW}:JP1:{PARTNER}",
    f"protect:{NEW}:KR1", f"protect:{NEW}:JP1",
}  # fmt: skip


def rotation(usage=USAGE_READ, versions=("2026-09", "2026-10", "2026-11", "2026-12"), before=BEFORE) -> Plan:
    return build_plan(desired(family(versions)), snapshot(*before, usage=usage), TARGET)


def test_appending_one_version_plans_it_the_unprotect_and_the_retirement_in_one_plan():
    plan = rotation()
    assert not plan.refusals
    assert set(ids(plan)) == NEW_VERSION | {
        f"update:{NEW}:KR1:download-on", f"update:{NEW}:KR1:download-off",  # around the copy, as for any image
        f"update:{NEW}:KR1:newest", f"update:{NEW}:JP1:newest",
        "update:web-base-2026-11:KR1:newest", "update:web-base-2026-11:JP1:newest",
        "unprotect:web-base-2026-10:KR1", "unprotect:web-base-2026-10:JP1",
        "delete:web-base-2026-09:KR1", "delete:web-base-2026-09:JP1",
    }  # fmt: skip
    for region in ("KR1", "JP1"):
        assert NEW_VERSION <= deps(plan, f"unprotect:web-base-2026-10:{region}")
        assert NEW_VERSION <= deps(plan, f"delete:web-base-2026-09:{region}")
        retirement = action(plan, f"delete:web-base-2026-09:{region}")
        assert retirement.reason.code == "retired" and retirement.details["family"] == FAMILY
    # Every action after what it depends on.
    order = ids(plan)
    assert all(order.index(d.id) < order.index(a.id) for a in plan.actions for d in a.depends_on)


def test_every_image_of_a_family_carries_its_family_and_version():
    plain = ImageSpec(key="plain", file=FILE, region="KR1", source=Source(instance="web-golden-01"))
    fam = family(("2026-09", "2026-10", "2026-11", "2026-12"))
    plan = build_plan(desired(fam, plain), snapshot(*BEFORE, usage=USAGE_READ), TARGET)
    for action_id in (f"create:{NEW}:KR1", f"copy:{NEW}:JP1"):
        changes = action(plan, action_id).changes
        assert changes[markers.FAMILY].after == FAMILY and changes[markers.VERSION].after == "2026-12"
    # An image outside a family gets neither.
    assert not {markers.FAMILY, markers.VERSION} & set(action(plan, "create:plain:KR1").changes)
    # A live version without them (made before its family existed) gets them by an update.
    bare = [dataclasses.replace(i, properties=MappingProxyType({
        k: v for k, v in i.properties.items() if k not in (markers.FAMILY, markers.VERSION)
    })) if i.properties[markers.KEY] == "web-base-2026-10" else i for i in BEFORE]  # fmt: skip
    plan = rotation(before=tuple(bare))
    for region in ("KR1", "JP1"):
        changes = action(plan, f"update:web-base-2026-10:{region}").changes
        assert (changes[markers.FAMILY].after, changes[markers.VERSION].after) == (FAMILY, "2026-10")


def test_the_newest_marker_is_added_once_the_new_version_is_ready_then_removed_from_the_previous_one():
    plan = rotation()
    for region in ("KR1", "JP1"):
        added, removed = f"update:{NEW}:{region}:newest", f"update:web-base-2026-11:{region}:newest"
        assert action(plan, added).changes[markers.NEWEST].after == "true"
        assert action(plan, removed).changes[markers.NEWEST].after is None
        assert {f"share:{NEW}:{region}:{PARTNER}", f"protect:{NEW}:{region}"} <= deps(plan, added)
        assert added in deps(plan, removed)


def test_a_rollback_moves_the_newest_marker_back_and_retires_the_rolled_back_version():
    after = (*BEFORE[:4], *both("2026-11", protected=True), *both("2026-12", protected=False, newest=True))
    plan = rotation(versions=("2026-09", "2026-10", "2026-11"), before=after)
    assert not plan.refusals
    for region in ("KR1", "JP1"):
        added, removed = f"update:web-base-2026-11:{region}:newest", f"update:web-base-2026-12:{region}:newest"
        assert action(plan, added).changes[markers.NEWEST].after == "true"
        assert added in deps(plan, removed)
        retirement = action(plan, f"delete:web-base-2026-12:{region}")
        assert retirement.reason.code == "retired" and removed in deps(plan, f"delete:web-base-2026-12:{region}")


def test_two_versions_appended_at_once_refuse_the_retirement_of_a_still_protected_version():
    plan = rotation(versions=("2026-09", "2026-10", "2026-11", "2026-12", "2027-01"))
    refusal = next(f for f in plan.refusals if f.key == "web-base-2026-10")
    assert refusal.code == "protected_undeclared"
    assert "append one version per apply" in (refusal.hint or "")


def test_a_protected_override_that_leaves_the_window_refuses_the_retirement_naming_its_line():
    before = (*both("2026-09", protected=True), *BEFORE[2:])
    fam = family(("2026-09", "2026-10", "2026-11", "2026-12"), overrides=("2026-09",))
    plan = build_plan(desired(fam), snapshot(*before, usage=USAGE_READ), TARGET)
    refusal = next(f for f in plan.refusals if f.key == "web-base-2026-09")
    assert f"{FILE}:9" in (refusal.hint or "")


def test_an_older_kept_version_without_an_image_is_refused_never_built():
    fam = family(("2026-10", "2026-11", "2026-12"))
    before = (*both("2026-11", protected=True), *both("2026-12", protected=True, newest=True))
    plan = build_plan(desired(fam), snapshot(*before, usage=USAGE_READ), TARGET)
    assert codes(plan.refusals) == ["version_missing"]
    refusal = plan.refusals[0]
    assert refusal.key == "web-base-2026-10" and refusal.source == f"{FILE}:4"
    assert "source.image" in (refusal.hint or "") and "never re-created" in refusal.message
    assert not any(a.kind == "create" for a in plan.actions)


def test_an_older_version_adopted_by_id_is_kept_without_a_build():
    fam = family(("2026-10", "2026-11", "2026-12"))
    adopted = dataclasses.replace(
        live("2026-10", "KR1"), properties=MappingProxyType({"os_type": "linux"}), visibility="private"
    )
    before = (adopted, *both("2026-11", protected=True), *both("2026-12", protected=True, newest=True))
    state = desired(fam)
    state = dataclasses.replace(state, images=tuple(
        dataclasses.replace(s, source=Source(image=adopted.id)) if s.version == "2026-10" else s for s in state.images
    ))  # fmt: skip
    plan = build_plan(state, snapshot(*before, usage=USAGE_READ), TARGET)
    assert "version_missing" not in codes(plan.refusals)
    adopt = action(plan, "adopt:web-base-2026-10:KR1")
    assert adopt.changes[markers.FAMILY].after == FAMILY and adopt.changes[markers.VERSION].after == "2026-10"


def test_a_retirement_in_use_is_deferred_per_image_and_the_rest_of_the_plan_stands():
    copy = image_id("2026-09", "JP1")
    plan = rotation(usage={"KR1": {}, "JP1": {copy: (USER,)}})
    assert not plan.refusals
    assert "delete:web-base-2026-09:KR1" in ids(plan)
    assert "delete:web-base-2026-09:JP1" not in ids(plan)
    (warning,) = [w for w in plan.warnings if w.code == "retirement_deferred"]
    assert (warning.key, warning.region) == ("web-base-2026-09", "JP1")
    assert "app-01" in warning.message and "1 user" in warning.message
    assert NEW_VERSION <= set(ids(plan))


def test_a_retirement_in_use_is_deferred_even_when_deletes_in_use_are_allowed_other_deletes_are_not():
    home = image_id("2026-09", "KR1")
    stray = dataclasses.replace(live("2026-08", "KR1"), properties=MappingProxyType({
        "os_type": "linux", markers.SET: SET, markers.KEY: "stray", markers.SOURCE: "instance:s1",
    }))  # fmt: skip
    fam = family(("2026-09", "2026-10", "2026-11", "2026-12"))
    state = desired(fam)
    state = dataclasses.replace(state, root=dataclasses.replace(state.root, settings=Settings(delete_in_use="allow")))
    usage = {"KR1": {home: (USER,), stray.id: (USER,)}, "JP1": {}}
    plan = build_plan(state, snapshot(*BEFORE, stray, usage=usage), TARGET)
    assert "delete:web-base-2026-09:KR1" not in ids(plan) and "delete:stray:KR1" in ids(plan)
    assert [(w.code, w.key) for w in plan.warnings if w.code in ("retirement_deferred", "image_in_use")] == [
        ("image_in_use", "stray"),
        ("retirement_deferred", "web-base-2026-09"),
    ]


# -- what a hostile review found (issue 23) -------------------------------------------------------------


def test_a_target_on_the_new_version_alone_moves_the_newest_marker_whole():
    """--target web-base-2026-12: the marker's removal from 2026-11 is part of the one move its add starts
    (left out, both images would carry reconciler_newest after the apply)."""
    fam = family(("2026-09", "2026-10", "2026-11", "2026-12"))
    plan = build_plan(desired(fam), snapshot(*BEFORE, usage=USAGE_READ), TARGET, targets=frozenset({NEW}))
    for region in ("KR1", "JP1"):
        added, removed = f"update:{NEW}:{region}:newest", f"update:web-base-2026-11:{region}:newest"
        assert action(plan, removed).changes[markers.NEWEST].after is None
        assert added in deps(plan, removed)
        assert "outside this partial plan" in action(plan, removed).reason.message
    # Only the marker: 2026-11 is otherwise out of scope, and the unprotect and retirement are not planned.
    assert {a.key for a in plan.actions if a.key != NEW} == {"web-base-2026-11"}


def without_copy(state: DesiredState, version: str) -> DesiredState:
    """`state` where `version` no longer declares its JP1 copy (its entry replaced `copies`)."""
    images = tuple(dataclasses.replace(s, copies=()) if s.version == version else s for s in state.images)
    return dataclasses.replace(state, images=images)


def test_a_dropped_copy_of_a_kept_version_is_an_ordinary_delete_not_a_retirement():
    fam = family(("2026-09", "2026-10", "2026-11"))
    copy = image_id("2026-09", "JP1")
    plan = build_plan(without_copy(desired(fam), "2026-09"), snapshot(*BEFORE, usage=USAGE_READ), TARGET)
    delete = action(plan, "delete:web-base-2026-09:JP1")
    assert delete.reason.code == "undeclared" and "family" not in delete.details
    assert "copy region JP1 is no longer declared" in delete.reason.message
    # In use: refused like any other delete in use, not deferred as a retirement.
    plan = build_plan(
        without_copy(desired(fam), "2026-09"), snapshot(*BEFORE, usage={"KR1": {}, "JP1": {copy: (USER,)}}), TARGET
    )
    assert [(f.code, f.key, f.region) for f in plan.refusals] == [("image_in_use", "web-base-2026-09", "JP1")]
    assert "retirement_deferred" not in codes(plan.warnings)
    # Protected: the copy's own hint, not a retirement's.
    plan = build_plan(without_copy(desired(fam), "2026-10"), snapshot(*BEFORE, usage=USAGE_READ), TARGET)
    (refusal,) = plan.refusals
    assert (refusal.code, refusal.key, refusal.region) == ("protected_undeclared", "web-base-2026-10", "JP1")
    assert "protected: false}]" in (refusal.hint or "") and "appended" not in (refusal.hint or "")


def test_the_hint_on_a_protected_retirement_fits_the_change():
    # Two versions appended at once: named.
    plan = rotation(versions=("2026-09", "2026-10", "2026-11", "2026-12", "2027-01"))
    refusal = next(f for f in plan.refusals if f.key == "web-base-2026-10")
    assert "2 versions were appended at once (2026-12, 2027-01)" in (refusal.hint or "")
    # keep lowered past a protected version, nothing appended.
    lowered = family(("2026-09", "2026-10", "2026-11"), keep=1, protect_newest=0)
    plan = build_plan(desired(lowered), snapshot(*BEFORE, usage=USAGE_READ), TARGET)
    refusal = next(f for f in plan.refusals if f.key == "web-base-2026-10")
    assert "keep was lowered" in (refusal.hint or "") and "appended" not in (refusal.hint or "")
    # A rollback of a protected newest version: list it again with protect_newest: 0 for one apply.
    after = (*BEFORE[:4], *both("2026-11", protected=True), *both("2026-12", protected=True, newest=True))
    plan = rotation(versions=("2026-09", "2026-10", "2026-11"), before=after)
    refusal = next(f for f in plan.refusals if f.key == "web-base-2026-12")
    assert "rollback" in (refusal.hint or "") and "protect_newest: 0" in (refusal.hint or "")
    assert "appended" not in (refusal.hint or "")
    # An older protected version taken out of the list: list it again and shrink the window for one apply.
    plan = rotation(versions=("2026-09", "2026-11"))
    refusal = next(f for f in plan.refusals if f.key == "web-base-2026-10")
    assert "taken out of web-base's versions while still protected" in (refusal.hint or "")
    assert "lower protect_newest" in (refusal.hint or "") and "rollback" not in (refusal.hint or "")


def renamed(fam: Family, name: str) -> DesiredState:
    """`fam` renamed to `name` (moved_from: its old name): every kept version re-keyed."""
    new = dataclasses.replace(fam, name=name, moved_from=fam.name)
    state = desired(fam)
    images = tuple(dataclasses.replace(s, key=new.key(s.version), family=name, moved_from=s.key) for s in state.images)
    return dataclasses.replace(state, images=images, families=(new,))


def test_a_renamed_family_still_retires_the_images_its_old_name_marks():
    fam = family(("2026-09", "2026-10", "2026-11", "2026-12"))
    home = image_id("2026-09", "KR1")
    plan = build_plan(renamed(fam, "web-img"), snapshot(*BEFORE, usage={"KR1": {home: (USER,)}, "JP1": {}}), TARGET)
    assert "image_in_use" not in codes(plan.refusals)
    (warning,) = [w for w in plan.warnings if w.code == "retirement_deferred"]
    assert (warning.key, warning.region) == ("web-base-2026-09", "KR1")
    retirement = action(plan, "delete:web-base-2026-09:JP1")
    assert retirement.reason.code == "retired" and retirement.details["family"] == "web-img"


def test_leaving_the_new_version_out_of_scope_plans_no_unprotect_or_retirement_waiting_for_it():
    fam = family(("2026-09", "2026-10", "2026-11", "2026-12"))
    plan = build_plan(desired(fam), snapshot(*BEFORE, usage=USAGE_READ), TARGET, excludes=frozenset({NEW}))
    assert not [a.id for a in plan.actions if a.kind in ("unprotect", "delete")]
    waiting = sorted((w.key, w.region) for w in plan.warnings if w.code == "waits_for_new_version")
    assert waiting == [(k, r) for k in ("web-base-2026-09", "web-base-2026-10") for r in ("JP1", "KR1")]
    # Once the new version has its images, excluding it no longer holds the old ones back.
    done = (*BEFORE[:2], *both("2026-10"), *both("2026-11", protected=True), *both("2026-12", protected=True))
    plan = build_plan(desired(fam), snapshot(*done, usage=USAGE_READ), TARGET, excludes=frozenset({NEW}))
    assert {"delete:web-base-2026-09:KR1", "delete:web-base-2026-09:JP1"} <= set(ids(plan))
    assert "waits_for_new_version" not in codes(plan.warnings)


def test_protection_from_the_family_window_says_where_the_version_stands():
    plan = rotation()
    unprotect = action(plan, "unprotect:web-base-2026-10:KR1").reason.message
    assert unprotect == "2026-10 left the newest 2 of web-base (protect_newest: 2)"
    protect = action(plan, f"protect:{NEW}:JP1").reason.message
    assert protect == "2026-12 is among the newest 2 of web-base (protect_newest: 2)"
    # A protected: true override is declared, as written.
    before = (*both("2026-09"), *both("2026-10"), *both("2026-11", protected=True, newest=True))
    fam = family(("2026-09", "2026-10", "2026-11"), overrides=("2026-09",))
    plan = build_plan(desired(fam), snapshot(*before, usage=USAGE_READ), TARGET)
    assert action(plan, "protect:web-base-2026-09:KR1").reason.message == "protected: true is declared"


def test_a_protected_version_of_a_family_no_longer_declared_names_protect_newest_and_removed():
    plain = ImageSpec(key="plain", file=FILE, region="KR1", source=Source(image="00000000-0000-4000-8000-00000000abcd"))
    state = dataclasses.replace(desired(family(("2026-09",))), images=(plain,), families=())
    plan = build_plan(state, snapshot(*BEFORE, usage=USAGE_READ), TARGET)
    refusal = next(f for f in plan.refusals if f.key == "web-base-2026-10")
    hint = refusal.hint or ""
    assert "protect_newest" in hint and "removed: with destroy: false" in hint
    assert "set protected: false" not in hint


def test_a_hand_set_version_marker_is_not_quoted_whole_in_a_retirement():
    odd = "x" * 300
    before = (*both("2026-09", **{markers.VERSION: odd}), *BEFORE[2:])
    plan = rotation(before=before)
    reason = action(plan, "delete:web-base-2026-09:KR1").reason.message
    assert odd not in reason and "2026-09" in reason
