"""apply.sh, the apply step of both recipes, against a fake `reconciler` that records its arguments and
replays a report, and a fake `gh` that says where main is: --lock-timeout 300 always, --resume on a re-run
only; a commit that is no longer main's tip is neither applied nor planned again; outcome plan_mismatch
plans again on main and waits for approval, whose job refuses unless the repository declares the gate
exists; any other failure fails the job. Then the real tool against a simulator: SIGINT to the script
reaches the tool, which runs its compensations and exits 130."""

from __future__ import annotations

import json
import shutil
import signal
import time
from pathlib import Path

import pytest
import yaml
from recipes.harness import Job

CASES = Path(__file__).resolve().parent / "cases"
REPO = "acme/images"
SHA = "a" * 40
LATER = "b" * 40
BRANCH = ["api", f"repos/{REPO}/branches/main"]


def on_github(job: Job, *, tip: str = SHA, **env: str) -> dict[str, str]:
    """A push to main at SHA; GitHub says main's tip is `tip`."""
    job.answer_gh([{"args": BRANCH, "stdout": json.dumps({"name": "main", "commit": {"sha": tip}})}])
    return {"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": REPO, "GITHUB_SHA": SHA, "GITHUB_REF_NAME": "main", **env}


def main_moves_after_the_first_look(job: Job) -> None:
    """A `gh` that says main is at SHA the first time it is asked, and at LATER from then on."""
    gh = job.bin / "gh"
    count = job.tmp / "gh-count"
    gh.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> {job.tmp / "gh-calls.txt"}\n'
        f"if [ -e {count} ]; then tip={LATER}; else tip={SHA}; touch {count}; fi\n"
        'printf \'{"name": "main", "commit": {"sha": "%s"}}\' "$tip"\n'
    )
    gh.chmod(0o755)


def report(outcome: str) -> str:
    return json.dumps({"format_version": "1", "outcome": outcome, "results": [], "summary": {}})


def reviewed_plan(job: Job) -> Path:
    plan = job.tmp / "reviewed" / "plans.json"
    plan.parent.mkdir(parents=True, exist_ok=True)
    plan.write_text("{}")
    return plan


@pytest.mark.parametrize(("attempt", "resumes"), [("1", False), ("2", True), ("3", True)])
def test_apply_waits_for_the_lock_and_resumes_only_a_re_run(tmp_path, attempt, resumes):
    job = Job(tmp_path, fake_reconciler=True)
    job.answer_reconciler({"apply": {"stdout": report("applied")}})
    plan = reviewed_plan(job)
    result = job.run("apply.sh", ".", "--plan", plan, **on_github(job, GITHUB_RUN_ATTEMPT=attempt))
    assert result.returncode == 0, result.stderr
    (call,) = job.reconciler_calls()
    assert call[:2] == ["apply", "."] and call[-2:] == ["--plan", str(plan)]
    assert call[call.index("--lock-timeout") + 1] == "300"
    assert {"--auto-approve", "--format", "json"} <= set(call)
    assert ("--resume" in call) is resumes
    assert job.outputs()["outcome"] == "applied"


def test_apply_needs_a_reviewed_plan(tmp_path):
    job = Job(tmp_path, fake_reconciler=True)
    result = job.run("apply.sh", ".", **on_github(job))
    assert result.returncode == 1 and "pass --plan FILE" in result.stderr
    assert job.reconciler_calls() == []


def test_a_plan_mismatch_plans_again_on_main_and_waits_for_approval(tmp_path):
    """The reviewed plan no longer matches: nothing was changed; the job plans again on this checkout,
    hands the new plan and its Markdown on, and succeeds so that the approval job can start."""
    job = Job(tmp_path, fake_reconciler=True)
    job.answer_reconciler(
        {
            "apply": {"exit": 1, "stdout": report("plan_mismatch"), "stderr": "error: the plan made now differs\n"},
            "plan": {"stdout": "#### the new plan\n", "saved": '{"new": true}'},
        }
    )
    result = job.run("apply.sh", ".", "--plan", reviewed_plan(job), **on_github(job))
    assert result.returncode == 0, result.stderr
    calls = job.reconciler_calls()
    assert [c[0] for c in calls] == ["apply", "plan"]
    replan = job.work / "replan"
    assert calls[1] == ["plan", ".", "--format", "markdown", "--out", str(replan / "plans.json")]
    outputs = job.outputs()
    assert outputs["outcome"] == "plan_mismatch"
    assert outputs["plan-file"] == str(replan / "plans.json") and outputs["comment-file"] == str(replan / "comment.md")
    assert (replan / "comment.md").read_text() == "#### the new plan\n"

    # GitLab marks the job "allowed to fail" with its own exit code, so the manual job shows.
    again = job.run("apply.sh", ".", "--plan", reviewed_plan(job), **on_github(job, RECONCILER_REPLANNED_EXIT="2"))
    assert again.returncode == 2


