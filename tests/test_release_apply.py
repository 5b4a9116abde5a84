"""Releases (`removed:` with `destroy: false`, issue 18) applied against the simulator: a saved plan with
releases applies with --plan and leaves the images as they were but for the markers; the execution guard
keeps a release off an image someone re-keyed after the plan; under protected_patch: strict a release
interrupted after its unprotect still ends with the image protected (the bracket's closing protect is a
compensation)."""

from __future__ import annotations

import dataclasses
import json
import signal
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.apply import DONE, SKIPPED, STALE, Applier
from reconciler.apply_guard import GuardContext
from reconciler.cancel import Cancellation
from reconciler.cli import main
from reconciler.cloud.records import set_ops
from reconciler.connect import open_cloud
from reconciler.lock import apply_lock
from reconciler.lock_guard import LockGuardedClient
from reconciler.planner import build_plan
from reconciler.snapshot import read_snapshot
from reconciler.validate import load_desired_state

OWNER = "3f0c9d2e6b7a4f0e9a1b2c3d4e5f6a7b"
PARTNER = "8989447062e04a818baf9e073fd04fa7"
SET = "web-platform"
WEB = "00000000-0000-4000-8000-000000000011"  # web-base: declared, stays managed
LEGACY = "00000000-0000-4000-8000-000000000021"  # legacy-web: protected, shared, custom properties
LEGACY_JP1 = "00000000-0000-4000-8000-000000000022"  # its copy in JP1
OLD_DB = "00000000-0000-4000-8000-000000000031"  # old-db: plain
RELEASED = (LEGACY, LEGACY_JP1, OLD_DB)
# The simulator moves this on every PATCH: the one field a release may change besides taking markers off.
MOVES_ON_PATCH = ("updated_at",)


def managed(image_id: str, region: str, key: str, **fields: Any) -> dict[str, Any]:
    properties = {
        "os_type": "linux",
        **fields.pop("properties", {}),
        "reconciler_set": SET,
        "reconciler_key": key,
        "reconciler_source": f"image:{fields.pop('source', image_id)}",
    }
    return {"id": image_id, "project": OWNER, "region": region, "name": key, "size_mb": 2, "content": key,
            **fields, "properties": properties}  # fmt: skip


def seed(strict: bool) -> dict[str, Any]:
    shared = {"visibility": "shared", "members": [{"project": PARTNER, "status": "accepted"}]}
    custom = {"login_username": "ubuntu", "owner_team": "web", "reconciler_props": "login_username,owner_team"}
    document: dict[str, Any] = {
        "regions": ["KR1", "JP1"],
        "projects": [
            {"id": OWNER, "users": [{"username": "dev@example.com", "api_password": "local-only"}]},
            {"id": PARTNER, "users": [{"username": "partner@example.com", "api_password": "partner-only"}]},
        ],
        "images": [
            managed(WEB, "KR1", "web-base"),
            managed(LEGACY, "KR1", "legacy-web", protected=True, properties=custom, **shared),
            managed(
                LEGACY_JP1,
                "JP1",
                "legacy-web",
                source=LEGACY,
                content="legacy-web",
                properties={**custom, "reconciler_copy_of": LEGACY},
                **shared,
            ),  # fmt: skip
            managed(OLD_DB, "KR1", "old-db", min_disk=20, properties={"description": "before the tool"}),
        ],
    }
    if strict:
        document["behaviour"] = {"protected_patch": "strict"}
    return document


@pytest.fixture(autouse=True)
def no_credentials(monkeypatch):
    for name in ("NHN_CLOUD_USERNAME", "NHN_CLOUD_API_PASSWORD", "OS_USERNAME", "OS_PASSWORD"):
        monkeypatch.delenv(name, raising=False)


