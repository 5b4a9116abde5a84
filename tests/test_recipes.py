"""The GitOps recipes: a valid root, workflow files and the composite action (action.yml) valid for GitHub
Actions and GitLab CI (checked with check-jsonschema's built-in schemas), the security posture the recipes
promise (examples/gitops/README.md, "Security": credentials in the one step that needs them, apply runners
no pull request can reach), re-runs that work (artifacts overwritten), pipelines that a waiting approval
does not block, triggers without path filters, and a pre-commit hook that runs reconciler validate. The
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
ROOTS = ["platform", "storefront", "apps"]  # the example's three roots, one project each (apps: a consumer)
OWN_USERS = {"storefront": "STOREFRONT", "apps": "APPS"}  # each root with cloud.credentials: its own API user


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


def test_the_gitops_roots_are_valid(capsys):
    assert main(["validate", *(str(GITOPS / root) for root in ROOTS)]) == 0
    out = capsys.readouterr().out
    assert "OK: 3 images (1 of them kept versions of 1 family) in 2 files" in out  # workflows are not manifests
    assert "OK: 1 image in 1 file" in out
    assert "OK: 0 images, 1 accept rule, 0 reject rules in 1 file" in out  # apps: a consumer root of rules only


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
        assert step["run"].strip().splitlines()[-1].startswith("exec "), step["run"]
        assert step["env"]["RECONCILER_VENV"] == "${{ runner.temp }}/reconciler-venv"  # outside the checkout
    install = action["runs"]["steps"][0]
    assert "install.sh" in install["run"]
    # A caller passes the write credentials to its apply step; installing needs none of them.
    assert {install["env"][name] for name in ("NHN_CLOUD_USERNAME", "NHN_CLOUD_API_PASSWORD", "GH_TOKEN")} == {""}


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
    assert replanned["environment"] == "reconciler-apply-approval"
    (step,) = steps_using(replanned, ACTION)
    assert step["env"]["RECONCILER_REPLANNED"] == "1"
    # Declared by whoever set up the required reviewers, as a variable of the repository or environment.
    assert step["env"]["RECONCILER_REPLAN_APPROVAL"] == "${{ vars.RECONCILER_REPLAN_APPROVAL }}"


def test_the_plan_is_kept_before_the_comment_is_posted():
    names = [step.get("name", step.get("uses")) for step in workflow("reconciler-plan.yml")["jobs"]["plan"]["steps"]]
    assert names.index("Keep the saved plan for the apply on merge") < names.index("Post or update the plan comment")


WRITE = "${{ secrets.NHN_CLOUD_API_PASSWORD }}"
READ_ONLY = "${{ secrets.NHN_CLOUD_READONLY_API_PASSWORD }}"


def test_credentials_reach_only_the_step_that_runs_the_tool():
    """No job holds a credential in its env: a step that needs none (checkout, setup-python, find-plan, the
    comment, an action's install) never sees one. The write credentials reach exactly one step per apply
    job, the one that runs apply, in a protected environment; plans read with a read-only API user."""
    for path in WORKFLOWS:
        doc = yaml.safe_load(path.read_text())
        assert "pull_request_target" not in doc[True], path.name  # YAML 1.1 reads the key `on` as true
        assert "secrets." not in yaml.safe_dump(doc.get("env", {})), path.name
        for name, job in doc["jobs"].items():
            assert "secrets." not in yaml.safe_dump(job.get("env", {})), (path.name, name)
            holding = {step.get("name", step.get("uses")): step["env"]["NHN_CLOUD_API_PASSWORD"]
                       for step in job["steps"] if "NHN_CLOUD_API_PASSWORD" in step.get("env", {})}  # fmt: skip
            commands = {step.get("name", step.get("uses")): step.get("with", {}).get("command")
                        for step in job["steps"]}  # fmt: skip
            if name.startswith("apply"):
                assert job["environment"] in ("reconciler-apply", "reconciler-apply-approval")
                assert list(holding.values()) == [WRITE], (path.name, name)
                assert [commands[step] for step in holding] == ["apply"], (path.name, name)
            elif holding:
                assert list(holding.values()) == [READ_ONLY], (path.name, name)
                assert [commands[step] for step in holding] == ["plan"], (path.name, name)
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


def test_the_readme_keeps_pull_requests_off_the_apply_runners():
    """A same-repository pull request can edit a workflow to run on the apply runner (runs-on, tags) and
    leave something behind for the next apply: only the README can require runners that prevent it."""
    readme = " ".join((GITOPS / "README.md").read_text().split())
    assert "ephemeral" in readme and "--ephemeral" in readme
    assert "protected runner" in readme and "does not run untagged jobs" in readme
    assert "selected workflows" in readme


def test_the_readme_says_what_a_git_url_pins_and_what_the_runners_need():
    readme = " ".join((GITOPS / "README.md").read_text().split())
    assert "pins reconciler's own code to one commit, and nothing else" in readme
    assert "`install.sh` refuses the git URL form" in readme
    assert "the GitHub CLI `gh` on the self-hosted runners" in readme
    assert "Python 3.11 or newer with its `venv` module" in readme and "never into the runner's own Python" in readme
    assert "no `paths:` filter" in readme and "whatever it changes" in readme


def test_a_re_run_replaces_the_artifacts_it_uploads():
    """Artifact names are unique within a run: a re-run's upload fails unless it overwrites."""
    uploads = [
        step
        for path in WORKFLOWS
        for job in yaml.safe_load(path.read_text())["jobs"].values()
        for step in job["steps"]
        if step.get("uses", "").startswith("actions/upload-artifact")
    ]
    assert len(uploads) == 2 and all(step["with"]["overwrite"] is True for step in uploads)


def test_every_pull_request_and_every_push_to_main_runs():
    """No path filter: a required plan check must report on every pull request, and a merge that changes no
    manifest must still run its apply (it applies what a superseded earlier apply left to it)."""
    for name, event in (("reconciler-plan.yml", "pull_request"), ("reconciler-apply.yml", "push")):
        trigger = workflow(name)[True][event] or {}
        assert not {"paths", "paths-ignore"} & set(trigger), name
    pipeline = gitlab()
    assert not any("changes" in rule for name in ("plan", "apply") for rule in pipeline[name]["rules"])


def test_the_gitlab_jobs_install_into_a_virtual_environment_outside_the_checkout():
    pipeline = gitlab()
    venv = pipeline["variables"]["RECONCILER_VENV"]
    assert venv.startswith("/tmp/") and "$CI_JOB_ID" in venv and "CI_PROJECT_DIR" not in venv
    assert pipeline["default"]["before_script"] == ["ci/install.sh"]
    assert pipeline["default"]["after_script"] == ['rm -rf "$RECONCILER_VENV"']


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
    assert apply["script"][1] == 'ci/run.sh apply "$RECONCILER_ROOTS" --plan "$RECONCILER_WORK/reviewed/plans.json"'
    assert apply["resource_group"] == "reconciler-apply" and apply["allow_failure"] == {"exit_codes": [2]}
    assert "reconciler-ci/replan/plans.json" in apply["artifacts"]["paths"]
    replanned = pipeline["apply-replanned"]
    assert replanned["needs"] == [{"job": "apply", "artifacts": True}]
    (rule,) = replanned["rules"]
    assert rule["when"] == "manual" and replanned["variables"]["RECONCILER_REPLANNED"] == "1"
    # A manual job may not fail by default: the pipeline of every merge would wait on it, "blocked".
    assert rule["allow_failure"] is True
    # The gate's declaration comes from the project's settings, never from the file a merge request edits.
    defined = [pipeline["variables"], *(job.get("variables", {}) for job in pipeline.values() if isinstance(job, dict))]
    assert not any("RECONCILER_REPLAN_APPROVAL" in variables for variables in defined)
    plan = pipeline["plan"]
    assert plan["artifacts"]["when"] == "always" and "reconciler-ci/plans.json" in plan["artifacts"]["paths"]
    assert pipeline["variables"]["RECONCILER_WORK"] == "$CI_PROJECT_DIR/reconciler-ci"


def test_the_pre_commit_hook_runs_validate(tmp_path):
    (hook,) = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "reconciler-validate" and hook["pass_filenames"] is False
    entry = hook["entry"].split()
    assert entry[:2] == ["reconciler", "validate"]
    # As pre-commit runs it: in the repository root, no file names passed, the roots as the hook's args
    # (the example's README shows `args: [platform, storefront, apps]`).
    assert f"args: [{', '.join(ROOTS)}]" in (GITOPS / "README.md").read_text()
    result = subprocess.run(
        [sys.executable, "-m", "reconciler", *entry[1:], *ROOTS], cwd=GITOPS, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_every_recipe_passes_every_root_with_each_projects_own_api_user():
    """The roots are listed once per file (RECONCILER_ROOTS), the consumer (apps) after the owner whose shares
    it accepts, and every validate, plan and apply gets them; the storefront's and apps' own users
    (STOREFRONT_*, APPS_*) follow the same read-only / write split as the default one, in the same steps."""
    for root, prefix in OWN_USERS.items():
        assert yaml.safe_load((GITOPS / root / "reconciler.yaml").read_text())["cloud"]["credentials"] == prefix
    for path in WORKFLOWS:
        doc = yaml.safe_load(path.read_text())
        assert doc["env"]["RECONCILER_ROOTS"].split() == ROOTS, path.name
        for job in doc["jobs"].values():
            for step in steps_using(job, ACTION):
                if step["with"]["command"] in ("validate", "plan", "apply"):
                    assert step["with"]["root"] == "${{ env.RECONCILER_ROOTS }}", (path.name, step)
                env = step.get("env", {})
                for variable in ("USERNAME", "API_PASSWORD"):
                    default = env.get(f"NHN_CLOUD_{variable}")
                    for prefix in OWN_USERS.values():
                        own = env.get(f"{prefix}_{variable}")
                        assert (default is None) == (own is None), (path.name, step, prefix)
                        if default is not None:
                            assert own == default.replace("secrets.NHN_CLOUD_", f"secrets.{prefix}_"), (path.name, own)
    pipeline = gitlab()
    assert pipeline["variables"]["RECONCILER_ROOTS"].split() == ROOTS
    for name in ("validate", "plan", "apply", "apply-replanned", "drift"):
        (run,) = [line for line in pipeline[name]["script"] if line.startswith("ci/run.sh")]
        assert run.split()[2] == '"$RECONCILER_ROOTS"', (name, run)
    for name in ("plan", "drift"):
        for prefix in OWN_USERS.values():
            variables = pipeline[name]["variables"]
            assert variables[f"{prefix}_USERNAME"] == f"$RECONCILER_{prefix}_READONLY_USERNAME", (name, prefix)
            assert variables[f"{prefix}_API_PASSWORD"] == f"$RECONCILER_{prefix}_READONLY_API_PASSWORD", (name, prefix)
    assert "reconciler-ci/plans.json" in pipeline["plan"]["artifacts"]["paths"]
