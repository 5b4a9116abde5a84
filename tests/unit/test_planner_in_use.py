"""The in-use guard on hand-made snapshots (issue 22): no server, no HTTP. A delete of an image a server of
the project was booted from, or a volume of the project was made from, is refused (`image_in_use`) unless
`settings.delete_in_use: allow` (a warning then); a shared image's delete warns; a leftover in use is kept
(`leftover_kept`), never refused; a region whose usage was not read refuses nothing and is named by
`usage_needed`, so that the live planning reads it and plans again."""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path
from types import MappingProxyType

from planner_worlds import two_region_snapshot

from reconciler.cloud.records import Image
from reconciler.live import ImageUser, Snapshot
from reconciler.plan import Plan, Target
from reconciler.planner import build_plan, usage_needed
from reconciler.validate import load_desired_state

PROJECT = "3f0c9d2e6b7a4f0e9a1b2c3d4e5f6a7b"
SET = "web-platform"
TARGET = Target("simulator", PROJECT, "loopback", ("JP1", "KR1"), ".reconciler/sim-state.json")
HOME = "00000000-0000-4000-8000-000000000011"
OLD = "00000000-0000-4000-8000-000000000012"
OTHER_OLD = "00000000-0000-4000-8000-000000000013"
STALE_COPY = "00000000-0000-4000-8000-000000000014"
LEFTOVER = "00000000-0000-4000-8000-000000000021"
SERVER = ImageUser("server", "10000000-0000-4000-8000-000000000001", "app-01")
VOLUME = ImageUser("volume", "50000000-0000-4000-8000-000000000001", None)
DECLARED = f"web-base:\n  source: {{image: {HOME}}}\n"


def desired(tmp_path: Path, manifest: str = DECLARED, settings: str = ""):
    line = f"settings: {{{settings}}}\n" if settings else ""
    (tmp_path / "reconciler.yaml").write_text(
        f"version: 1\nset: {SET}\ncloud: {{kind: nhn, project: {PROJECT}}}\ndefaults: {{region: KR1}}\n{line}"
    )
    (tmp_path / "m.yaml").write_text("version: 1\nimages:\n" + textwrap.indent(manifest, "  "))
    return load_desired_state(tmp_path)


def image(image_id: str, region: str = "KR1", *, name: str, status: str = "active", **props: str) -> Image:
    return Image(
        region=region, id=image_id, name=name, status=status, visibility=props.pop("visibility", "private"),
        protected=False, owner=PROJECT, min_disk=0, min_ram=0, size=1024, virtual_size=1024, checksum="c" * 32,
        os_hash_value=None, disk_format="qcow2", container_format="bare", tags=(), created_at="2026-11-26T00:00:00Z",
        updated_at=None, properties=MappingProxyType({"os_type": "linux", **props}),
    )  # fmt: skip


def managed(image_id: str, key: str, region: str = "KR1", **props: str) -> Image:
    marks = {"reconciler_set": SET, "reconciler_key": key, "reconciler_source": f"image:{image_id}"}
    return image(image_id, region, name=key, **{**marks, **props})


def snapshot(*images: Image, usage: dict[str, dict[str, tuple[ImageUser, ...]]] | None = None) -> Snapshot:
    """A snapshot of KR1 and JP1; `usage` only for the regions given (a region absent was not read)."""
    read = {region: MappingProxyType(found) for region, found in (usage or {}).items()}
    return two_region_snapshot(PROJECT, images, usage=read)


def kinds(plan: Plan) -> list[tuple[str, str, str]]:
    return [(a.kind, a.key, a.region) for a in plan.actions]


def codes(findings) -> list[str]:
    return [f.code for f in findings]


LIVE = (managed(HOME, "web-base"), managed(OLD, "web-base-old"))


def test_a_delete_of_an_image_a_server_was_booted_from_is_refused_and_names_it(tmp_path):
    plan = build_plan(desired(tmp_path), snapshot(*LIVE, usage={"KR1": {OLD: (SERVER,)}}), TARGET)

    assert kinds(plan) == []
    (refusal,) = plan.refusals
    assert (refusal.code, refusal.key, refusal.region) == ("image_in_use", "web-base-old", "KR1")
    assert f"in use by server app-01 ({SERVER.id})" in refusal.message
    assert "delete_in_use: allow" in refusal.hint
    assert plan.warnings == ()