def make_root(tmp_path: Path, *, strict: bool = False) -> Path:
    """web-base declared; legacy-web (home and copy) and old-db listed under removed: with destroy: false."""
    root = tmp_path / "root"
    (root / "images").mkdir(parents=True)
    cloud = "{kind: simulator, seed: seed.yaml" + (", protected_patch: strict}" if strict else "}")
    (root / "reconciler.yaml").write_text(f"version: 1\nset: {SET}\ncloud: {cloud}\ndefaults: {{region: KR1}}\n")
    (root / "seed.yaml").write_text(yaml.safe_dump(seed(strict), sort_keys=False))
    manifest = {
        "version": 1,
        "images": {"web-base": {"source": {"image": WEB}}},
        "removed": [{"key": "legacy-web", "destroy": False}, {"key": "old-db", "destroy": False}],
    }
    (root / "images" / "images.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return root


def state(root: Path) -> dict[str, Any]:
    return json.loads((root / ".reconciler" / "sim-state.json").read_text())


def as_kept(image: dict[str, Any]) -> dict[str, Any]:
    """What a release keeps of an image: every field but the markers (and updated_at), and its members."""
    fields = {k: v for k, v in image["fields"].items() if not k.startswith("reconciler_") and k not in MOVES_ON_PATCH}
    members = {project: member["status"] for project, member in image.get("members", {}).items()}
    return {"fields": fields, "members": members}


def markers_of(image: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in image["fields"].items() if k.startswith("reconciler_")}


def test_a_saved_plan_with_releases_applies_with_plan_and_leaves_the_images_but_their_markers(tmp_path, capsys):
    root = make_root(tmp_path)
    plan_file = tmp_path / "plan.json"
    assert main(["plan", str(root), "--out", str(plan_file)]) == 0
    capsys.readouterr()
    before = {image_id: as_kept(state(root)["images"][image_id]) for image_id in RELEASED}
    document = json.loads(plan_file.read_text())
    releases = [a for a in document["actions"] if a["reason"]["code"] == "released"]
    assert sorted(a["image_id"] for a in releases) == sorted(RELEASED), document["actions"]
    assert all(a["kind"] == "update" for a in releases)
    assert not any(a["kind"] == "delete" for a in document["actions"])

    assert main(["apply", "--plan", str(plan_file), str(root), "--auto-approve", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["outcome"] == "applied"
    assert [(r["id"], r["status"]) for r in report["results"]] == [(a["id"], DONE) for a in document["actions"]]

    after = state(root)["images"]
    for image_id in RELEASED:
        assert markers_of(after[image_id]) == {}, image_id
        assert as_kept(after[image_id]) == before[image_id], image_id
    assert after[LEGACY]["fields"]["protected"] is True
    assert as_kept(after[LEGACY])["members"] == {PARTNER: "accepted"}
    assert after[WEB]["fields"]["reconciler_key"] == "web-base"  # the declared image stays managed
    # Nothing left to do: released images are unmanaged, and no plan of the set touches them.
    assert main(["plan", str(root), "--detailed-exitcode"]) == 0


def without_markers(expects: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in expects.items() if not name.startswith("reconciler_")}


def test_the_guard_keeps_a_release_off_an_image_re_keyed_after_the_plan(tmp_path):
    """The plan releases legacy-web; before apply, someone gives the image another key by hand. Apply
    re-reads it: it is no longer legacy-web's, so the release does not touch it (stale), whatever the plan."""
    root = make_root(tmp_path)
    desired = load_desired_state(root)
    with open_cloud(desired.root, desired.root.cloud, {}) as (client, target):
        plan = build_plan(desired, read_snapshot(client, desired), target)
        release = next(a for a in plan.actions if a.image_id == LEGACY and a.kind == "update")
        client.update_image("KR1", LEGACY, set_ops({"reconciler_key": "someone-else"}))
        rekeyed = client.get_image("KR1", LEGACY)

        # The release expects the image's set and key as it read them: stale on its own ...
        report = Applier(client, plan, guard=GuardContext.from_desired(desired)).run()
        result = next(r for r in report.results if r.action.id == release.id)
        assert result.status == STALE, result
        assert "reconciler_key is 'someone-else', the plan expected 'legacy-web'" in result.message
        assert client.get_image("KR1", LEGACY) == rekeyed  # untouched: it keeps every marker

        # ... and the execution guard refuses it too, whatever the plan expects.
        blind = dataclasses.replace(
            plan,
            actions=tuple(
                dataclasses.replace(a, expects={ref: without_markers(e) for ref, e in a.expects.items()})
                if a is release
                else a
                for a in plan.actions
            ),
        )
        report = Applier(client, blind, guard=GuardContext.from_desired(desired)).run()
        result = next(r for r in report.results if r.action.id == release.id)
        assert result.status == STALE, result
        assert "not an image of set web-platform key legacy-web" in result.message
        assert client.get_image("KR1", LEGACY) == rekeyed


def test_a_saved_release_plan_is_refused_when_the_image_was_re_keyed_since(tmp_path, capsys):
    """Through the CLI: the fresh plan no longer releases the re-keyed image (it now deletes someone-else,
    a key the root does not declare), so the saved plan does not run, and nothing is touched."""
    root = make_root(tmp_path)
    plan_file = tmp_path / "plan.json"
    assert main(["plan", str(root), "--out", str(plan_file)]) == 0
    desired = load_desired_state(root)
    with open_cloud(desired.root, desired.root.cloud, {}) as (client, _):
        client.update_image("KR1", OLD_DB, set_ops({"reconciler_key": "someone-else"}))
    capsys.readouterr()
    before = state(root)["images"]
    assert main(["apply", "--plan", str(plan_file), str(root), "--auto-approve", "--format", "json"]) == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out)["outcome"] == "plan_mismatch"
    assert "update:old-db:KR1" in captured.err, captured.err  # named among the differences
    after = state(root)["images"]
    assert {i: after[i] for i in RELEASED} == {i: before[i] for i in RELEASED}


def test_under_strict_a_release_interrupted_after_its_unprotect_ends_protected(tmp_path):
    """protected_patch: strict brackets the release of a protected image. A cancellation right after the
    unprotect: the release itself does not start, but the closing protect is owed and runs."""
    root = make_root(tmp_path, strict=True)
    desired = load_desired_state(root)
    cancellation = Cancellation()
    opening = "unprotect:legacy-web:KR1:release"

    def progress(event, action, payload):
        if event == "end" and action.id == opening and payload.status == DONE:
            cancellation.request(signal.SIGINT)  # as the signal handler would

    with open_cloud(desired.root, desired.root.cloud, {}) as (client, target):
        plan = build_plan(desired, read_snapshot(client, desired), target)
        ids = [a.id for a in plan.actions]
        assert [i for i in ids if i.endswith("legacy-web:KR1:release")] == [
            opening, "update:legacy-web:KR1:release", "protect:legacy-web:KR1:release"
        ], ids  # fmt: skip
        with apply_lock(client, desired.root.set) as session:
            guarded = LockGuardedClient(client, session, cancellation)
            report = Applier(
                guarded, plan, parallelism=1, lock=session, cancellation=cancellation, progress=progress,
                guard=GuardContext.from_desired(desired),
            ).run()  # fmt: skip
        statuses = {r.action.id: r.status for r in report.results}
        assert report.outcome == "interrupted", statuses
        assert statuses[opening] == DONE
        assert statuses["update:legacy-web:KR1:release"] == SKIPPED
        assert statuses["protect:legacy-web:KR1:release"] == DONE, statuses
        image = client.get_image("KR1", LEGACY)
        assert image.protected is True
        assert image.properties["reconciler_key"] == "legacy-web"  # not released: the next apply does it

    # The next apply finishes the release, bracketed again; the image ends protected and unmanaged.
    assert main(["apply", str(root), "--auto-approve"]) == 0
    legacy = state(root)["images"][LEGACY]
    assert legacy["fields"]["protected"] is True and markers_of(legacy) == {}