def test_a_plan_mismatch_whose_new_plan_has_refusals_fails(tmp_path):
    job = Job(tmp_path, fake_reconciler=True)
    job.answer_reconciler(
        {
            "apply": {"exit": 1, "stdout": report("plan_mismatch")},
            "plan": {"exit": 3, "stdout": "#### refused\n", "saved": "{}"},
        }
    )
    result = job.run("apply.sh", ".", "--plan", reviewed_plan(job), **on_github(job))
    assert result.returncode == 1 and "nothing to approve" in result.stderr


APPROVED = {"RECONCILER_REPLANNED": "1", "RECONCILER_REPLAN_APPROVAL": "required-reviewers"}


def test_the_approved_plan_mismatching_again_fails(tmp_path):
    job = Job(tmp_path, fake_reconciler=True)
    job.answer_reconciler({"apply": {"exit": 1, "stdout": report("plan_mismatch")}})
    result = job.run("apply.sh", ".", "--plan", reviewed_plan(job), **on_github(job, **APPROVED))
    assert result.returncode == 1
    assert [c[0] for c in job.reconciler_calls()] == ["apply"]


@pytest.mark.parametrize("declared", [None, "", "yes", "protected-environment"])
def test_the_approval_job_refuses_unless_the_repository_declares_its_gate(tmp_path, declared):
    """Required reviewers need a public repository or GitHub Enterprise: without them the approval job
    starts at once. It applies only when the admin who set them up also set RECONCILER_REPLAN_APPROVAL."""
    job = Job(tmp_path, fake_reconciler=True)
    job.answer_reconciler({"apply": {"stdout": report("applied")}})
    env = on_github(job, RECONCILER_REPLANNED="1")
    if declared is not None:
        env["RECONCILER_REPLAN_APPROVAL"] = declared
    result = job.run("apply.sh", ".", "--plan", reviewed_plan(job), **env)
    assert result.returncode == 1
    assert (
        "no approval gate is declared" in result.stderr
        and "RECONCILER_REPLAN_APPROVAL=required-reviewers" in result.stderr
    )
    assert job.reconciler_calls() == []

    approved = job.run("apply.sh", ".", "--plan", reviewed_plan(job), **on_github(job, **APPROVED))
    assert approved.returncode == 0, approved.stderr
    assert [c[0] for c in job.reconciler_calls()] == ["apply"]


def test_the_approval_job_without_a_new_plan_says_so(tmp_path):
    """GitLab shows the manual approval job on every pipeline: run when the apply made no new plan, it
    refuses and says why."""
    job = Job(tmp_path, fake_reconciler=True)
    result = job.run("apply.sh", ".", "--plan", job.work / "replan" / "plans.json", **on_github(job, **APPROVED))
    assert result.returncode == 1 and "no new plan waits for approval" in result.stderr
    assert job.reconciler_calls() == []


# -- only the tip of main is applied ---------------------------------------------------------------------


def test_a_commit_that_is_no_longer_mains_tip_is_not_applied(tmp_path):
    """A re-run of an older apply (or one that waited while later merges landed) would plan from older
    manifests and undo what was merged since: it applies nothing and says the newer apply does it."""
    job = Job(tmp_path, fake_reconciler=True)
    job.answer_reconciler({"apply": {"stdout": report("applied")}})
    result = job.run("apply.sh", ".", "--plan", reviewed_plan(job), **on_github(job, tip=LATER, GITHUB_RUN_ATTEMPT="2"))
    assert result.returncode == 0, result.stderr
    assert job.reconciler_calls() == []
    assert job.outputs()["outcome"] == "superseded"
    assert f"main is at {LATER} now, no longer at {SHA}" in result.stderr
    assert [c["args"] for c in job.gh_calls()] == [BRANCH]


def test_the_approval_job_of_an_older_commit_applies_nothing(tmp_path):
    job = Job(tmp_path, fake_reconciler=True)
    result = job.run("apply.sh", ".", "--plan", reviewed_plan(job), **on_github(job, tip=LATER, **APPROVED))
    assert result.returncode == 0 and job.outputs()["outcome"] == "superseded"
    assert job.reconciler_calls() == []