def test_a_volume_without_a_name_is_named_by_its_id(tmp_path):
    plan = build_plan(desired(tmp_path), snapshot(*LIVE, usage={"KR1": {OLD: (VOLUME,)}}), TARGET)

    assert codes(plan.refusals) == ["image_in_use"]
    assert f"in use by volume {VOLUME.id}:" in plan.refusals[0].message


def test_allow_plans_the_delete_with_a_warning_naming_the_users(tmp_path):
    state = desired(tmp_path, settings="delete_in_use: allow")
    plan = build_plan(state, snapshot(*LIVE, usage={"KR1": {OLD: (SERVER, VOLUME)}}), TARGET)

    assert kinds(plan) == [("delete", "web-base-old", "KR1")]
    assert plan.refusals == ()
    (warning,) = plan.warnings
    assert (warning.code, warning.key, warning.region) == ("image_in_use", "web-base-old", "KR1")
    assert f"server app-01 ({SERVER.id}), volume {VOLUME.id}" in warning.message
    assert "deleted anyway" in warning.message


def test_more_than_five_users_are_named_five_and_counted(tmp_path):
    users = tuple(ImageUser("server", f"10000000-0000-4000-8000-00000000000{n}", f"app-{n}") for n in range(7))
    plan = build_plan(desired(tmp_path), snapshot(*LIVE, usage={"KR1": {OLD: users}}), TARGET)

    (refusal,) = plan.refusals
    assert all(f"server app-{n} (" in refusal.message for n in range(5))
    assert "app-5" not in refusal.message and "app-6" not in refusal.message
    assert "and 2 more (7 in all)" in refusal.message


def test_a_shared_image_is_deleted_with_a_warning_that_other_projects_use_is_invisible(tmp_path):
    live = (managed(HOME, "web-base"), managed(OLD, "web-base-old", visibility="shared"))
    plan = build_plan(desired(tmp_path), snapshot(*live, usage={"KR1": {}}), TARGET)

    assert kinds(plan) == [("delete", "web-base-old", "KR1")]
    assert codes(plan.warnings) == ["shared_image_deleted"]
    assert "is shared: other projects' servers and volumes may use it" in plan.warnings[0].message


def test_a_shared_image_in_use_is_refused_and_not_warned_about(tmp_path):
    live = (managed(HOME, "web-base"), managed(OLD, "web-base-old", visibility="community"))
    plan = build_plan(desired(tmp_path), snapshot(*live, usage={"KR1": {OLD: (SERVER,)}}), TARGET)

    assert codes(plan.refusals) == ["image_in_use"] and plan.warnings == ()


def test_users_of_other_images_do_not_stop_a_delete(tmp_path):
    plan = build_plan(desired(tmp_path), snapshot(*LIVE, usage={"KR1": {HOME: (SERVER, VOLUME)}}), TARGET)

    assert kinds(plan) == [("delete", "web-base-old", "KR1")]
    assert plan.refusals == () and plan.warnings == ()


def test_users_in_another_region_do_not_stop_a_delete(tmp_path):
    """Usage is per region: an id used in JP1 says nothing about the image in KR1."""
    plan = build_plan(desired(tmp_path), snapshot(*LIVE, usage={"KR1": {}, "JP1": {OLD: (SERVER,)}}), TARGET)

    assert kinds(plan) == [("delete", "web-base-old", "KR1")] and plan.refusals == ()


def test_a_region_without_usage_data_refuses_nothing_and_is_named_for_reading(tmp_path):
    """The first of the live planning's two plans: no usage read yet, so the plan deletes, and
    usage_needed names the region to read (the second plan, with usage, refuses)."""
    state = desired(tmp_path)
    unread = snapshot(*LIVE)
    first = build_plan(state, unread, TARGET)

    assert kinds(first) == [("delete", "web-base-old", "KR1")] and first.refusals == ()
    assert usage_needed(unread, first) == ("KR1",)
    read = dataclasses.replace(unread, usage=MappingProxyType({"KR1": MappingProxyType({OLD: (SERVER,)})}))
    second = build_plan(state, read, TARGET)
    assert codes(second.refusals) == ["image_in_use"]
    assert usage_needed(read, second) == ()


