"""A family's retirements and saved plans (issue 23, design rule (f)), through the CLI on the simulator, as
a CI job runs them: what `apply --plan` does not run of a retirement is in its JSON report with the status
`deferred` (no failure), whichever side deferred it: the fresh plan (a server booted from the old version
after the review) or the reviewed plan (its user gone since: the next plan, reviewed, retires it)."""

from __future__ import annotations

import json

from test_family_rotation import (
    boot_from,
    delete_server,
    family_versions,
    list_versions,
    make_root,
    project_images,
    run_months,
)

from reconciler.cli import main


def apply_saved(plan_file, root, capsys):
    code = main(["apply", "--plan", str(plan_file), str(root), "--auto-approve", "--format", "json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out), captured.err


def test_a_retirement_the_fresh_plan_defers_is_reported_deferred(tmp_path, capsys):
    root = make_root(tmp_path)
    run_months(root, capsys, range(1, 4))
    list_versions(root, 4)
    plan_file = tmp_path / "month-4.json"
    assert main(["plan", str(root), "--out", str(plan_file)]) == 0
    capsys.readouterr()
    boot_from(root, family_versions(project_images(root)["KR1"])["2026-09"]["id"])

    report, err = apply_saved(plan_file, root, capsys)
    statuses = {r["id"]: r["status"] for r in report["results"]}
    assert statuses["delete:web-base-2026-09:KR1"] == "deferred", statuses
    assert statuses["delete:web-base-2026-09:JP1"] == "done"
    assert report["outcome"] == "applied" and report["summary"]["deferred"] == 1
    assert "deferred: delete:web-base-2026-09:KR1 (its image is in use now" in err


def test_a_retirement_the_review_deferred_is_not_run_and_reported_deferred(tmp_path, capsys):
    root = make_root(tmp_path)
    run_months(root, capsys, range(1, 4))
    server = boot_from(root, family_versions(project_images(root)["KR1"])["2026-09"]["id"])
    list_versions(root, 4)
    plan_file = tmp_path / "month-4.json"
    assert main(["plan", str(root), "--out", str(plan_file)]) == 0
    capsys.readouterr()
    saved = json.loads(plan_file.read_text(encoding="utf-8"))
    assert "delete:web-base-2026-09:KR1" not in {a["id"] for a in saved["actions"]}
    delete_server(root, server)  # its user is gone: the fresh plan retires it, which nobody reviewed

    report, err = apply_saved(plan_file, root, capsys)
    statuses = {r["id"]: r["status"] for r in report["results"]}
    assert statuses["delete:web-base-2026-09:KR1"] == "deferred", statuses
    assert "2026-09" in family_versions(project_images(root)["KR1"])  # not run
    assert "its retirement was deferred when the plan was reviewed" in err
    # The next plan, reviewed, retires it.
    code = main(["apply", str(root), "--auto-approve"])
    capsys.readouterr()
    assert code == 0 and "2026-09" not in family_versions(project_images(root)["KR1"])
