"""The planner is pure: hand-made snapshots in, plain data out, no server and no I/O. These tests cover
what the golden cases show less directly: determinism, the dependency graph, and the field table."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import socket
import textwrap
from pathlib import Path
from types import MappingProxyType

import pytest
from planner_worlds import two_region_snapshot

from reconciler import markers
from reconciler.cloud.records import Image, Member, Server, parse_server_time
from reconciler.plan import Change, Target
from reconciler.planner import build_plan
from reconciler.snapshot import Snapshot
from reconciler.validate import load_desired_state

PROJECT = "3f0c9d2e6b7a4f0e9a1b2c3d4e5f6a7b"
PARTNER = "8989447062e04a818baf9e073fd04fa7"
TARGET = Target("simulator", PROJECT, "loopback", ("JP1", "KR1"), ".reconciler/sim-state.json")


def desired(tmp_path: Path, manifest: str, *, strict: bool = False):
    patch = "\n  protected_patch: strict" if strict else ""
    (tmp_path / "reconciler.yaml").write_text(
        f"version: 1\nset: web\ncloud:\n  kind: nhn\n  project: {PROJECT}{patch}\ndefaults:\n  region: KR1\n"
    )
    (tmp_path / "m.yaml").write_text("version: 1\nimages:\n" + textwrap.indent(textwrap.dedent(manifest), "  "))
    return load_desired_state(tmp_path)


def image(image_id: str, region: str = "KR1", *, name: str = "web", protected: bool = False, **props: str) -> Image:
    return Image(
        region=region, id=image_id, name=name, status="active", visibility=props.pop("visibility", "private"),
        protected=protected, owner=PROJECT, min_disk=0, min_ram=0, size=1024, virtual_size=4 * 1024**3, checksum="c" * 32,
        os_hash_value=None, disk_format="qcow2", container_format="bare", tags=(), created_at="2026-11-26T00:00:00Z",
        updated_at=None, properties=MappingProxyType({"os_type": "linux", **props}),
    )  # fmt: skip


def managed(image_id: str, key: str = "web", region: str = "KR1", **kwargs) -> Image:
    props = {"reconciler_set": "web", "reconciler_key": key, "reconciler_source": f"image:{image_id}"}
    props.update(kwargs.pop("props", {}))
    return image(image_id, region, **kwargs, **props)


def snapshot(*images: Image, members: dict[str, tuple[Member, ...]] | None = None) -> Snapshot:
    return two_region_snapshot(PROJECT, images, members=members or {})


HOME = "00000000-0000-4000-8000-000000000001"


def test_identical_inputs_give_identical_json_whatever_the_listing_order(tmp_path):
    state = desired(tmp_path, f"web:\n  source: {{image: {HOME}}}\n  copies: [JP1]\n  protected: true\n")
    images = [
        managed(HOME, props={"nhncloud_allow_download": "false"}),
        image("0000000a-0000-4000-8000-000000000000", name="other"),
    ]
    first = json.dumps(build_plan(state, snapshot(*images), TARGET).to_json())
    random.Random(7).shuffle(images)
    assert json.dumps(build_plan(state, snapshot(*images), TARGET).to_json()) == first


def test_planning_does_no_io(tmp_path, monkeypatch):
    state = desired(tmp_path, f"web:\n  source: {{image: {HOME}}}\n  name: web-lts\n")

    def no_network(*args, **kwargs):
        raise AssertionError("the planner opened a socket")

    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr("builtins.open", no_network)
    plan = build_plan(state, snapshot(managed(HOME)), TARGET)
    assert [a.id for a in plan.actions] == ["update:web:KR1"]


def test_copies_wait_for_downloads_and_protection_waits_for_everything(tmp_path):
    state = desired(
        tmp_path, f"web:\n  source: {{image: {HOME}}}\n  copies: [JP1]\n  protected: true\n  share: [{PARTNER}]\n"
    )
    plan = build_plan(state, snapshot(managed(HOME, props={"nhncloud_allow_download": "false"})), TARGET)
    ids = [a.id for a in plan.actions]
    deps = {a.id: {d.id for d in a.depends_on} for a in plan.actions}
    assert "update:web:KR1:download-on" in deps["copy:web:JP1"]
    assert "copy:web:JP1" in deps["update:web:KR1:download-off"]
    assert ids.index("protect:web:KR1") > ids.index("update:web:KR1:download-off")
    assert ids.index("protect:web:JP1") > ids.index(f"share:web:JP1:{PARTNER}")
    # Every action comes after all it depends on.
    for position, action_id in enumerate(ids):
        assert all(ids.index(d) < position for d in deps[action_id])
    off = next(a for a in plan.actions if a.id == "update:web:KR1:download-off")
    assert off.details["compensates"] == "update:web:KR1:download-on"
    assert off.changes["nhncloud_allow_download"].after == "false"


def test_strict_mode_brackets_each_patch_group_of_a_protected_image(tmp_path):
    state = desired(tmp_path, f"web:\n  source: {{image: {HOME}}}\n  name: web-lts\n  copies: [JP1]\n", strict=True)
    plan = build_plan(
        state, snapshot(managed(HOME, protected=True, props={"nhncloud_allow_download": "false"})), TARGET
    )
    ids = [a.id for a in plan.actions]
    for phase in ("update", "download-on", "download-off"):
        opening, closing = f"unprotect:web:KR1:{phase}", f"protect:web:KR1:{phase}"
        assert opening in ids and closing in ids
        assert next(a for a in plan.actions if a.id == closing).details["compensates"] == opening
    # A bracket never spans the copy: download-on closes before the copy starts.
    assert (
        ids.index("protect:web:KR1:download-on")
        < ids.index("copy:web:JP1")
        < ids.index("unprotect:web:KR1:download-off")
    )


def test_managed_properties_removed_when_dropped_others_left_alone(tmp_path):
    state = desired(tmp_path, f"web:\n  source: {{image: {HOME}}}\n  properties: {{login_username: ubuntu}}\n")
    live = managed(
        HOME,
        props={"reconciler_props": "login_username,old_flag", "old_flag": "1", "login_username": "root", "team": "x"},
    )
    (action,) = build_plan(state, snapshot(live), TARGET).actions
    assert {k: (c.before, c.after) for k, c in action.changes.items()} == {
        "login_username": ("root", "ubuntu"),
        "old_flag": ("1", None),
        "reconciler_props": ("login_username,old_flag", "login_username"),
    }


def test_absent_fields_are_left_alone(tmp_path):
    state = desired(tmp_path, f"web:\n  source: {{image: {HOME}}}\n")
    live = managed(HOME, name="anything", protected=True, visibility="shared", team="x")
    members = {HOME: (Member(HOME, PARTNER, "accepted"),)}
    plan = build_plan(state, snapshot(live, members=members), TARGET)
    assert plan.actions == () and plan.refusals == ()


def test_pending_members_are_warned_and_listed(tmp_path):
    state = desired(tmp_path, f"web:\n  source: {{image: {HOME}}}\n  share: [{PARTNER}]\n")
    live = managed(HOME, visibility="shared")
    plan = build_plan(state, snapshot(live, members={HOME: (Member(HOME, PARTNER, "pending"),)}), TARGET)
    assert [w.code for w in plan.warnings] == ["members_pending"]
    assert plan.to_json()["info"]["pending_members"] == [{"key": "web", "region": "KR1", "member": PARTNER}]


@pytest.mark.parametrize(
    ("before", "after", "warned"), [("web-base-v1", "web-base-v2", True), ("web-base", "web-base-lts", False)]
)
def test_a_rename_that_looks_like_a_version_bump_is_warned(tmp_path, before, after, warned):
    state = desired(tmp_path, f"web:\n  source: {{image: {HOME}}}\n  name: {after}\n")
    plan = build_plan(state, snapshot(managed(HOME, name=before)), TARGET)
    assert ("version_rename" in [w.code for w in plan.warnings]) is warned


# -- found in review ------------------------------------------------------------------------------

COPY = "00000000-0000-4000-8000-000000000002"


def test_moved_from_carries_the_copies_along(tmp_path):
    """Re-keying an image with a copy re-keys the copy too: no second copy, no deletion."""
    state = desired(tmp_path, f"web-dec:\n  source: {{image: {HOME}}}\n  moved_from: web-nov\n  copies: [JP1]\n")
    home = managed(HOME, key="web-nov")
    copy = managed(COPY, key="web-nov", region="JP1", props={"reconciler_copy_of": HOME})
    plan = build_plan(state, snapshot(home, copy), TARGET)
    assert {a.id: {k: (c.before, c.after) for k, c in a.changes.items()} for a in plan.actions} == {
        "update:web-dec:KR1:rekey": {"reconciler_key": ("web-nov", "web-dec")},
        "update:web-dec:JP1": {"reconciler_key": ("web-nov", "web-dec")},
    }
    # And once the home image is re-keyed, the copy still follows.
    rekeyed = managed(HOME, key="web-dec")
    plan = build_plan(state, snapshot(rekeyed, copy), TARGET)
    assert [a.id for a in plan.actions] == ["update:web-dec:JP1"]


def test_deletes_wait_for_everything_that_is_made(tmp_path):
    state = desired(tmp_path, f"web:\n  source: {{image: {HOME}}}\n  copies: [JP1]\n")
    gone = managed("00000000-0000-4000-8000-000000000009", key="old")
    plan = build_plan(state, snapshot(managed(HOME, props={"nhncloud_allow_download": "true"}), gone), TARGET)
    delete = next(a for a in plan.actions if a.kind == "delete")
    assert "copy:web:JP1" in {d.id for d in delete.depends_on}


def test_max_deletions_zero_means_no_deletion_at_all(tmp_path):
    state = desired(tmp_path, f"web:\n  source: {{image: {HOME}}}\n  copies: [JP1]\n")
    stale = managed(COPY, region="JP1", props={"reconciler_copy_of": "00000000-0000-4000-8000-000000000000"})
    plan = build_plan(state, snapshot(managed(HOME), stale), TARGET, max_deletions=0)
    assert [r.code for r in plan.refusals] == ["max_deletions"]


def test_a_copy_image_of_another_key_is_refused(tmp_path):
    other = "00000000-0000-4000-8000-000000000022"
    # Only the live markers say it is api's: a root declaring the id twice is refused by validation.
    state = desired(tmp_path, f"web:\n  source: {{image: {HOME}}}\n  copies: [{{region: JP1, image: {other}}}]\n")
    plan = build_plan(state, snapshot(managed(HOME), managed(other, key="api", region="JP1")), TARGET)
    assert [r.code for r in plan.refusals] == ["key_taken"]
    assert all(a.key != "web" or a.region != "JP1" for a in plan.actions)


def test_a_failed_interrupted_create_is_deleted_and_made_again(tmp_path):
    state = desired(tmp_path, "web:\n  source: {instance: web-golden-01}\n")
    broken = temporary("00000000-0000-4000-8000-000000000003", "killed")
    plan = build_plan(state, with_servers(snapshot(broken), VOLUME_SERVER), TARGET)
    leftover = f"delete:~rc-{S}{K}:KR1:00000000"
    assert [a.id for a in plan.actions] == [leftover, "create:web:KR1"]
    create = next(a for a in plan.actions if a.kind == "create")
    assert leftover in {d.id for d in create.depends_on}
    assert create.details["temporary_name"] == f"web~rc-{S}{K}"


def test_min_disk_below_the_virtual_size_is_warned(tmp_path):
    state = desired(tmp_path, f"web:\n  source: {{image: {HOME}}}\n  min_disk: 2\n")
    plan = build_plan(state, snapshot(managed(HOME)), TARGET)  # virtual size 4 GiB
    assert [w.code for w in plan.warnings] == ["min_disk_small"]
    state = desired(tmp_path, f"web:\n  source: {{image: {HOME}}}\n  min_disk: 4\n")
    assert build_plan(state, snapshot(managed(HOME)), TARGET).warnings == ()


def test_an_active_instance_still_marked_by_a_crash_gets_its_mark_cleared(tmp_path):
    """Found by the fault suite: the restart succeeded but clearing the mark failed."""
    from reconciler.cloud.records import Server

    state = desired(tmp_path, f"web:\n  source: {{image: {HOME}}}\nbatch:\n  source: {{instance: batch-01}}\n")
    batch_image = managed("00000000-0000-4000-8000-000000000007", key="batch")
    server = Server("KR1", "s1", "batch-01", "ACTIVE", None, "f", "u2.c2m4", "local", None,
                    MappingProxyType({"os_type": "linux", "reconciler_stopped_by": "web"}))  # fmt: skip
    snap = snapshot(managed(HOME), batch_image)
    snap = Snapshot(
        **{
            **{f: getattr(snap, f) for f in Snapshot.__slots__},
            "servers": MappingProxyType({("KR1", "batch-01"): server}),
        }
    )
    (action,) = build_plan(state, snap, TARGET).actions
    assert action.id == "start_instance:batch:KR1" and "left its reconciler_stopped_by mark" in action.reason.message
    assert action.expects == {"KR1/server/s1": {"status": "ACTIVE", "reconciler_stopped_by": "web"}}


# -- an empty root never deletes ------------------------------------------------------------------


def empty_root(tmp_path: Path, manifest: str | None, settings: str = ""):
    (tmp_path / "reconciler.yaml").write_text(
        f"version: 1\nset: web\ncloud:\n  kind: nhn\n  project: {PROJECT}\ndefaults:\n  region: KR1\n{settings}"
    )
    if manifest is not None:
        (tmp_path / "images").mkdir()
        (tmp_path / "images" / "m.yaml").write_text(manifest)
    return load_desired_state(tmp_path)


EMPTY_MANIFESTS = [None, "version: 1\nimages: {}\n"]
LIVE = (
    managed(HOME),
    managed(COPY, region="JP1", props={"reconciler_copy_of": HOME}),
    managed("00000000-0000-4000-8000-000000000009", key="old", protected=True),
    image("0000000a-0000-4000-8000-000000000000", name="hand-made"),
)


@pytest.mark.parametrize("manifest", EMPTY_MANIFESTS, ids=["no-manifest", "images-empty"])
def test_an_empty_root_with_live_images_plans_no_deletion_and_is_refused(tmp_path, manifest):
    state = empty_root(tmp_path, manifest)
    assert state.images == ()
    # Not even an explicit --max-deletions lifts it: only the reviewed root can.
    plan = build_plan(state, snapshot(*LIVE), TARGET, max_deletions=100)
    assert plan.actions == ()
    (refusal,) = plan.refusals
    assert (refusal.code, refusal.key, refusal.region, refusal.source) == (
        "empty_root",
        None,
        None,
        "reconciler.yaml:2",
    )
    assert refusal.message == (
        "the root declares no image, but set web has 3 live images (old KR1, web JP1 (copy), web KR1): "
        "an empty root plans no deletion"
    )
    assert "settings.allow_empty_set: true" in refusal.hint


@pytest.mark.parametrize("manifest", EMPTY_MANIFESTS, ids=["no-manifest", "images-empty"])
def test_an_empty_root_whose_set_has_no_live_image_plans_nothing_and_is_not_refused(tmp_path, manifest):
    other_set = image("0000000b-0000-4000-8000-000000000000", name="data", reconciler_set="data", reconciler_key="d")
    plan = build_plan(empty_root(tmp_path, manifest), snapshot(LIVE[-1], other_set), TARGET)
    assert (plan.actions, plan.refusals) == ((), ())


def test_allow_empty_set_plans_the_deletions_as_usual(tmp_path):
    state = empty_root(tmp_path, None, "settings:\n  allow_empty_set: true\n")
    assert state.root.settings.allow_empty_set is True
    plan = build_plan(state, snapshot(*LIVE), TARGET)
    assert sorted(a.id for a in plan.actions) == ["delete:web:JP1", "delete:web:KR1"]
    assert [r.code for r in plan.refusals] == ["protected_undeclared"]  # protection holds as usual
    plan = build_plan(state, snapshot(*LIVE), TARGET, max_deletions=1)
    assert sorted(r.code for r in plan.refusals) == ["max_deletions", "protected_undeclared"]


def test_a_root_declaring_one_image_is_not_empty(tmp_path):
    state = desired(tmp_path, f"web:\n  source: {{image: {HOME}}}\n")
    plan = build_plan(
        state, snapshot(managed(HOME), managed("00000000-0000-4000-8000-000000000009", key="old")), TARGET
    )
    assert [a.id for a in plan.actions] == ["delete:old:KR1"] and plan.refusals == ()


# -- temporary names --------------------------------------------------------

S = markers.set_token("web")
K = markers.name_token("web", "web", "KR1")
NOW = "2026-11-26T02:00:00Z"  # the server's clock at the listing, in these tests
VOLUME_SERVER = Server("KR1", "s1", "web-golden-01", "SHUTOFF", None, "f", "m2.c4m8", "volume", "v1",
                       MappingProxyType({"os_type": "linux"}))  # fmt: skip
LOCAL_SERVER = Server("KR1", "s1", "web-golden-01", "SHUTOFF", None, "f", "u2.c2m4", "local", None,
                      MappingProxyType({"os_type": "linux"}))  # fmt: skip


def temporary(
    image_id: str, status: str = "active", *, name: str | None = None, created: str = "2026-11-26T01:59:00Z", **props
) -> Image:
    base = image(image_id, name=name or markers.temporary_name("web", "web", "web", "KR1"), **props)
    return dataclasses.replace(base, status=status, created_at=created)


def with_servers(snap: Snapshot, *servers: Server, now: str | None = NOW) -> Snapshot:
    times = {"KR1": parse_server_time(now)} if now else {}
    found = {(s.region, s.name): s for s in servers}
    return dataclasses.replace(snap, servers=MappingProxyType(found), server_time=MappingProxyType(times))


TOKENS = [
    ("the new form: S then K", f"web~rc-{S}{K}", markers.Token(S, K)),
    ("the old form, written before v2: K only", f"web~rc-{K}", markers.Token(None, K)),
    ("no token at all", "web-base", None),
    ("the separator alone", "web~rc-", None),
    ("15 hex is neither form", "web~rc-" + "a" * 15, None),
    ("17 hex is neither form", "web~rc-" + "a" * 17, None),
    ("uppercase hex: the tool writes lowercase", f"web~rc-{K.upper()}", None),
    ("a token that is not at the end", f"web~rc-{K}-copy", None),
    ("only the last token counts", f"a~rc-{K}~rc-{S}{K}", markers.Token(S, K)),
    ("a name that is only a token", f"~rc-{K}", markers.Token(None, K)),
]


@pytest.mark.parametrize(("reason", "name", "want"), TOKENS, ids=[t[0] for t in TOKENS])
def test_a_token_is_rc_and_16_or_8_lowercase_hex_at_the_end_of_a_name(reason, name, want):
    got = markers.parse_token(name)
    assert got == want, f"{reason}: want {want}, got {got}"
    assert markers.token_of(name) == (want.name_token if want else None)


def test_temporary_names_carry_the_set_token_and_todays_name_token():
    assert S == hashlib.sha256(b"web").hexdigest()[:8]
    name = markers.temporary_name("web-base", "web", "web", "KR1")
    assert name == f"web-base~rc-{S}{K}" and len(name) == len("web-base") + 20
    assert markers.CREATED_NAME_MAX == 235
    # A leftover's key stands for the images under its token, and only for this set's S (apply's guard).
    assert markers.name_token("web", f"~rc-{S}{K}", "KR1") == K
    assert markers.name_token("other", f"~rc-{S}{K}", "KR1") != K
    assert markers.is_leftover_of("web", f"~rc-{S}{K}", "KR1", f"x~rc-{K}", "KR1")
    assert not markers.is_leftover_of("web", f"~rc-{S}{K}", "JP1", f"x~rc-{K}", "KR1")
    assert not markers.is_leftover_of("web", f"~rc-{S}{K}", "KR1", f"x~rc-{markers.set_token('x')}{K}", "KR1")


def test_a_create_still_running_is_left_alone_and_never_made_twice(tmp_path):
    state = desired(tmp_path, "web:\n  source: {instance: web-golden-01}\n")
    saving = temporary("00000000-0000-4000-8000-000000000003", "saving")  # a minute old
    plan = build_plan(state, with_servers(snapshot(saving), VOLUME_SERVER), TARGET)
    assert plan.actions == () and plan.refusals == ()
    assert [(w.code, w.key) for w in plan.warnings] == [("create_in_progress", "web")]
    # Without the server's time its age is unknown: still left alone, never deleted.
    plan = build_plan(state, with_servers(snapshot(saving), VOLUME_SERVER, now=None), TARGET)
    assert plan.actions == ()


def test_a_create_older_than_the_timeout_is_a_leftover(tmp_path):
    state = desired(tmp_path, "web:\n  source: {instance: web-golden-01}\n")
    saving = temporary("00000000-0000-4000-8000-000000000003", "saving", created="2026-11-26T01:30:00Z")
    snap = with_servers(snapshot(saving), VOLUME_SERVER)
    assert build_plan(state, snap, TARGET).actions == ()  # 30 min old: within the default 3600 s
    plan = build_plan(state, snap, TARGET, timeout=600)  # apply --timeout 600
    assert [a.id for a in plan.actions] == [f"delete:~rc-{S}{K}:KR1:00000000", "create:web:KR1"]
    assert plan.actions[0].reason.code == "leftover" and "600 s" in plan.actions[0].reason.message


def test_the_local_disk_path_finishes_only_an_image_of_the_declared_server(tmp_path):
    state = desired(tmp_path, "web:\n  source: {instance: web-golden-01}\n")
    ours = temporary("00000000-0000-4000-8000-000000000003", instance_uuid="s1")
    (adopt,) = build_plan(state, with_servers(snapshot(ours), LOCAL_SERVER), TARGET).actions
    assert (adopt.id, adopt.reason.code, adopt.changes["name"].after) == ("adopt:web:KR1", "interrupted_create", "web")
    for stray in (temporary(ours.id, instance_uuid="another-server"), temporary(ours.id)):
        plan = build_plan(state, with_servers(snapshot(stray), LOCAL_SERVER), TARGET)
        assert [a.id for a in plan.actions] == [f"delete:~rc-{S}{K}:KR1:00000000", "create:web:KR1"]


def test_a_finishable_image_of_a_key_that_has_its_image_is_a_duplicate(tmp_path):
    state = desired(tmp_path, "web:\n  source: {instance: web-golden-01}\n")
    home = managed(HOME, props={"reconciler_source": "instance:s1"})
    late = temporary("00000000-0000-4000-8000-000000000003", reconciler_set="web", reconciler_key="web")
    (delete,) = build_plan(state, with_servers(snapshot(home, late), VOLUME_SERVER), TARGET).actions
    assert (delete.id, delete.reason.code) == ("delete:web:KR1:00000000", "duplicate")


def test_temporary_names_of_other_sets_and_unattributable_ones_are_never_touched(tmp_path):
    state = desired(tmp_path, f"web:\n  source: {{image: {HOME}}}\n")
    others = (
        temporary("00000000-0000-4000-8000-000000000003", "killed", name=f"x~rc-{markers.set_token('data')}{K}"),
        temporary("00000000-0000-4000-8000-000000000004", "killed", reconciler_set="data", reconciler_key="x"),
        temporary("00000000-0000-4000-8000-000000000005", "killed", name="legacy~rc-12345678"),
    )
    plan = build_plan(state, snapshot(managed(HOME), *others), TARGET)
    assert plan.actions == () and plan.warnings == ()
    info = plan.to_json()["info"]
    assert info["unattributed_temporary"] == [
        {"region": "KR1", "image_id": others[2].id, "name": "legacy~rc-12345678", "status": "killed"}
    ]
    assert (info["this_set"], info["other_sets"], info["unmanaged"]) == (1, 1, 2)


def test_leftovers_fit_max_deletions_or_are_kept_with_a_warning_never_refused(tmp_path):
    state = desired(tmp_path, "web:\n  source: {instance: web-golden-01}\n")
    token_of = markers.name_token
    killed = temporary("00000000-0000-4000-8000-000000000003", "killed")  # the create waits for its delete
    gone = temporary(
        "00000000-0000-4000-8000-000000000004", "killed", name=f"api~rc-{S}{token_of('web', 'api', 'KR1')}"
    )
    old = managed("00000000-0000-4000-8000-000000000009", key="old")  # an identity that left: a delete
    snap = with_servers(snapshot(killed, gone, old), VOLUME_SERVER)
    plan = build_plan(state, snap, TARGET, max_deletions=2)
    assert {a.id for a in plan.actions if a.kind == "delete"} == {f"delete:~rc-{S}{K}:KR1:00000000", "delete:old:KR1"}
    assert plan.refusals == ()
    kept = [(w.code, w.key) for w in plan.warnings if w.code != "linux_machine_id"]
    assert kept == [("leftover_kept", f"~rc-{S}{token_of('web', 'api', 'KR1')}")]
    plan = build_plan(state, snap, TARGET, max_deletions=0)
    assert [r.code for r in plan.refusals] == ["max_deletions"]  # for delete:old only
    assert [w.code for w in plan.warnings if w.code != "linux_machine_id"] == ["leftover_kept", "leftover_kept"]
    create = next(a for a in plan.actions if a.kind == "create")
    assert create.depends_on == ()  # a kept leftover leaves no dangling dependency


def test_a_protected_leftover_is_kept_with_a_warning(tmp_path):
    state = desired(tmp_path, f"web:\n  source: {{image: {HOME}}}\n")
    stuck = temporary("00000000-0000-4000-8000-000000000003", "killed", name=f"api~rc-{S}12345678", protected=True)
    plan = build_plan(state, snapshot(managed(HOME), stuck), TARGET)
    assert plan.actions == () and plan.refusals == ()
    assert [w.code for w in plan.warnings] == ["leftover_kept"]


def test_a_partial_plan_deletes_no_leftover_of_a_key_it_does_not_consider(tmp_path):
    state = desired(tmp_path, f"web:\n  source: {{image: {HOME}}}\n")
    stray = temporary("00000000-0000-4000-8000-000000000003", "killed", name=f"api~rc-{S}12345678")
    assert [a.key for a in build_plan(state, snapshot(managed(HOME), stray), TARGET).actions] == [f"~rc-{S}12345678"]
    plan = build_plan(state, snapshot(managed(HOME), stray), TARGET, targets=frozenset({"web"}))
    assert plan.actions == ()


@pytest.mark.parametrize(("status", "housekeeping"), [("killed", True), ("saving", True), ("active", False)])
def test_deleting_a_leftover_is_housekeeping_unless_it_is_active(tmp_path, status, housekeeping):
    from reconciler.plan_match import is_housekeeping

    state = desired(tmp_path, f"web:\n  source: {{image: {HOME}}}\n")
    stray = temporary("00000000-0000-4000-8000-000000000003", status, name=f"api~rc-{S}12345678")
    snap = with_servers(snapshot(managed(HOME), stray), now="2026-11-26T09:00:00Z")  # long past the timeout
    (delete,) = build_plan(state, snap, TARGET).actions
    assert (delete.reason.code, delete.expects[f"KR1/{stray.id}"]["status"]) == ("leftover", status)
    assert is_housekeeping(delete, set()) is housekeeping


# -- issue 17: what a hostile review found ---------------------------------------------------------


def other_set(image_id: str, key: str, set_name: str = "web-old") -> Image:
    return image(image_id, name=key, reconciler_set=set_name, reconciler_key=key, reconciler_source="instance:s1")


def codes(findings) -> list[str]:
    return [f.code for f in findings if f.code != "linux_machine_id"]


def test_a_protected_copy_left_out_of_copies_is_refused_with_the_per_copy_override_as_the_hint(tmp_path):
    home = managed(HOME, name="web-2026-12", protected=True)
    copy = managed(COPY, region="JP1", name="web-2026-12", protected=True, props={"reconciler_copy_of": HOME})
    state = desired(tmp_path, f"web:\n  source: {{image: {HOME}}}\n  protected: true\n")
    (refusal,) = build_plan(state, snapshot(home, copy), TARGET).refusals
    assert (refusal.code, refusal.region) == ("protected_undeclared", "JP1")
    assert "copies: [{region: JP1, protected: false}] on web" in refusal.hint
    assert "set protected: false on web" not in refusal.hint  # that unprotects the home image, not the copy
    # Following the hint unprotects the copy alone; then leaving it out deletes it.
    state = desired(
        tmp_path,
        f"web:\n  source: {{image: {HOME}}}\n  protected: true\n  copies: [{{region: JP1, protected: false}}]\n",
    )
    plan = build_plan(state, snapshot(home, copy), TARGET)
    assert ([a.id for a in plan.actions], plan.refusals) == (["unprotect:web:JP1"], ())


@pytest.mark.parametrize("copy_too", [False, True])
def test_under_strict_protection_adopting_a_protected_image_is_bracketed(tmp_path, copy_too):
    copies = f"  copies: [{{region: JP1, image: {COPY}}}]\n" if copy_too else ""
    state = desired(
        tmp_path, f"web:\n  source: {{image: {HOME}}}\n  name: web-lts\n  protected: true\n{copies}", strict=True
    )
    live = [image(HOME, protected=True)] + ([image(COPY, "JP1", protected=True)] if copy_too else [])
    plan = build_plan(state, snapshot(*live), TARGET)
    by_id = {a.id: a for a in plan.actions}
    regions = ("KR1", "JP1") if copy_too else ("KR1",)
    assert set(by_id) == {f"{kind}:web:{r}{suffix}" for r in regions for kind, suffix in
                          (("unprotect", ":adopt"), ("adopt", ""), ("protect", ":adopt"))}  # fmt: skip
    for region, ref in zip(regions, (f"KR1/{HOME}", f"JP1/{COPY}"), strict=False):
        adopt = by_id[f"adopt:web:{region}"]
        assert [d.id for d in adopt.depends_on] == [f"unprotect:web:{region}:adopt"]
        assert adopt.expects[ref]["protected"] is False
        assert adopt.changes["name"].after == "web-lts"  # the declared fields still go in the adopt's one PATCH
        closing = by_id[f"protect:web:{region}:adopt"]
        assert closing.details["compensates"] == f"unprotect:web:{region}:adopt"
        assert [d.id for d in closing.depends_on] == [f"adopt:web:{region}"]
    assert plan.refusals == ()


def test_permissive_adoption_of_a_protected_image_is_one_adopt_as_before(tmp_path):
    state = desired(tmp_path, f"web:\n  source: {{image: {HOME}}}\n  protected: true\n")
    (adopt,) = build_plan(state, snapshot(image(HOME, protected=True)), TARGET).actions
    assert adopt.id == "adopt:web:KR1" and "protected" not in adopt.expects[f"KR1/{HOME}"]


@pytest.mark.parametrize("block", ["", "  properties: {}\n"])
def test_removing_the_properties_block_removes_the_keys_the_tool_set(tmp_path, block):
    state = desired(tmp_path, f"web:\n  source: {{image: {HOME}}}\n{block}")
    live = managed(HOME, props={"login_username": "ubuntu", "team": "web", "reconciler_props": "login_username"})
    (update,) = build_plan(state, snapshot(live), TARGET).actions
    assert update.changes == {
        "login_username": Change("ubuntu", None),
        "reconciler_props": Change("login_username", None),
    }  # fmt: skip
    # team, which the tool never set, is left alone.


def test_without_a_properties_block_or_a_marker_properties_are_left_alone(tmp_path):
    state = desired(tmp_path, f"web:\n  source: {{image: {HOME}}}\n")
    assert build_plan(state, snapshot(managed(HOME, props={"login_username": "ubuntu"})), TARGET).actions == ()


TWO_KEYS = "web:\n  source: {instance: web-golden-01}\napi:\n  source: {instance: web-golden-01}\n"


@pytest.mark.parametrize(
    ("live", "excludes", "refused", "warned"),
    [
        pytest.param([("web", "web-old")], (), False, ["web"], id="one shared key: a warning"),
        pytest.param([("web", "web-old"), ("api", "web-old")], (), True, [], id="exactly two keys of one set"),
        pytest.param([("web", "web-old"), ("api", "data")], (), False, ["api", "web"], id="keys of two sets"),
        pytest.param([("web", "web-old"), ("api", "web-old")], ("api",), False, ["web"], id="one of two excluded"),
        pytest.param([("web", "web-old"), ("web", "data"), ("api", "data")], (), True, [], id="all under data"),
    ],
)
def test_renamed_set_needs_two_live_keys_all_of_one_other_set(tmp_path, live, excludes, refused, warned):
    state = desired(tmp_path, TWO_KEYS)
    images = [other_set(f"00000000-0000-4000-8000-00000000001{i}", k, s) for i, (k, s) in enumerate(live)]
    plan = build_plan(state, with_servers(snapshot(*images), VOLUME_SERVER), TARGET, excludes=frozenset(excludes))
    assert ("renamed_set" in codes(plan.refusals)) is refused
    assert sorted(w.key for w in plan.warnings if w.code == "key_in_other_set") == warned


def test_a_set_with_a_live_image_is_no_renamed_set_and_warns_nothing(tmp_path):
    state = desired(tmp_path, TWO_KEYS)
    images = [
        managed(HOME, key="web", props={"reconciler_source": "instance:s1"}),
        other_set(COPY, "web"),
        other_set("00000000-0000-4000-8000-000000000003", "api"),
    ]
    plan = build_plan(state, with_servers(snapshot(*images), VOLUME_SERVER), TARGET)
    assert codes(plan.refusals) == [] and codes(plan.warnings) == []


@pytest.mark.parametrize(
    ("declared", "servers", "warned"),
    [
        pytest.param("web-golden-01", (), False, id="the named instance was deleted after imaging"),
        pytest.param("web-golden-01", (VOLUME_SERVER,), False, id="the named instance is the one imaged"),
        pytest.param("00000000-0000-4000-8000-0000000000aa", (), True, id="another instance, by id"),
    ],
)
def test_a_deleted_source_instance_is_no_create_time_change(tmp_path, declared, servers, warned):
    state = desired(tmp_path, f"web:\n  source: {{instance: {declared}}}\n")
    live = managed(HOME, props={"reconciler_source": "instance:s1"})
    plan = build_plan(state, with_servers(snapshot(live), *servers), TARGET)
    assert plan.actions == ()
    assert ("create_time_field" in codes(plan.warnings)) is warned


@pytest.mark.parametrize(
    ("before", "after", "warned"),
    [
        ("web-2026-12", "web-base-2026-12", False),
        ("web-2026-11", "web-2026-12", True),
        ("ubuntu-22.04", "ubuntu-lts-22.04", False),
        ("web-v1", "web-v01", False),
        ("web-v1", "web-v1-v2", True),
    ],
)
def test_version_rename_fires_only_when_a_version_number_changes(tmp_path, before, after, warned):
    state = desired(tmp_path, f"web:\n  source: {{image: {HOME}}}\n  name: {after}\n")
    plan = build_plan(state, snapshot(managed(HOME, name=before)), TARGET)
    assert ("version_rename" in codes(plan.warnings)) is warned


def test_two_keys_named_alike_in_one_region_are_warned(tmp_path):
    other = "00000000-0000-4000-8000-000000000003"
    manifest = f"web:\n  source: {{image: {HOME}}}\n  name: base\napi:\n  source: {{image: {other}}}\n  name: base\n"
    plan = build_plan(desired(tmp_path, manifest), snapshot(managed(HOME), managed(other, key="api")), TARGET)
    (warning,) = [w for w in plan.warnings if w.code == "duplicate_name"]
    assert (warning.key, warning.region) == ("api", "KR1") and "api and web" in warning.message
    # A copy in JP1 under the same name is another region: no warning there.
    manifest = f"web:\n  source: {{image: {HOME}}}\n  name: base\n  copies: [{{region: JP1, name: other}}]\n"
    manifest += f"api:\n  source: {{image: {other}}}\n  name: other\n"
    plan = build_plan(desired(tmp_path, manifest), snapshot(managed(HOME), managed(other, key="api")), TARGET)
    assert "duplicate_name" not in codes(plan.warnings)


def test_a_new_image_named_like_an_unmanaged_one_is_warned_once(tmp_path):
    bystander = image(COPY, name="web")
    state = desired(tmp_path, "web:\n  source: {instance: web-golden-01}\n")
    plan = build_plan(state, with_servers(snapshot(bystander), VOLUME_SERVER), TARGET)
    (warning,) = [w for w in plan.warnings if w.code == "unmanaged_same_name"]
    assert warning.key == "web" and COPY in warning.message
    # Once made, the name is no longer new: no warning on every later plan.
    made = managed(HOME, name="web", props={"reconciler_source": "instance:s1"})
    plan = build_plan(state, with_servers(snapshot(bystander, made), VOLUME_SERVER), TARGET)
    assert codes(plan.warnings) == []


@pytest.mark.parametrize(("share", "warned"), [(f"  share: [{PARTNER}]\n", True), ("", True), ("  share: []\n", False)])
def test_a_partner_that_rejected_the_share_is_warned_unless_it_is_being_removed(tmp_path, share, warned):
    state = desired(tmp_path, f"web:\n  source: {{image: {HOME}}}\n{share}")
    live = managed(HOME, visibility="shared")
    plan = build_plan(state, snapshot(live, members={HOME: (Member(HOME, PARTNER, "rejected"),)}), TARGET)
    assert ("share_rejected" in codes(plan.warnings)) is warned
    assert plan.to_json()["info"]["pending_members"] == []


def test_under_strict_protection_re_keying_a_protected_image_is_bracketed(tmp_path):
    state = desired(tmp_path, f"web:\n  source: {{image: {HOME}}}\n  moved_from: web-nov\n", strict=True)
    plan = build_plan(state, snapshot(managed(HOME, key="web-nov", protected=True)), TARGET)
    ids = [a.id for a in plan.actions]
    assert ids == ["unprotect:web:KR1:rekey", "update:web:KR1:rekey", "protect:web:KR1:rekey"]
    rekey = plan.actions[1]
    assert rekey.expects[f"KR1/{HOME}"] == {"reconciler_set": "web", "reconciler_key": "web-nov", "protected": False}


def test_an_unmanaged_image_this_plan_adopts_and_renames_leaves_its_old_name_free(tmp_path):
    other = "00000000-0000-4000-8000-000000000003"
    manifest = f"web:\n  source: {{image: {HOME}}}\n  name: web-lts\napi:\n  source: {{image: {other}}}\n  name: web\n"
    plan = build_plan(desired(tmp_path, manifest), snapshot(image(HOME, name="web"), managed(other, key="api")), TARGET)
    assert codes(plan.warnings) == []


# Markers the tool never writes (issue 17, hostile review): anyone in the project can set properties, and an
# image with `reconciler_set: web` and `reconciler_key: "a:b"` made the plan hold `delete:a:b:KR1`, an id
# no saved plan can hold (apply --plan then refused every saved plan). Such an image is nobody's.
THIRD = "00000000-0000-4000-8000-000000000003"
INVALID_KEYS = ["a:b", "old\x1b[2J\n  - delete prod KR1", "", " web", "k" * 129, "-web", "web\u202e"]


@pytest.mark.parametrize("key", INVALID_KEYS)
def test_an_image_with_a_key_the_tool_never_writes_is_nobodys_and_warned(tmp_path, key):
    state = desired(tmp_path, f"web:\n  source: {{image: {HOME}}}\n")
    odd = managed(COPY, key=key, name="odd")
    odd_copy = managed(THIRD, key=key, region="JP1", name="odd", props={"reconciler_copy_of": COPY})
    temp = temporary("0000000e-0000-4000-8000-000000000000", "killed", reconciler_set="web", reconciler_key=key)
    plan = build_plan(state, snapshot(managed(HOME), odd, odd_copy, temp), TARGET)
    assert [a.id for a in plan.actions] == [] and plan.refusals == ()
    warned = [w for w in plan.warnings if w.code == "invalid_markers"]
    assert sorted((w.region, w.message.split()[1]) for w in warned) == sorted(
        [("KR1", COPY), ("JP1", THIRD), ("KR1", "0000000e-0000-4000-8000-000000000000")]
    )
    # Quoted as data (the renderers show hidden characters as escapes, tests/test_hostile_render.py).
    assert all(w.key is None and f'reconciler_key "{key}"' in w.message for w in warned)
    assert plan.info["this_set"] == 1 and plan.info["unmanaged"] == 3


def test_a_set_marker_the_tool_never_writes_is_no_other_set(tmp_path):
    state = desired(tmp_path, "web:\n  source: {instance: s1}\napi:\n  source: {instance: s1}\n")
    # Two declared keys live under one "set": that would be renamed_set, were "old set" a set at all.
    live = [other_set(HOME, "web", "old set"), other_set(COPY, "api", "old set")]
    plan = build_plan(state, with_servers(snapshot(*live), VOLUME_SERVER), TARGET)
    assert "renamed_set" not in codes(plan.refusals) and "key_in_other_set" not in codes(plan.warnings)
    assert codes(plan.warnings).count("invalid_markers") == 2 and plan.info["other_sets"] == 0
    assert all('reconciler_set "old set"' in w.message for w in plan.warnings if w.code == "invalid_markers")


@pytest.mark.parametrize("field", ["source", "copy"])
def test_an_image_named_by_id_with_invalid_markers_is_never_adopted(tmp_path, field):
    if field == "source":
        state = desired(tmp_path, f"web:\n  source: {{image: {HOME}, takeover: true}}\n")
        live = [image(HOME, reconciler_set="web", reconciler_key="a:b")]
    else:
        state = desired(tmp_path, f"web:\n  source: {{image: {HOME}}}\n  copies: [{{region: JP1, image: {COPY}}}]\n")
        live = [managed(HOME), image(COPY, "JP1", reconciler_set="x:y", reconciler_key="web")]
    plan = build_plan(state, snapshot(*live), TARGET)
    assert not [a for a in plan.actions if a.kind == "adopt"]
    (refusal,) = plan.refusals
    assert refusal.code == "foreign_markers" and "markers the tool never writes" in refusal.message
    assert "invalid_markers" in codes(plan.warnings)


def test_marker_patterns_are_the_schemas_set_name_and_key_patterns():
    schemas = Path(__file__).resolve().parents[2] / "schemas"
    manifest = json.loads((schemas / "manifest.schema.json").read_text())
    root = json.loads((schemas / "root.schema.json").read_text())
    assert f"^{markers.KEY_PATTERN.pattern}$" == manifest["$defs"]["key"]["pattern"]
    assert f"^{markers.SET_PATTERN.pattern}$" == root["properties"]["set"]["pattern"]


# -- hostile cloud data (issue 17): members, image ids and download records anyone in the project can set ----


def test_a_member_that_is_no_project_id_is_never_acted_on_and_warned_once(tmp_path):
    """`..` went out as DELETE of the image; a newline in a member broke every saved plan's action ids."""
    state = desired(tmp_path, f"web:\n  source: {{image: {HOME}}}\n  share: [{PARTNER}]\n")
    odd = ("..", "x\n  - delete web", PARTNER.upper())
    live = tuple(Member(HOME, m, "accepted") for m in (PARTNER, *odd))
    plan = build_plan(state, snapshot(managed(HOME, visibility="shared"), members={HOME: live}), TARGET)
    assert plan.actions == ()
    (warning,) = plan.warnings
    assert (warning.code, warning.key, warning.region) == ("invalid_member", "web", "KR1")
    assert HOME in warning.message and all(f'"{m}"' in warning.message for m in odd)
    # share: [] unshares the project id only, and the image is made private as ever.
    state = desired(tmp_path, f"web:\n  source: {{image: {HOME}}}\n  share: []\n")
    plan = build_plan(state, snapshot(managed(HOME, visibility="shared"), members={HOME: live}), TARGET)
    assert [(a.id, a.details.get("member")) for a in plan.actions] == [(f"unshare:web:KR1:{PARTNER}", PARTNER)]
    assert plan.actions[0].changes["visibility"] == Change("shared", "private")
    assert codes(plan.warnings) == ["invalid_member"]


