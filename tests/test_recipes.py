"""The GitOps recipes: a valid root, workflow files and the composite action (action.yml) valid for GitHub
Actions and GitLab CI (checked with check-jsonschema's built-in schemas), the security posture the recipes
promise (examples/gitops/README.md, "Security"), and a pre-commit hook that runs reconciler validate. The
scripts the recipes run are tested in tests/test_recipe_*.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from reconciler.cli import main

REPO = Path(__file__).resolve().parent.parent
GITOPS = REPO / "examples" / "gitops"
WORKFLOWS = sorted((GITOPS / ".github" / "workflows").glob("*.yml"))
ACTION = "FILL-IN-OWNER/reconciler@FILL-IN-COMMIT"


def workflow(name: str) -> dict:
    return yaml.safe_load((GITOPS / ".github" / "workflows" / name).read_text())


def gitlab() -> dict:
    return yaml.safe_load((GITOPS / ".gitlab-ci.yml").read_text())


def steps_using(job: dict, action: str) -> list[dict]:
    return [step for step in job["steps"] if step.get("uses", "").startswith(action)]


def check_jsonschema(schema: str, *files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, *map(str, files)],
        capture_output=True,
        text=True,
    )


def test_the_gitops_root_is_valid(capsys):
    assert main(["validate", str(GITOPS)]) == 0
    assert "OK: 3 images in 2 files" in capsys.readouterr().out  # workflow files are not manifests


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=[w.name for w in WORKFLOWS])
def test_github_workflows_match_githubs_schema(workflow):
    result = check_jsonschema("vendor.github-workflows", workflow)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_gitlab_pipeline_matches_gitlabs_schema():
    result = check_jsonschema("vendor.gitlab-ci", GITOPS / ".gitlab-ci.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_action_matches_githubs_schema():
    result = check_jsonschema("vendor.github-actions", REPO / "action.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_action_takes_a_root_a_command_and_arguments_and_says_how_it_went():
    action = yaml.safe_load((REPO / "action.yml").read_text())
    assert {"package", "command", "root", "args"} <= set(action["inputs"])
    assert {"exit-code", "outcome", "plan-file"} <= set(action["outputs"])
    assert action["runs"]["using"] == "composite"
    for step in action["runs"]["steps"]:  # inputs reach the scripts as variables, never as script text
        assert "${{" not in step["run"], step["run"]
        assert step["run"].strip().splitlines()[-1].startswith(("exec ", "RECONCILER_VENV=")), step["run"]


def test_the_github_recipes_use_the_action_pinned_like_the_package():
    for path in WORKFLOWS:
        jobs = yaml.safe_load(path.read_text())["jobs"]
        uses = [step["uses"] for job in jobs.values() for step in job["steps"] if "reconciler" in step.get("uses", "")]
        assert uses and set(uses) == {ACTION}, path.name
        for job in jobs.values():
            for step in steps_using(job, ACTION):
                assert step["with"]["package"] == "${{ env.RECONCILER_PACKAGE }}", path.name


def test_the_apply_workflow_never_overlaps_and_applies_the_reviewed_plan():
    apply = workflow("reconciler-apply.yml")
    assert apply["concurrency"] == {"group": "reconciler-apply", "cancel-in-progress": False}
    steps = steps_using(apply["jobs"]["apply"], ACTION)
    assert [s["with"]["command"] for s in steps] == ["find-plan", "apply"]
    assert steps[1]["with"]["args"] == "--plan ${{ steps.reviewed.outputs.plan-file }}"
    replanned = apply["jobs"]["apply-replanned"]
    assert replanned["needs"] == "apply" and replanned["if"] == "needs.apply.outputs.outcome == 'plan_mismatch'"
    assert replanned["environment"] == "reconciler-apply-approval" and replanned["env"]["RECONCILER_REPLAN"] == "0"


def test_the_plan_is_kept_before_the_comment_is_posted():
    names = [step.get("name", step.get("uses")) for step in workflow("reconciler-plan.yml")["jobs"]["plan"]["steps"]]
    assert names.index("Keep the saved plan for the apply on merge") < names.index("Post or update the plan comment")


def test_only_the_apply_jobs_hold_write_credentials():
    """Plans read with a read-only API user; the write credentials exist only in the apply jobs, which run
    in protected environments on the default branch."""
    for path in WORKFLOWS:
        doc = yaml.safe_load(path.read_text())
        assert "pull_request_target" not in doc[True], path.name  # YAML 1.1 reads the key `on` as true
        assert "secrets." not in yaml.safe_dump(doc.get("env", {})), path.name
        for name, job in doc["jobs"].items():
            password = job.get("env", {}).get("NHN_CLOUD_API_PASSWORD")
            if name.startswith("apply"):
                assert password == "${{ secrets.NHN_CLOUD_API_PASSWORD }}", (path.name, name)
                assert job["environment"] in ("reconciler-apply", "reconciler-apply-approval")
            else:
                assert password in (None, "${{ secrets.NHN_CLOUD_READONLY_API_PASSWORD }}"), (path.name, name)
    plan = workflow("reconciler-plan.yml")["jobs"]["plan"]
    assert plan["if"] == "github.event.pull_request.head.repo.full_name == github.repository"  # forks: validate only
    pipeline = gitlab()
    for name in ("plan", "drift"):
        assert pipeline[name]["variables"]["NHN_CLOUD_API_PASSWORD"] == "$RECONCILER_READONLY_API_PASSWORD"
    assert "$CI_MERGE_REQUEST_SOURCE_PROJECT_ID == $CI_PROJECT_ID" in pipeline["plan"]["rules"][0]["if"]
    for name in ("apply", "apply-replanned"):
        assert "NHN_CLOUD_API_PASSWORD" not in pipeline[name].get("variables", {})  # the protected variable
        assert pipeline[name]["environment"]["name"].startswith("reconciler-apply")
        assert pipeline[name]["rules"][0]["if"].startswith("$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH")


def test_every_github_workflow_asks_for_the_permissions_it_needs_only():
    expected = {
        "reconciler-plan.yml": {
            "validate": {"contents": "read"},
            "plan": {"contents": "read", "pull-requests": "write"},
        },
        "reconciler-apply.yml": {
            "apply": {"contents": "read", "actions": "read", "pull-requests": "read"},
            "apply-replanned": {"contents": "read", "actions": "read"},
        },
    }
    for name, jobs in expected.items():
        doc = workflow(name)
        assert doc["permissions"] in ({}, {"contents": "read"}), name
        assert {job: doc["jobs"][job]["permissions"] for job in jobs} == jobs
    assert workflow("reconciler-drift.yml")["permissions"] == {"contents": "read", "issues": "write"}


def test_the_gitlab_apply_job_fetches_the_reviewed_plan_and_the_approval_job_gets_the_new_one():
    pipeline = gitlab()
    apply = pipeline["apply"]
    assert apply["script"][0].startswith("ci/gitlab-find-plan.sh")
    assert apply["script"][1] == 'ci/run.sh apply . --plan "$RECONCILER_WORK/reviewed/plan.json"'
    assert apply["resource_group"] == "reconciler-apply" and apply["allow_failure"] == {"exit_codes": [2]}
    assert "reconciler-ci/replan/plan.json" in apply["artifacts"]["paths"]
    replanned = pipeline["apply-replanned"]
    assert replanned["needs"] == [{"job": "apply", "artifacts": True}]
    assert replanned["rules"][0]["when"] == "manual" and replanned["variables"]["RECONCILER_REPLAN"] == "0"
    plan = pipeline["plan"]
    assert plan["artifacts"]["when"] == "always" and "reconciler-ci/plan.json" in plan["artifacts"]["paths"]
    assert pipeline["variables"]["RECONCILER_WORK"] == "$CI_PROJECT_DIR/reconciler-ci"


def test_the_pre_commit_hook_runs_validate(tmp_path):
    (hook,) = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "reconciler-validate" and hook["pass_filenames"] is False
    entry = hook["entry"].split()
    assert entry[:2] == ["reconciler", "validate"]
    # As pre-commit runs it: in the repository root, no file names passed.
    result = subprocess.run(
        [sys.executable, "-m", "reconciler", *entry[1:]], cwd=GITOPS, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
