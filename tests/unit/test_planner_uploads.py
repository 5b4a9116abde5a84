"""Uploads in the planner (issue 25): a key whose source is a file or a URL, on hand-built snapshots (the
bytes as plan time sees them are `Snapshot.artifacts`), no server, no disk, no network."""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path
from types import MappingProxyType

from planner_worlds import two_region_snapshot

from reconciler import markers
from reconciler.cloud.records import Image
from reconciler.live import Artifact, Snapshot
from reconciler.plan import Action, Reason, Target, format_needed
from reconciler.plan_match import match
from reconciler.planner import build_plan
from reconciler.planner.context import PlanContext, Scope
from reconciler.planner.identity import declared_source
from reconciler.render.markdown import MARKDOWN
from reconciler.render.text import describe_action
from reconciler.validate import load_desired_state

PROJECT = "3f0c9d2e6b7a4f0e9a1b2c3d4e5f6a7b"
TARGET = Target("simulator", PROJECT, "loopback", ("JP1", "KR1"), ".reconciler/sim-state.json")
SHA256 = "3a7bd3e2360a3d29eea436fcfb7e44c735d117c42d1c1835420b6b9942dd4f1b"
OTHER256 = "cd34" + "0" * 60
SHA512 = "ab" * 64
KEY = "web-2026-12"
FILE = "build/web-2026-12.qcow2"
URL = "https://artifacts.example.com/web-2026-12.qcow2"
NOW = "2026-11-26T00:00:00Z"
NOW_EPOCH = 1795651200.0  # NOW, by the server's clock


def root(tmp_path: Path, body: str) -> Path:
    (tmp_path / "reconciler.yaml").write_text(
        f"version: 1\nset: web\ncloud:\n  kind: nhn\n  project: {PROJECT}\ndefaults:\n  region: KR1\n"
    )
    (tmp_path / "m.yaml").write_text("version: 1\n" + textwrap.dedent(body))
    return tmp_path


def upload(tmp_path: Path, source: str = f"file: {FILE}", *, digest: str = f"sha256: {SHA256}", extra: str = ""):
    body = f"""\
    images:
      {KEY}:
        source:
          {source}
          {digest}
          disk_format: qcow2
        properties: {{os_type: linux}}
    """
    return load_desired_state(root(tmp_path, body.rstrip(" ") + textwrap.indent(textwrap.dedent(extra), " " * 8)))


def image(image_id: str, name: str, *, status: str = "active", region: str = "KR1", **props: str) -> Image:
    """A private qcow2 image of the project with os_type linux and `props` (`algo` and `hash`: Glance's
    os_hash_algo and os_hash_value)."""
    algo, value = props.pop("algo", None), props.pop("hash", None)
    return Image(
        region=region, id=image_id, name=name, status=status, visibility="private", protected=False, owner=PROJECT,
        min_disk=0, min_ram=0, size=1024, virtual_size=1024, checksum="c" * 32, os_hash_value=value,
        disk_format="qcow2", container_format="bare", tags=(), created_at=NOW, updated_at=None,
        properties=MappingProxyType({"os_type": "linux", **props}), os_hash_algo=algo,
    )  # fmt: skip


def snapshot(*images: Image, artifacts: dict[str, Artifact] | None = None) -> Snapshot:
    server_time = {"JP1": NOW_EPOCH, "KR1": NOW_EPOCH}
    return two_region_snapshot(PROJECT, images, server_time=server_time, artifacts=artifacts or {})


def built(size: int = 1288490189) -> dict[str, Artifact]:
    return {KEY: Artifact(FILE, found=True, size=size)}


def home(content: str = f"sha256:{SHA256}", **kwargs: str) -> Image:
    marks = {markers.SET: "web", markers.KEY: KEY, markers.SOURCE: content, markers.PROPS: "os_type"}
    return image("00000000-0000-4000-8000-000000000001", KEY, **marks, **kwargs)


def the(plan, kind: str) -> Action:
    (found,) = [a for a in plan.actions if a.kind == kind]
    return found


def codes(findings) -> list[str]:
    return [f.code for f in findings]


# -- the create -----------------------------------------------------------------------------------------