def test_a_mismatch_does_not_plan_again_once_main_has_moved_on(tmp_path):
    """main moved while the apply ran (it waited for the lock): the new plan would be made from this older
    commit's manifests, so none is made, and the approval job does not start."""
    job = Job(tmp_path, fake_reconciler=True)
    job.answer_reconciler({"apply": {"exit": 1, "stdout": report("plan_mismatch")}, "plan": {"saved": "{}"}})
    env = on_github(job)
    main_moves_after_the_first_look(job)
    result = job.run("apply.sh", ".", "--plan", reviewed_plan(job), **env)
    assert result.returncode == 0, result.stderr
    assert [c[0] for c in job.reconciler_calls()] == ["apply"]
    assert job.outputs()["outcome"] == "superseded" and "plan-file" not in job.outputs()
    assert len((job.tmp / "gh-calls.txt").read_text().splitlines()) == 2


def test_apply_refuses_when_mains_tip_cannot_be_told(tmp_path):
    job = Job(tmp_path, fake_reconciler=True)
    env = on_github(job)
    job.answer_gh([{"args": BRANCH, "exit": 1, "stderr": "HTTP 502\n"}])
    result = job.run("apply.sh", ".", "--plan", reviewed_plan(job), **env)
    assert result.returncode == 1 and "cannot tell whether this commit is still the tip" in result.stderr
    assert job.reconciler_calls() == []


def test_apply_refuses_outside_github_and_gitlab(tmp_path):
    job = Job(tmp_path, fake_reconciler=True)
    result = job.run("apply.sh", ".", "--plan", reviewed_plan(job))
    assert result.returncode == 1 and job.reconciler_calls() == []


@pytest.mark.parametrize(("outcome", "code"), [("lock_held", 1), ("failed", 1), ("refused", 3), ("interrupted", 143)])
def test_any_other_failure_fails_the_job(tmp_path, outcome, code):
    job = Job(tmp_path, fake_reconciler=True)
    job.answer_reconciler({"apply": {"exit": code, "stdout": report(outcome)}})
    result = job.run("apply.sh", ".", "--plan", reviewed_plan(job), **on_github(job))
    assert result.returncode == code
    assert [c[0] for c in job.reconciler_calls()] == ["apply"]
    assert job.outputs()["outcome"] == outcome and job.outputs()["exit-code"] == str(code)


# -- a real cancellation ---------------------------------------------------------------------------------


def simulator_root(tmp_path: Path) -> Path:
    """A running local-disk instance imaged with `running: stop`, on the embedded simulator with latency:
    the create is slow enough to be interrupted, and the restart it owes is a compensation."""
    root = tmp_path / "root"
    shutil.copytree(CASES / "running-u2-stop" / "root", root)
    seed = yaml.safe_load((root / "seed.yaml").read_text())
    seed["behaviour"] = {**(seed.get("behaviour") or {}), "image_ready_after_polls": 200, "latency_ms": 20}
    (root / "seed.yaml").write_text(yaml.safe_dump(seed))
    return root


def test_sigint_to_the_apply_script_reaches_the_tool_which_runs_its_compensations(tmp_path):
    job = Job(tmp_path)  # the real reconciler
    root = simulator_root(tmp_path)
    planned = job.run("plan.sh", root)
    assert planned.returncode == 0, planned.stderr
    plan = job.work / "plans.json"

    process = job.start("apply.sh", root, "--plan", plan, **on_github(job))
    deadline = time.monotonic() + 30
    for line in process.stderr:  # the tool's progress, live
        if line.startswith("  start   create"):
            break
        assert time.monotonic() < deadline, "the create never started"
    time.sleep(0.3)
    process.send_signal(signal.SIGINT)
    stdout, rest = process.communicate(timeout=30)
    assert process.returncode == 130, rest

    result = json.loads((job.work / "report.json").read_text())
    statuses = {r["kind"]: r["status"] for r in result["results"]}
    assert result["outcome"] == "interrupted" and job.outputs()["outcome"] == "interrupted"
    assert statuses == {"stop_instance": "done", "create": "interrupted", "start_instance": "done"}, result
    state = json.loads((root / ".reconciler" / "sim-state.json").read_text())
    (server,) = state["servers"].values()
    assert server["status"] == "ACTIVE" and "reconciler_stopped_by" not in server.get("metadata", {})