SHARED_PREFIX = ("abcdef12-0000-4000-8000-000000000003", "abcdef12-0000-4000-8000-000000000004")


def test_duplicates_whose_ids_share_8_characters_get_their_full_ids(tmp_path):
    """Glance lets a client choose an image id: the 8-character suffix named two deletes alike (a crash)."""
    state = desired(tmp_path, "web:\n  source: {instance: web-golden-01}\n")
    home = managed(HOME, props={"reconciler_source": "instance:s1"})
    late = [temporary(i, reconciler_set="web", reconciler_key="web") for i in SHARED_PREFIX]
    plan = build_plan(state, with_servers(snapshot(home, *late), VOLUME_SERVER), TARGET)
    assert sorted(a.id for a in plan.actions) == [f"delete:web:KR1:{i}" for i in SHARED_PREFIX]


def test_leftovers_whose_ids_share_8_characters_keep_what_waits_for_them(tmp_path):
    """The create waits for every leftover under its temporary name: by their full ids when 8 characters
    would name two, by 8 characters otherwise (as before)."""
    state = desired(tmp_path, "web:\n  source: {instance: web-golden-01}\n")
    for ids, suffixes in [(SHARED_PREFIX, SHARED_PREFIX), ((HOME, SHARED_PREFIX[0]), ("00000000", "abcdef12"))]:
        old = [temporary(i, "saving", created="2026-11-26T01:30:00Z") for i in ids]
        plan = build_plan(state, with_servers(snapshot(*old), VOLUME_SERVER), TARGET, timeout=600)
        deletes = [f"delete:~rc-{S}{K}:KR1:{suffix}" for suffix in suffixes]
        assert [a.id for a in plan.actions] == [*deletes, "create:web:KR1"]
        assert sorted(d.id for d in plan.actions[-1].depends_on) == deletes


