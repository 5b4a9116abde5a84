"""Saved plans: plan --out, then apply --plan runs a fresh plan only if it matches the saved one, and
refuses (exit 1, naming each difference) otherwise; nothing written in the file is ever carried out.
--resume finishes a partial apply."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from support import cloud_unchanged_but_lock_traces, let_lock_leases_expire

from reconciler import __version__
from reconciler.cli import main
from reconciler.cloud.records import set_ops
from reconciler.connect import open_cloud
from reconciler.validate import load_desired_state

CASES = Path(__file__).resolve().parent / "cases"


@pytest.fixture(autouse=True)
def no_credentials(monkeypatch):
    for name in ("NHN_CLOUD_USERNAME", "NHN_CLOUD_API_PASSWORD", "OS_USERNAME", "OS_PASSWORD"):
        monkeypatch.delenv(name, raising=False)


def saved(case: str, tmp_path: Path, capsys) -> tuple[Path, Path]:
    root = tmp_path / "root"
    shutil.copytree(CASES / case / "root", root)
    plan_file = tmp_path / "plan.json"
    assert main(["plan", str(root), "--out", str(plan_file)]) in (0, 3)
    capsys.readouterr()
    return root, plan_file


def through_the_api(root: Path, change) -> None:
    """Change the cloud as someone else would: through the simulator's API."""
    desired = load_desired_state(root)
    with open_cloud(desired.root, desired.root.cloud, {}) as (client, _):
        change(client)


