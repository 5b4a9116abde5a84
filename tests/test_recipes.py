"""The GitOps recipes: a valid root, workflow files valid for GitHub Actions and GitLab CI (checked with
check-jsonschema's built-in schemas), and a pre-commit hook that runs reconciler validate."""

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


def test_the_apply_workflow_never_overlaps_and_applies_the_saved_plan():
    apply = yaml.safe_load((GITOPS / ".github" / "workflows" / "reconciler-apply.yml").read_text())
    assert apply["concurrency"] == {"group": "reconciler-apply", "cancel-in-progress": False}
    script = "\n".join(step.get("run", "") for step in apply["jobs"]["apply"]["steps"])
    assert "reconciler apply --plan plan.json" in script and "--resume" in script


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