def test_a_file_upload_is_a_create_with_what_apply_uploads_and_no_server(tmp_path):
    plan = build_plan(upload(tmp_path), snapshot(artifacts=built()), TARGET)

    create = the(plan, "create")
    assert create.reason.code == "image_missing" and create.reason.source == "m.yaml:3"
    assert "server" not in create.details
    assert (
        create.details.items()
        >= {
            "file": FILE,
            "disk_format": "qcow2",
            "temporary_name": markers.temporary_name(KEY, "web", KEY, "KR1"),
            "name": KEY,
            "bytes": 1288490189,
            "artifact": FILE,
            "artifact_note": None,
        }.items()
    )
    assert {name: change.after for name, change in create.changes.items()} == {
        markers.SET: "web",
        markers.KEY: KEY,
        markers.SOURCE: f"sha256:{SHA256}",
        markers.PROPS: "os_type",
        "name": KEY,
        "os_type": "linux",
    }
    assert not plan.refusals and not plan.warnings


def test_a_url_upload_keeps_the_url_as_written_and_its_size_unknown_when_not_contacted(tmp_path):
    artifacts = {
        KEY: Artifact(URL, found=True, size=None, note="not contacted: plan reads a URL only with --fetch-sources")
    }
    plan = build_plan(upload(tmp_path, f"url: {URL}"), snapshot(artifacts=artifacts), TARGET)

    create = the(plan, "create")
    assert create.details["url"] == URL and "file" not in create.details and "server" not in create.details
    assert create.details["bytes"] is None and create.details["artifact_note"].startswith("not contacted")
    assert not plan.warnings


def test_a_sha512_upload_records_its_sha512(tmp_path):
    plan = build_plan(upload(tmp_path, digest=f"sha512: {SHA512}"), snapshot(artifacts=built()), TARGET)
    assert the(plan, "create").changes[markers.SOURCE].after == f"sha512:{SHA512}"


def test_without_os_type_the_upload_is_refused_at_its_source(tmp_path):
    desired = upload(tmp_path)
    spec = dataclasses.replace(desired.images[0], properties=MappingProxyType({"os_distro": "ubuntu"}))
    desired = dataclasses.replace(desired, images=(spec,))

    plan = build_plan(desired, snapshot(artifacts=built()), TARGET)

    (refusal,) = plan.refusals
    assert refusal.code == "os_type_missing" and refusal.key == KEY and refusal.source == "m.yaml:5"
    assert "NHN requires os_type on an uploaded image" in refusal.message
    assert "properties.os_type (linux or windows)" in refusal.message
    assert not [a for a in plan.actions if a.kind == "create"]


def test_a_missing_file_warns_source_not_built_and_the_create_is_still_planned(tmp_path):
    artifacts = {KEY: Artifact(FILE, found=False, note="looked in the root and in /ci/artifacts")}
    plan = build_plan(upload(tmp_path), snapshot(artifacts=artifacts), TARGET)

    (warning,) = plan.warnings
    assert warning.code == "source_not_built" and warning.source == "m.yaml:5"
    assert "looked in the root and in /ci/artifacts" in warning.message
    assert "apply fails this create unless the file exists by then" in warning.message
    create = the(plan, "create")
    assert create.details["artifact"] is None and create.details["bytes"] is None
    assert not plan.refusals


def test_a_copy_share_and_protect_follow_the_upload_as_they_follow_an_instance_create(tmp_path):
    desired = upload(tmp_path, extra="copies: [JP1]\nprotected: true\nshare: [8989447062e04a818baf9e073fd04fa7]\n")
    plan = build_plan(desired, snapshot(artifacts=built()), TARGET)

    create = the(plan, "create")
    copy = the(plan, "copy")
    assert copy.region == "JP1" and create.id in {d.id for d in copy.depends_on}
    assert {a.kind for a in plan.actions} == {"create", "update", "copy", "share", "protect"}  # update: download flag
    by_id = {a.id: a for a in plan.actions}

    def waits_for_create(action: Action) -> bool:
        return any(d.id == create.id or waits_for_create(by_id[d.id]) for d in action.depends_on)

    assert all(waits_for_create(a) for a in plan.actions if a is not create)