def test_a_saved_plan_is_applied_when_the_fresh_plan_matches_it(tmp_path, capsys):
    root, plan_file = saved("copies-two-regions", tmp_path, capsys)
    document = json.loads(plan_file.read_text())
    assert set(document["saved"]) == {"target", "tool"}
    assert document["saved"]["tool"]["version"] == __version__
    assert main(["apply", "--plan", str(plan_file), str(root), "--auto-approve", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["outcome"] == "applied"
    assert [r["id"] for r in report["results"]] == [a["id"] for a in document["actions"]]
    assert main(["plan", str(root), "--detailed-exitcode"]) == 0


def test_a_hand_change_to_what_the_plan_changes_refuses_it(tmp_path, capsys):
    """rename-in-place renames one image; someone renames it by hand after the review: the fresh plan's
    rename differs from the reviewed one, so nothing runs, and the report says what differs."""
    root, plan_file = saved("rename-in-place", tmp_path, capsys)
    (update,) = json.loads(plan_file.read_text())["actions"]
    through_the_api(root, lambda c: c.update_image("KR1", update["image_id"], set_ops({"name": "by-hand"})))
    state_before = json.loads((root / ".reconciler" / "sim-state.json").read_bytes())
    assert main(["apply", "--plan", str(plan_file), str(root), "--auto-approve", "--format", "json"]) == 1
    captured = capsys.readouterr()
    assert "differs from the saved plan" in captured.err and "nothing was applied" in captured.err
    assert f"{update['id']}: saved: changes" in captured.err and "by-hand" in captured.err
    assert json.loads(captured.out)["outcome"] == "plan_mismatch"
    cloud_unchanged_but_lock_traces(state_before, json.loads((root / ".reconciler" / "sim-state.json").read_bytes()))


def test_a_hand_change_that_alters_no_action_does_not(tmp_path, capsys):
    root, plan_file = saved("rename-in-place", tmp_path, capsys)
    (update,) = json.loads(plan_file.read_text())["actions"]
    through_the_api(root, lambda c: c.update_image("KR1", update["image_id"], set_ops({"login_username": "root"})))
    assert main(["apply", "--plan", str(plan_file), str(root), "--auto-approve"]) == 0


def test_a_change_to_an_untouched_object_does_not(tmp_path, capsys):
    root, plan_file = saved("protect-unprotect", tmp_path, capsys)
    document = json.loads(plan_file.read_text())
    touched = {a["image_id"] for a in document["actions"]}

    def rename_something_else(client):
        other = client.create_image("KR1", {"name": "unrelated", "os_type": "linux", "disk_format": "qcow2",
                                            "container_format": "bare", "visibility": "private"})  # fmt: skip
        assert other.id not in touched
        client.update_image("KR1", other.id, set_ops({"name": "renamed-unrelated"}))

    through_the_api(root, rename_something_else)
    assert main(["apply", "--plan", str(plan_file), str(root), "--auto-approve"]) == 0


def test_a_root_change_that_changes_the_plan_refuses_it_and_a_comment_does_not(tmp_path, capsys):
    root, plan_file = saved("rename-in-place", tmp_path, capsys)
    manifest = root / "images" / "web.yaml"
    original = manifest.read_text()
    manifest.write_text(original + "\n# a comment changes no action\n")
    assert main(["plan", str(root), "--out", str(tmp_path / "unused.json")]) == 0  # the root is still valid
    capsys.readouterr()
    assert "name:" in original
    manifest.write_text(original.replace("name: ", "name: changed-", 1))
    assert main(["apply", "--plan", str(plan_file), str(root), "--auto-approve"]) == 1
    assert "differs from the saved plan" in capsys.readouterr().err
    manifest.write_text(original + "\n# a comment changes no action\n")
    assert main(["apply", "--plan", str(plan_file), str(root), "--auto-approve"]) == 0


def edited(plan_file: Path, edit) -> None:
    document = json.loads(plan_file.read_text())
    edit(document)
    plan_file.write_text(json.dumps(document))


def test_actions_added_to_a_saved_plan_are_never_carried_out(tmp_path, capsys):
    """The reproduction of issue 15: a pull request edits the saved plan to delete an image the set never
    made and to unprotect and delete a protected one. Apply computes its own plan: the additions do not
    match it, nothing runs."""
    root, plan_file = saved("rename-in-place", tmp_path, capsys)
    made: list[str] = []

    def handmade(client):
        attributes = {"name": "legacy-base", "os_type": "linux", "disk_format": "qcow2", "container_format": "bare"}
        made.append(client.create_image("KR1", attributes).id)
        client.update_image("KR1", made[0], set_ops({"protected": True}))

    through_the_api(root, handmade)
    victim = made[0]

    def add_deletes(document):
        template = document["actions"][0]
        for kind, phase in (("unprotect", ""), ("delete", "")):
            document["actions"].append({
                **template, "id": f"{kind}:{template['key']}:KR1{phase}", "kind": kind, "image_id": victim,
                "changes": {}, "expects": {}, "depends_on": [],
            })  # fmt: skip

    edited(plan_file, add_deletes)
    before = json.loads((root / ".reconciler" / "sim-state.json").read_text())
    assert main(["apply", "--plan", str(plan_file), str(root), "--auto-approve"]) == 1
    err = capsys.readouterr().err
    assert "saved: unprotect of" in err and "saved: delete of" in err and "now: not planned" in err
    cloud_unchanged_but_lock_traces(before, json.loads((root / ".reconciler" / "sim-state.json").read_text()))


def test_refusals_removed_from_a_saved_plan_still_refuse(tmp_path, capsys):
    root, plan_file = saved("delete-protected-refused", tmp_path, capsys)
    edited(plan_file, lambda d: d.update(refusals=[]))
    assert main(["apply", "--plan", str(plan_file), str(root), "--auto-approve", "--format", "json"]) == 3
    assert json.loads(capsys.readouterr().out)["outcome"] == "refused"


def test_a_plan_saved_by_another_version_is_refused(tmp_path, capsys):
    root, plan_file = saved("rename-in-place", tmp_path, capsys)
    edited(plan_file, lambda d: d["saved"].update(tool={"version": "0.0.1", "commit": None}))
    assert main(["apply", "--plan", str(plan_file), str(root), "--auto-approve"]) == 1
    assert f"was saved by reconciler 0.0.1; this is reconciler {__version__}" in capsys.readouterr().err
    edited(plan_file, lambda d: d["saved"].pop("tool"))
    assert main(["apply", "--plan", str(plan_file), str(root), "--auto-approve"]) == 1
    assert "did not record its version" in capsys.readouterr().err


@pytest.mark.parametrize(
    "garbage",
    [
        "[]",
        '{"format_version": "1", "saved": {}}',
        '{"format_version": "1", "set": "x", "actions": [{"id": 3}], "saved": {"target": {}}}',
    ],
)
def test_a_saved_plan_that_is_not_one_is_a_clear_error(tmp_path, capsys, garbage):
    root, plan_file = saved("rename-in-place", tmp_path, capsys)
    plan_file.write_text(garbage)
    assert main(["apply", "--plan", str(plan_file), str(root), "--auto-approve"]) == 1
    err = capsys.readouterr().err
    assert str(plan_file) in err and "Traceback" not in err


@pytest.mark.parametrize("flags", [["--target", "web-base"], ["--exclude", "web-base"], ["--max-deletions", "5"]])
def test_saved_plans_are_whole(tmp_path, capsys, flags):
    root, plan_file = saved("rename-in-place", tmp_path, capsys)
    assert main(["plan", str(root), "--out", str(tmp_path / "partial.json"), *flags]) == 1
    assert "saved plans cover the whole root" in capsys.readouterr().err
    assert not (tmp_path / "partial.json").exists()
    assert main(["apply", "--plan", str(plan_file), str(root), "--auto-approve", *flags]) == 1
    assert "saved plans cover the whole root" in capsys.readouterr().err


def test_another_target_is_refused(tmp_path, capsys):
    root, plan_file = saved("rename-in-place", tmp_path, capsys)
    other = tmp_path / "other-state.json"
    assert main(["simulator", "init", str(other), "--seed", str(root / "seed.yaml")]) == 0
    capsys.readouterr()
    assert main(["apply", "--plan", str(plan_file), str(root), "--auto-approve", "--sim-state", str(other)]) == 1
    assert "the target is not the one the plan was saved for" in capsys.readouterr().err


def test_resume_finishes_a_killed_apply(tmp_path, capsys):
    root, _ = saved("copies-two-regions", tmp_path, capsys)
    # The second copy's upload stalls: the apply is killed in the middle of it.
    seed = yaml.safe_load((root / "seed.yaml").read_text())
    seed.setdefault("behaviour", {})["faults"] = [
        {"route": "PUT /image/{region}/v2/images/{image_id}/file", "on_call": 2, "stall_s": 30}
    ]
    (root / "seed.yaml").write_text(yaml.safe_dump(seed))
    shutil.rmtree(root / ".reconciler")
    plan_file = tmp_path / "plan.json"
    assert main(["plan", str(root), "--out", str(plan_file)]) == 0
    capsys.readouterr()
    process = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "apply", "--plan", str(plan_file), str(root), "--auto-approve", "--parallelism", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    journal = plan_file.with_name("plan.json.progress.json")
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if journal.exists() and len(json.loads(journal.read_text())["done"]) >= 2:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the apply never got going")
        time.sleep(0.5)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
    done = json.loads(journal.read_text())["done"]
    assert "copy:web-base:JP1" in done and "copy:web-base:KR2" not in done

    # Without --resume, a partly applied plan is refused.
    assert main(["apply", "--plan", str(plan_file), str(root), "--auto-approve"]) == 1
    assert "--resume" in capsys.readouterr().err
    # The stall fault lives in the simulator's state: clear it, as a fixed cause would be.
    state_path = root / ".reconciler" / "sim-state.json"
    state = json.loads(state_path.read_text())
    state["behaviour"]["faults"] = []
    state_path.write_text(json.dumps(state))
    # The killed run's lock claim blocks the set until its lease runs out (docs/safety.md).
    assert main(["apply", "--plan", str(plan_file), str(root), "--auto-approve", "--resume"]) == 1
    assert "has the lock" in capsys.readouterr().err
    let_lock_leases_expire(state_path)
    assert main(["apply", "--plan", str(plan_file), str(root), "--auto-approve", "--resume"]) == 0
    capsys.readouterr()
    assert not journal.exists()
    assert main(["plan", str(root), "--detailed-exitcode"]) == 0


def test_images_with_markers_the_tool_never_writes_do_not_break_a_saved_plan(tmp_path, capsys):
    # Issue 17, hostile review: `reconciler_key: "a:b"` on an image of this set made the plan hold the action
    # id `delete:a:b:KR1`; plan --out saved it, and apply --plan then refused the file as not a valid saved
    # plan, on every run. Such an image is nobody's: the plan warns and plans nothing for it.
    root = tmp_path / "root"
    shutil.copytree(CASES / "invalid-markers" / "root", root)
    manifest = root / "images" / "web.yaml"
    manifest.write_text(manifest.read_text() + "    description: Golden\n")  # one action to apply
    plan_file = tmp_path / "plan.json"
    assert main(["plan", str(root), "--out", str(plan_file)]) == 0
    capsys.readouterr()
    document = json.loads(plan_file.read_text())
    assert [a["id"] for a in document["actions"]] == ["update:web-base:KR1"]
    assert [w["code"] for w in document["warnings"]] == ["invalid_markers"] * 4
    assert main(["apply", "--plan", str(plan_file), str(root), "--auto-approve"]) == 0, capsys.readouterr().err
    capsys.readouterr()

    def still_there(client):
        keys = {i.id: i.properties.get("reconciler_key") for i in client.list_images("KR1")}
        assert keys["00000000-0000-4000-8000-000000000021"] == "a:b"
        assert keys["00000000-0000-4000-8000-000000000022"].startswith("old\x1b[2J\n")

    through_the_api(root, still_there)
    assert main(["plan", str(root), "--detailed-exitcode"]) == 0


def test_a_saved_plan_shows_hidden_characters_from_the_cloud_as_escapes(tmp_path, capsys):
    """The file is read in reviews and CI logs like the plan's JSON output: a right-to-left override or an ESC
    in a cloud name is written as an escape, and the document still reads back to the same value."""
    root, plan_file = saved("hostile-cloud-text", tmp_path, capsys)
    text = plan_file.read_text(encoding="utf-8")
    assert "\u202e" not in text and "\x1b" not in text and "\\u202e" in text
    document = json.loads(text)
    assert any(a.get("name", "").startswith("\u202e") for a in document["actions"])
    assert main(["apply", "--plan", str(plan_file), str(root), "--auto-approve"]) == 0