def download_plan(tmp_path, flag: str | None, was: str | None, *, copies: bool = False):
    manifest = f"web:\n  source: {{image: {HOME}}}\n" + ("  copies: [JP1]\n" if copies else "")
    props = {k: v for k, v in {"nhncloud_allow_download": flag, "reconciler_download_was": was}.items() if v}
    return build_plan(desired(tmp_path, manifest), snapshot(managed(HOME, props=props)), TARGET)


def test_a_download_record_with_the_flag_off_is_only_cleared(tmp_path):
    """reconciler_download_was "x\\ny" set by hand with the flag "false": the flag is not restored to the
    text (it read "false" -> "x\\ny", 'an interrupted run left downloads enabled'); the marker is cleared."""
    plan = download_plan(tmp_path, "false", "x\ny")
    (update,) = plan.actions
    assert update.changes == {"reconciler_download_was": Change("x\ny", None)}
    assert update.reason.code == "download_marker_stale"
    assert plan.warnings == ()


@pytest.mark.parametrize(
    ("was", "restore", "warned"),
    [("false", "false", False), ("absent", None, False), ("true", "true", False), ("x\ny", "false", True)],
)
def test_a_flag_left_on_is_restored_only_to_true_false_or_none(tmp_path, was, restore, warned):
    plan = download_plan(tmp_path, "true", was)
    (update,) = plan.actions
    assert update.reason.code == "download_left_enabled"
    assert update.changes.get("nhncloud_allow_download", Change("true", "true")) == Change("true", restore)
    assert codes(plan.warnings) == (["invalid_download_was"] if warned else [])


