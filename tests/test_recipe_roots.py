"""The recipes with several roots (examples/gitops/ has three: platform, storefront and apps): plan.sh plans every
root into one comment and one saved plans.json, and posts the Markdown even when one root could not be
planned (its section says why); apply.sh applies the saved plan of every root, reads the reports
document's top-level outcome, re-plans every root after a mismatch at any of them and fails the job when a
root stops the run; run.sh and the composite action (action.yml) split the `root` input on whitespace, and
refuse a root whose path holds whitespace. Against a fake `reconciler` that records its arguments."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from recipes.harness import REPO, Job

REPOSITORY = "acme/images"
SHA = "a" * 40
BRANCH = ["api", f"repos/{REPOSITORY}/branches/main"]
ROOTS = ["platform", "storefront", "apps"]  # the example's RECONCILER_ROOTS

SECTIONS = (
    "### reconciler plan · 3 roots\n\n**Safe to apply**: 3 actions\n\n"
    "#### root 1 of 3: `platform`\n\n1 action\n\n#### root 2 of 3: `storefront`\n\n1 action\n\n"
    "#### root 3 of 3: `apps`\n\n1 action\n"
)
ONE_ERRORED = (
    "### reconciler plan · 3 roots\n\n**Cannot be applied**: 0 actions, 1 root not planned\n\n"
    "#### root 1 of 3: `platform`\n\n**No changes**\n\n#### root 2 of 3: `storefront`\n\n"
    "**Could not be planned**: 1 problem found\n\n- reconciler.yaml:6:1: bogus: unknown key\n\n"
    "#### root 3 of 3: `apps`\n\n**No changes**\n"
)


def on_github(job: Job, **env: str) -> dict[str, str]:
    """A push to main at SHA, which is still main's tip."""
    job.answer_gh([{"args": BRANCH, "stdout": json.dumps({"name": "main", "commit": {"sha": SHA}})}])
    return {
        "GITHUB_ACTIONS": "true",
        "GITHUB_REPOSITORY": REPOSITORY,
        "GITHUB_SHA": SHA,
        "GITHUB_REF_NAME": "main",
        **env,
    }


def reports(*outcomes: str) -> str:
    """apply's JSON document for several roots: the first outcome that is not applied is the run's."""
    roots: list[dict[str, Any]] = []
    for root, outcome in zip(ROOTS, outcomes, strict=True):
        entry: dict[str, Any] = {"root": root, "outcome": outcome}
        if outcome != "not_run":
            entry |= {"results": [], "summary": {}}
        roots.append(entry)
    stopped = next((o for o in outcomes if o != "applied"), "applied")
    return json.dumps({"format": "reconciler-apply-reports", "format_version": "1", "outcome": stopped, "roots": roots})


def saved_plans(job: Job) -> Path:
    plans = job.tmp / "reviewed" / "plans.json"
    plans.parent.mkdir(parents=True, exist_ok=True)
    plans.write_text('{"format": "reconciler-plans"}')
    return plans


def test_plan_makes_one_comment_and_one_saved_plan_of_every_root(tmp_path):
    job = Job(tmp_path, fake_reconciler=True)
    job.answer_reconciler({"plan": {"stdout": SECTIONS, "saved": '{"format": "reconciler-plans"}'}})
    result = job.run("plan.sh", *ROOTS, "--detailed-exitcode")
    assert result.returncode == 0, result.stderr
    (call,) = job.reconciler_calls()
    plans = job.work / "plans.json"
    assert call == ["plan", *ROOTS, "--format", "markdown", "--out", str(plans), "--detailed-exitcode"]
    outputs = job.outputs()
    assert outputs["outcome"] == "planned" and outputs["plan-file"] == str(plans)
    assert (job.work / "comment.md").read_text() == SECTIONS