def test_an_existing_upload_image_plans_nothing(tmp_path):
    plan = build_plan(upload(tmp_path), snapshot(home()), TARGET)
    assert not plan.actions and not plan.warnings and not plan.refusals


# -- identity -------------------------------------------------------------------------------------------


def test_the_declared_source_of_an_upload_is_its_content(tmp_path):
    desired = upload(tmp_path)
    ctx = PlanContext(desired, snapshot(), TARGET, max_deletions=None, timeout=3600.0, scope=Scope())
    assert declared_source(ctx, desired.images[0]) == f"sha256:{SHA256}"


def test_a_changed_digest_is_a_create_time_field_and_nothing_is_rebuilt(tmp_path):
    plan = build_plan(upload(tmp_path), snapshot(home(f"sha256:{OTHER256}")), TARGET)

    (warning,) = plan.warnings
    assert warning.code == "create_time_field" and warning.source == "m.yaml:6"
    assert f"from sha256:{OTHER256[:12]}… to sha256:{SHA256[:12]}…" in warning.message
    assert "ship a new version" in warning.message and "a family fits" in warning.message
    assert not plan.actions


def test_an_older_family_version_is_not_held_to_the_digest_the_family_declares_now(tmp_path):
    body = f"""\
    families:
      web:
        versions: ["2026-11", "2026-12"]
        image:
          source: {{file: "build/web-{{version}}.qcow2", sha256: {SHA256}, disk_format: qcow2}}
          properties: {{os_type: linux}}
    """
    desired = load_desired_state(root(tmp_path, body))
    marks = {markers.SET: "web", markers.SOURCE: f"sha256:{OTHER256}", markers.FAMILY: "web", markers.PROPS: "os_type"}
    older = image("00000000-0000-4000-8000-00000000000b", "web-2026-11", **marks, **{markers.KEY: "web-2026-11"})
    newest = image("00000000-0000-4000-8000-00000000000c", "web-2026-12", **marks, **{markers.KEY: "web-2026-12"})

    plan = build_plan(desired, snapshot(older, newest), TARGET)

    assert [(w.code, w.key) for w in plan.warnings if w.code == "create_time_field"] == [
        ("create_time_field", "web-2026-12")
    ]


def test_content_mismatch_when_glance_hashed_with_the_declared_algorithm(tmp_path):
    desired = upload(tmp_path, digest=f"sha512: {SHA512}")
    live = home(f"sha512:{SHA512}", algo="sha512", hash="ef" * 64)

    plan = build_plan(desired, snapshot(live), TARGET)

    (warning,) = plan.warnings
    assert warning.code == "content_mismatch" and warning.key == KEY and warning.source == "m.yaml:6"
    assert "sha512" in warning.message
    assert not plan.actions


def test_no_content_mismatch_when_glance_hashed_with_another_algorithm_or_the_same_bytes(tmp_path):
    other_algorithm = home(algo="sha512", hash="ef" * 64)  # declared sha256: nothing to compare
    assert not build_plan(upload(tmp_path), snapshot(other_algorithm), TARGET).warnings
    same = home(f"sha512:{SHA512}", algo="sha512", hash=SHA512.upper())
    assert not build_plan(upload(tmp_path, digest=f"sha512: {SHA512}"), snapshot(same), TARGET).warnings


# -- temporary names ------------------------------------------------------------------------------------


def temporary(status: str) -> Image:
    name = markers.temporary_name(KEY, "web", KEY, "KR1")
    return image("00000000-0000-4000-8000-0000000000aa", name, status=status)


def test_a_young_queued_image_of_an_upload_key_is_a_leftover_deleted_before_the_new_create(tmp_path):
    plan = build_plan(upload(tmp_path), snapshot(temporary("queued"), artifacts=built()), TARGET)

    delete = the(plan, "delete")
    assert delete.reason.code == "leftover" and delete.key.startswith(markers.TOKEN_SEPARATOR)
    assert "an upload is never finished by a later run; the upload restarts from byte 0" in delete.reason.message
    assert delete.id in {d.id for d in the(plan, "create").depends_on}
    assert "create_in_progress" not in codes(plan.warnings)