def test_copies_never_restore_the_flag_to_odd_text(tmp_path):
    # Left on by a crash, with odd text recorded: restored to "false" after the copies, with a warning.
    plan = download_plan(tmp_path, "true", "x\ny", copies=True)
    off = next(a for a in plan.actions if a.id == "update:web:KR1:download-off")
    assert off.changes["nhncloud_allow_download"] == Change("true", "false")
    assert codes(plan.warnings) == ["invalid_download_was"]
    # A stale record with the flag off: enabled as usual, recording the flag's value, which is restored.
    plan = download_plan(tmp_path, "false", "x\ny", copies=True)
    on = next(a for a in plan.actions if a.id == "update:web:KR1:download-on")
    off = next(a for a in plan.actions if a.id == "update:web:KR1:download-off")
    assert on.changes["reconciler_download_was"] == Change("x\ny", "false")
    assert off.changes["nhncloud_allow_download"] == Change("true", "false")
    # An odd flag value is recorded as "false" (only "true" allows downloads), never as the text.
    plan = download_plan(tmp_path, "yes\n", None, copies=True)
    on = next(a for a in plan.actions if a.id == "update:web:KR1:download-on")
    off = next(a for a in plan.actions if a.id == "update:web:KR1:download-off")
    assert on.changes["reconciler_download_was"] == Change(None, "false")
    assert off.changes["nhncloud_allow_download"] == Change("true", "false")