def test_usage_is_needed_only_where_the_plan_deletes(tmp_path):
    state = desired(tmp_path, "web-base:\n  source: {image: " + HOME + "}\n  copies: [JP1]\n")
    live = (managed(HOME, "web-base"),)
    plan = build_plan(state, snapshot(*live), TARGET)

    assert [a.kind for a in plan.actions] and "delete" not in [a.kind for a in plan.actions]
    assert usage_needed(snapshot(*live), plan) == ()
    both = (managed(HOME, "web-base"), managed(OLD, "web-base-old", "JP1"))
    assert usage_needed(snapshot(*both), build_plan(state, snapshot(*both), TARGET)) == ("JP1",)
    read = snapshot(*both, usage={"JP1": {}})
    assert usage_needed(read, build_plan(state, read, TARGET)) == ()


def test_a_leftover_in_use_is_kept_with_a_warning_never_refused(tmp_path):
    leftover = image(LEFTOVER, name="api-base~rc-abb27d0858870cb0", status="deactivated")
    unread = snapshot(managed(HOME, "web-base"), leftover)
    assert [a.kind for a in build_plan(desired(tmp_path), unread, TARGET).actions] == ["delete"]

    plan = build_plan(desired(tmp_path), snapshot(*unread.all_images(), usage={"KR1": {LEFTOVER: (SERVER,)}}), TARGET)

    assert plan.actions == () and plan.refusals == ()
    (warning,) = plan.warnings
    assert warning.code == "leftover_kept"
    assert f"kept: it is in use by server app-01 ({SERVER.id})" in warning.message


def test_a_leftover_in_use_is_kept_even_with_allow(tmp_path):
    leftover = image(LEFTOVER, name="api-base~rc-abb27d0858870cb0", status="deactivated")
    state = desired(tmp_path, settings="delete_in_use: allow")
    plan = build_plan(
        state, snapshot(managed(HOME, "web-base"), leftover, usage={"KR1": {LEFTOVER: (VOLUME,)}}), TARGET
    )

    assert plan.actions == () and codes(plan.warnings) == ["leftover_kept"]


def test_a_refused_delete_is_not_counted_against_max_deletions(tmp_path):
    state = desired(tmp_path, settings="max_deletions: 1")
    live = (*LIVE, managed(OTHER_OLD, "web-base-older"))
    plan = build_plan(state, snapshot(*live, usage={"KR1": {OLD: (SERVER,)}}), TARGET)

    assert kinds(plan) == [("delete", "web-base-older", "KR1")]
    assert codes(plan.refusals) == ["image_in_use"], "one delete left: within max_deletions 1"


def test_a_refused_replace_leaves_no_dependency_on_it(tmp_path):
    """A stale copy is deleted, then copied again, the copy waiting for the delete: refused because the old
    copy is in use, the delete leaves the plan and nothing names it as a dependency any more."""
    state = desired(tmp_path, f"web-base:\n  source: {{image: {HOME}}}\n  copies: [JP1]\n")
    home = managed(HOME, "web-base")
    stale = managed(STALE_COPY, "web-base", "JP1", reconciler_source=f"image:{HOME}", reconciler_copy_of=OLD)
    unread = build_plan(state, snapshot(home, stale), TARGET)
    (replace,) = [a for a in unread.actions if a.kind == "delete"]
    assert any(d.id == replace.id for a in unread.actions for d in a.depends_on), "the copy waits for it"

    plan = build_plan(state, snapshot(home, stale, usage={"JP1": {STALE_COPY: (SERVER,)}}), TARGET)

    assert codes(plan.refusals) == ["image_in_use"] and plan.refusals[0].region == "JP1"
    ids = {a.id for a in plan.actions}
    assert replace.id not in ids
    assert all(d.id in ids for a in plan.actions for d in a.depends_on)