def test_an_active_image_under_an_upload_temporary_name_is_a_leftover_too_never_finished(tmp_path):
    plan = build_plan(upload(tmp_path), snapshot(temporary("active"), artifacts=built()), TARGET)

    assert the(plan, "delete").reason.code == "leftover"
    assert not [a for a in plan.actions if a.kind == "adopt"]
    assert the(plan, "create").depends_on


# -- format, rendering, saved plans ---------------------------------------------------------------------


def test_an_upload_create_needs_format_1_1_and_an_instance_create_does_not(tmp_path):
    plan = build_plan(upload(tmp_path), snapshot(artifacts=built()), TARGET)
    assert format_needed(the(plan, "create")) == "1.1"
    instance_create = Action(
        "create:k:KR1", "create", "k", "KR1", Reason("image_missing", "m"), details={"server": "s"}
    )
    assert format_needed(instance_create) == "1"


def doc(tmp_path: Path, artifacts: dict[str, Artifact], source: str = f"file: {FILE}") -> dict:
    return the(build_plan(upload(tmp_path, source), snapshot(artifacts=artifacts), TARGET), "create").to_json()


def test_text_shows_what_the_create_uploads_and_its_size(tmp_path):
    assert describe_action(doc(tmp_path, built())) == f'upload {FILE} (qcow2, 1.2 GiB) as "{KEY}"'
    missing = doc(tmp_path, {KEY: Artifact(FILE, found=False, note="not in the root")})
    assert describe_action(missing) == f'upload {FILE} (qcow2, not found) as "{KEY}"'
    url = doc(tmp_path, {KEY: Artifact(URL, size=None, note="not contacted")}, f"url: {URL}")
    assert describe_action(url) == f'upload {URL} (qcow2, size unknown: not contacted) as "{KEY}"'


def test_an_upload_found_in_an_artifacts_directory_says_where(tmp_path):
    found = doc(tmp_path, {KEY: Artifact("/ci/out/build/web-2026-12.qcow2", size=10)})
    assert describe_action(found) == f'upload {FILE} (qcow2, 10 B, found at /ci/out/build/web-2026-12.qcow2) as "{KEY}"'


def test_the_file_url_and_note_of_an_upload_are_escaped_like_any_foreign_text(tmp_path):
    action = doc(tmp_path, built())
    hostile = {
        **action,
        "file": "build/\x1b[31mred\n.qcow2",
        "artifact": "elsewhere\x1b",
        "bytes": None,
        "artifact_note": "`@team` <!--",
    }
    text = describe_action(hostile)
    assert "\x1b" not in text and "\n" not in text
    markdown = describe_action(hostile, MARKDOWN)
    assert "\n" not in markdown and "\x1b" not in markdown and "<!--" not in markdown and "@team" not in markdown
    assert "size unknown: " in text and "found at elsewhere" in text


def test_a_saved_upload_matches_a_fresh_one_made_after_the_artifact_was_built(tmp_path):
    before = the(build_plan(upload(tmp_path), snapshot(artifacts={KEY: Artifact(FILE, found=False)}), TARGET), "create")
    after = the(build_plan(upload(tmp_path), snapshot(artifacts=built()), TARGET), "create")
    assert match([before.to_json()], [after], [], "web", resume=False).ok


def test_an_edited_file_url_format_or_digest_in_a_saved_upload_is_a_difference(tmp_path):
    fresh = the(build_plan(upload(tmp_path), snapshot(artifacts=built()), TARGET), "create")
    saved = fresh.to_json()
    content = {"before": None, "after": f"sha256:{OTHER256}"}
    for edit in (
        {"file": "build/evil.qcow2"},
        {"disk_format": "raw"},
        {"changes": {**saved["changes"], markers.SOURCE: content}},
    ):
        result = match([{**saved, **edit}], [fresh], [], "web", resume=False)
        assert not result.ok, edit
    url_saved = {k: v for k, v in saved.items() if k != "file"} | {"url": URL}
    assert not match([url_saved], [fresh], [], "web", resume=False).ok