COPY_A, COPY_B = "00000000-0000-4000-8000-00000000000a", "00000000-0000-4000-8000-00000000000b"


@pytest.mark.parametrize(
    ("manifest", "live"),
    [
        # Two copies of a key in a region no longer declared (an interrupted copy left a second one).
        (f"web:\n  source: {{image: {HOME}}}\n", [managed(HOME), managed(COPY_A, region="JP1",
         props={"reconciler_copy_of": HOME}), managed(COPY_B, region="JP1", props={"reconciler_copy_of": HOME})]),
        # Two copies of a key no longer declared at all.
        ("other:\n  source: {image: 00000000-0000-4000-8000-0000000000ff}\n", [managed(HOME), managed(
         COPY_A, region="JP1", props={"reconciler_copy_of": HOME}), managed(COPY_B, region="JP1",
         props={"reconciler_copy_of": HOME})]),
        # A home image and a copy of an undeclared key in one region.
        ("other:\n  source: {image: 00000000-0000-4000-8000-0000000000ff}\n", [managed(HOME), managed(
         COPY_A, props={"reconciler_copy_of": HOME})]),
    ],
)  # fmt: skip
def test_two_images_of_one_key_in_one_region_get_deletes_with_their_own_ids(tmp_path, manifest, live):
    state = desired(tmp_path, manifest)
    live_ids = {image.id for image in live}
    owned = [image("00000000-0000-4000-8000-0000000000ff", name="other")]
    plan = build_plan(state, snapshot(*live, *owned), TARGET)
    deletes = [a for a in plan.actions if a.kind == "delete"]
    kept = {HOME} if HOME in manifest else set()  # the declared home image stays
    assert {a.image_id for a in deletes} == live_ids - kept
    assert len({a.id for a in deletes}) == len(deletes)