def test_a_root_that_could_not_be_planned_still_gets_the_markdown_comment(tmp_path):
    """The tool exits 1 and saves nothing, but its Markdown has every root's section, the failed root's
    saying why: that is the comment, with a line saying no plan was kept, never the bare error text."""
    job = Job(tmp_path, fake_reconciler=True)
    no_plan = "No plan was saved to plans.json: not every root could be planned\n"
    job.answer_reconciler({"plan": {"exit": 1, "stdout": ONE_ERRORED, "stderr": no_plan}})
    result = job.run("plan.sh", *ROOTS)
    assert result.returncode == 1
    assert no_plan in result.stderr  # the job's log still shows it
    comment = (job.work / "comment.md").read_text()
    assert comment.startswith(ONE_ERRORED)
    assert "**reconciler plan failed** (exit 1): no saved plan was kept" in comment
    assert "```" not in comment  # not error_comment.py's fenced error text
    outputs = job.outputs()
    assert outputs["outcome"] == "failed" and outputs["plan-file"] == ""

    # A plan that printed no Markdown (a usage error, before any root) still posts its error text.
    job.answer_reconciler({"plan": {"exit": 1, "stderr": "error: the same root twice: platform\n"}})
    assert job.run("plan.sh", "platform", "platform").returncode == 1
    comment = (job.work / "comment.md").read_text()
    assert "```text\nerror: the same root twice: platform\n```" in comment


def test_apply_applies_the_saved_plan_of_every_root(tmp_path):
    job = Job(tmp_path, fake_reconciler=True)
    job.answer_reconciler({"apply": {"stdout": reports("applied", "applied", "applied")}})
    plans = saved_plans(job)
    result = job.run("apply.sh", *ROOTS, "--plan", plans, **on_github(job))
    assert result.returncode == 0, result.stderr
    (call,) = job.reconciler_calls()
    assert call[: len(ROOTS) + 1] == ["apply", *ROOTS] and call[-2:] == ["--plan", str(plans)]
    assert job.outputs()["outcome"] == "applied"
    assert all(f"apply.sh: root {root}: applied" in result.stderr for root in ROOTS)


def test_a_mismatch_at_the_second_root_plans_every_root_again(tmp_path):
    """The first root applied, the second's reviewed plan no longer matches (the third is not run): the new
    plan covers every root (the first one's is empty now), since the approval job applies one saved plan of
    the same roots."""
    job = Job(tmp_path, fake_reconciler=True)
    job.answer_reconciler(
        {
            "apply": {"exit": 1, "stdout": reports("applied", "plan_mismatch", "not_run")},
            "plan": {"stdout": SECTIONS, "saved": '{"format": "reconciler-plans"}'},
        }
    )
    result = job.run("apply.sh", *ROOTS, "--plan", saved_plans(job), **on_github(job))
    assert result.returncode == 0, result.stderr
    calls = job.reconciler_calls()
    replan = job.work / "replan"
    assert calls[1] == ["plan", *ROOTS, "--format", "markdown", "--out", str(replan / "plans.json")]
    outputs = job.outputs()
    assert outputs["outcome"] == "plan_mismatch" and outputs["plan-file"] == str(replan / "plans.json")
    assert (replan / "comment.md").read_text() == SECTIONS


@pytest.mark.parametrize(("stopped", "code"), [("failed", 1), ("refused", 3), ("lock_held", 1)])
def test_a_root_that_stops_the_run_fails_the_job(tmp_path, stopped, code):
    job = Job(tmp_path, fake_reconciler=True)
    job.answer_reconciler({"apply": {"exit": code, "stdout": reports("applied", stopped, "not_run")}})
    result = job.run("apply.sh", *ROOTS, "--plan", saved_plans(job), **on_github(job))
    assert result.returncode == code
    assert [c[0] for c in job.reconciler_calls()] == ["apply"]  # no re-plan
    assert job.outputs()["outcome"] == stopped
    assert f"apply.sh: root storefront: {stopped}" in result.stderr
    assert "apply.sh: root apps: not_run" in result.stderr  # the consumer after it: listed, not applied


def test_run_splits_its_roots_on_whitespace(tmp_path):
    job = Job(tmp_path, fake_reconciler=True)
    job.answer_reconciler({"validate": {}, "plan": {"stdout": SECTIONS, "saved": "{}"}})
    assert job.run("run.sh", "validate", " platform\tstorefront  apps ").returncode == 0
    assert job.run("run.sh", "plan", "platform storefront apps", "--detailed-exitcode").returncode == 0
    validate, plan = job.reconciler_calls()
    assert validate == ["validate", *ROOTS]
    assert plan[: len(ROOTS) + 1] == ["plan", *ROOTS] and plan[-1] == "--detailed-exitcode"


@pytest.mark.parametrize(
    ("command", "roots", "message"),
    [
        ("validate", "my roots", "has whitespace in its path, which is not supported"),
        ("plan", "   ", "no root given"),
        ("plan", "platform -x", "starts with '-'"),
        ("doctor", "platform storefront", "doctor checks one root at a time"),
    ],
)
def test_run_refuses_roots_it_cannot_pass_on(tmp_path, command, roots, message):
    job = Job(tmp_path, fake_reconciler=True)
    (tmp_path / "my roots").mkdir()
    result = job.run("run.sh", command, roots)
    assert result.returncode == 1 and message in result.stderr
    assert job.reconciler_calls() == []


def action_step(index: int) -> dict[str, Any]:
    return yaml.safe_load((REPO / "action.yml").read_text())["runs"]["steps"][index]


def run_step(step: dict[str, Any], job: Job, action_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """A composite action's step as the runner runs it: bash with the step's env and GITHUB_ACTION_PATH."""
    given = {name: value for name, value in step["env"].items() if "${{" not in str(value)}
    return subprocess.run(
        ["bash", "-e", "-c", step["run"]],
        cwd=job.tmp,
        env={**job.environment(), **given, "GITHUB_ACTION_PATH": str(action_path), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_action_passes_several_roots_to_the_command(tmp_path):
    job = Job(tmp_path, fake_reconciler=True)
    job.answer_reconciler({"plan": {"stdout": SECTIONS, "saved": "{}"}})
    result = run_step(
        action_step(1),
        job,
        REPO,
        INPUT_COMMAND="plan",
        INPUT_ROOT="platform storefront apps",
        INPUT_ARGS="--detailed-exitcode",
    )
    assert result.returncode == 0, result.stderr
    (call,) = job.reconciler_calls()
    assert call[: len(ROOTS) + 1] == ["plan", *ROOTS] and call[-1] == "--detailed-exitcode"
    assert job.outputs()["plan-file"] == str(job.work / "plans.json")
    # One root, as before.
    assert run_step(action_step(1), job, REPO, INPUT_COMMAND="plan", INPUT_ROOT=".", INPUT_ARGS="").returncode == 0
    assert job.reconciler_calls()[-1][:2] == ["plan", "."]


def test_the_action_installs_without_any_roots_credentials(tmp_path):
    """A root names its own API user's prefix (storefront: STOREFRONT_*), which the action cannot list:
    the install step sees no *_USERNAME, *_API_PASSWORD or *_TENANT_ID at all."""
    job = Job(tmp_path)
    action = tmp_path / "action"
    install = action / "examples" / "gitops" / "ci" / "install.sh"
    install.parent.mkdir(parents=True)
    install.write_text(f"#!/bin/sh\nenv > {tmp_path / 'install-env'}\n")
    install.chmod(0o755)
    secrets = {
        "STOREFRONT_USERNAME": "storefront-writer",
        "STOREFRONT_API_PASSWORD": "s3cret",
        "STOREFRONT_TENANT_ID": "8989447062e04a818baf9e073fd04fa7",
        "NHN_CLOUD_API_PASSWORD": "n3cret",
    }
    result = run_step(action_step(0), job, action, RECONCILER_PACKAGE="--require-hashes -r r.txt", **secrets)
    assert result.returncode == 0, result.stderr
    seen = (tmp_path / "install-env").read_text()
    assert "RECONCILER_PACKAGE=--require-hashes -r r.txt" in seen
    assert not any(value in seen for value in secrets.values())
