"""The GitLab recipe scripts (examples/gitops/ci/) against a fake GitLab API on loopback that records every
request and replays answers: the apply job receives the plan artifact of the merge request that made the
commit (by iid and head commit) or refuses; it applies only while the commit is the default branch's tip;
a retried apply job passes --resume; the approval job refuses unless the project declares its gate; one
note per merge request, updated in place; the token travels in a header, never in a URL, and is written
to no file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from recipes.harness import FakeGitLab, Job

PROJECT = "42"
MERGE = "m" * 40
HEAD = "5" * 40
OTHER_HEAD = "6" * 40
TOKEN = "glpat-test-only"
API = f"/api/v4/projects/{PROJECT}"


def gitlab_env(url: str, **more: str) -> dict[str, str]:
    return {"GITLAB_CI": "true", "CI_API_V4_URL": url, "CI_PROJECT_ID": PROJECT, "GITLAB_API_TOKEN": TOKEN, **more}


def tip(sha: str = MERGE) -> dict:
    """GitLab's answer for the default branch: its tip is `sha`."""
    return {f"GET {API}/repository/branches/main": (200, {"name": "main", "commit": {"id": sha}})}


def apply_env(url: str, **more: str) -> dict[str, str]:
    """The apply job of a push to the default branch at MERGE, in pipeline 77."""
    job = {"CI_COMMIT_SHA": MERGE, "CI_DEFAULT_BRANCH": "main", "CI_PIPELINE_ID": "77", "CI_JOB_ID": "711"}
    return gitlab_env(url, **{**job, "CI_JOB_NAME": "apply", **more})


def merge_request(iid: int, head: str, state: str, merged_as: str | None) -> dict:
    return {"iid": iid, "sha": head, "state": state, "merge_commit_sha": merged_as, "squash_commit_sha": None}


def plan_routes(mrs: list[dict]) -> dict:
    return {
        f"GET {API}/repository/commits/{MERGE}/merge_requests": (200, mrs),
        f"GET {API}/merge_requests/5/pipelines": (
            200,
            [{"id": 90, "sha": OTHER_HEAD}, {"id": 91, "sha": HEAD}, {"id": 92, "sha": HEAD}],
        ),
        # The newest pipeline at the head was cancelled before its plan job finished.
        f"GET {API}/pipelines/92/jobs": (200, [{"id": 1200, "name": "plan", "status": "canceled", "artifacts": []}]),
        f"GET {API}/pipelines/91/jobs": (
            200,
            [
                {"id": 1100, "name": "validate", "status": "success", "artifacts": [{"file_type": "trace"}]},
                {"id": 1101, "name": "plan", "status": "success", "artifacts": [{"file_type": "archive"}]},
            ],
        ),
        f"GET {API}/pipelines/90/jobs": (200, [{"id": 1001, "name": "plan", "status": "success", "artifacts": [{}]}]),
        f"GET {API}/jobs/1101/artifacts/reconciler-ci/plans.json": (200, '{"the": "reviewed plan"}'),
        f"GET {API}/jobs/1001/artifacts/reconciler-ci/plans.json": (200, '{"the": "plan of an older push"}'),
    }


def test_the_apply_job_receives_the_plan_artifact_of_the_merge_request_that_made_the_commit(tmp_path):
    mrs = [merge_request(6, OTHER_HEAD, "opened", None), merge_request(5, HEAD, "merged", MERGE)]
    gitlab = FakeGitLab(plan_routes(mrs))
    job = Job(tmp_path)
    with gitlab.serving() as url:
        result = job.run("gitlab-find-plan.sh", **gitlab_env(url, CI_COMMIT_SHA=MERGE))
    assert result.returncode == 0, result.stderr
    assert json.loads((job.work / "reviewed" / "plans.json").read_text()) == {"the": "reviewed plan"}
    fetched = [r.path for r in gitlab.requests if r.path.endswith("plans.json")]
    assert fetched == [f"{API}/jobs/1101/artifacts/reconciler-ci/plans.json"]
    assert all(r.headers.get("PRIVATE-TOKEN") == TOKEN for r in gitlab.requests)
    assert not any(TOKEN in r.path or TOKEN in json.dumps(r.query) for r in gitlab.requests)


@pytest.mark.parametrize("how", ["squash", "fast-forward"])
def test_squash_and_fast_forward_merges_are_found_too(tmp_path, how):
    mr = merge_request(5, HEAD, "merged", None)
    if how == "squash":
        mr["squash_commit_sha"] = MERGE
    else:
        mr["sha"] = MERGE  # the commit on the branch is the head itself
    routes = plan_routes([mr])
    routes[f"GET {API}/merge_requests/5/pipelines"] = (200, [{"id": 91, "sha": mr["sha"]}])
    job = Job(tmp_path)
    with FakeGitLab(routes).serving() as url:
        result = job.run("gitlab-find-plan.sh", **gitlab_env(url, CI_COMMIT_SHA=MERGE))
    assert result.returncode == 0, result.stderr


def test_a_commit_no_merge_request_was_merged_as_is_refused(tmp_path):
    gitlab = FakeGitLab(plan_routes([merge_request(6, OTHER_HEAD, "opened", None)]))
    job = Job(tmp_path)
    with gitlab.serving() as url:
        result = job.run("gitlab-find-plan.sh", **gitlab_env(url, CI_COMMIT_SHA=MERGE))
    assert result.returncode == 1 and "was not made by merging one merge request" in result.stderr
    assert not any("artifacts" in r.path for r in gitlab.requests)
    assert not (job.work / "reviewed" / "plans.json").exists()


def test_a_merge_request_without_a_finished_plan_of_its_head_is_refused(tmp_path):
    routes = plan_routes([merge_request(5, HEAD, "merged", MERGE)])
    del routes[f"GET {API}/jobs/1101/artifacts/reconciler-ci/plans.json"]  # expired
    job = Job(tmp_path)
    with FakeGitLab(routes).serving() as url:
        result = job.run("gitlab-find-plan.sh", **gitlab_env(url, CI_COMMIT_SHA=MERGE))
    assert result.returncode == 1 and "merge request !5 was merged without a finished plan job" in result.stderr
    assert not (job.work / "reviewed" / "plans.json").exists()


# -- a retried apply job ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("jobs", "resumes"), [([], False), ([{"id": 700, "name": "apply", "status": "canceled"}], True)]
)
def test_a_retried_apply_job_passes_resume(tmp_path, jobs, resumes):
    listing = [
        *jobs,
        {"id": 711, "name": "apply", "status": "running"},
        {"id": 690, "name": "plan", "status": "success"},
    ]
    gitlab = FakeGitLab({f"GET {API}/pipelines/77/jobs": (200, listing), **tip()})
    job = Job(tmp_path, fake_reconciler=True)
    job.answer_reconciler({"apply": {"stdout": json.dumps({"outcome": "applied"})}})
    plan = tmp_path / "plans.json"
    plan.write_text("{}")
    with gitlab.serving() as url:
        result = job.run("apply.sh", ".", "--plan", plan, **apply_env(url))
    assert result.returncode == 0, result.stderr
    (call,) = job.reconciler_calls()
    assert ("--resume" in call) is resumes and call[call.index("--lock-timeout") + 1] == "300"
    (jobs,) = [r for r in gitlab.requests if r.path.endswith("/jobs")]
    assert jobs.query["include_retried"] == ["true"]


def test_a_retry_that_cannot_be_told_fails_the_job(tmp_path):
    job = Job(tmp_path, fake_reconciler=True)
    plan = tmp_path / "plans.json"
    plan.write_text("{}")
    with FakeGitLab(tip()).serving() as url:
        result = job.run("apply.sh", ".", "--plan", plan, **apply_env(url))
    assert result.returncode == 1 and "cannot tell whether this job is a retry" in result.stderr
    assert job.reconciler_calls() == []


# -- only the tip of the default branch; the approval job's gate ------------------------------------------


def test_a_commit_that_is_no_longer_the_default_branchs_tip_is_not_applied(tmp_path):
    """A retried apply job of an older pipeline would apply older manifests over later merges."""
    gitlab = FakeGitLab({**tip("9" * 40), f"GET {API}/pipelines/77/jobs": (200, [])})
    job = Job(tmp_path, fake_reconciler=True)
    plan = tmp_path / "plans.json"
    plan.write_text("{}")
    with gitlab.serving() as url:
        result = job.run("apply.sh", ".", "--plan", plan, **apply_env(url))
    assert result.returncode == 0, result.stderr
    assert f"main is at {'9' * 40} now, no longer at {MERGE}" in result.stderr
    assert job.reconciler_calls() == []
    assert [r.path for r in gitlab.requests] == [f"{API}/repository/branches/main"]


@pytest.mark.parametrize(
    ("declared", "applies"), [(None, False), ("required-reviewers", False), ("protected-environment", True)]
)
def test_the_approval_job_applies_only_behind_a_declared_protected_environment(tmp_path, declared, applies):
    """Protected environments (who may deploy) are GitLab Premium: without one, anyone who may run the
    pipeline's jobs could run the manual approval job."""
    gitlab = FakeGitLab({**tip(), f"GET {API}/pipelines/77/jobs": (200, [])})
    job = Job(tmp_path, fake_reconciler=True)
    job.answer_reconciler({"apply": {"stdout": json.dumps({"outcome": "applied"})}})
    plan = tmp_path / "plans.json"
    plan.write_text("{}")
    env = apply_env("", RECONCILER_REPLANNED="1", CI_JOB_NAME="apply-replanned")
    if declared:
        env["RECONCILER_REPLAN_APPROVAL"] = declared
    with gitlab.serving() as url:
        result = job.run("apply.sh", ".", "--plan", plan, **{**env, "CI_API_V4_URL": url})
    assert (result.returncode == 0) is applies, result.stderr
    assert bool(job.reconciler_calls()) is applies
    if not applies:
        assert "RECONCILER_REPLAN_APPROVAL=protected-environment" in result.stderr


# -- the token is written to no file ----------------------------------------------------------------------


def every_gitlab_script(tmp_path: Path, url: str) -> list[tuple[str, list[str], dict[str, str]]]:
    (tmp_path / "note.md").write_text("#### the plan\n")
    base = gitlab_env(url, CI_PIPELINE_ID="77", CI_JOB_ID="711", CI_JOB_NAME="apply", CI_DEFAULT_BRANCH="main")
    return [
        ("gitlab-retried.sh", [], base),
        ("gitlab-tip.sh", [], {**base, "CI_COMMIT_SHA": MERGE}),
        ("gitlab-find-plan.sh", [], {**base, "CI_COMMIT_SHA": MERGE}),
        ("gitlab-note.sh", [str(tmp_path / "note.md")], {**base, "CI_MERGE_REQUEST_IID": "9"}),
    ]


def test_no_script_leaves_the_token_in_a_file(tmp_path):
    """gitlab-retried.sh ends with exec, which skips an EXIT trap: a header file it made would stay. The
    token reaches curl on its standard input instead, so there is no file to forget."""
    routes = {
        **plan_routes([merge_request(5, HEAD, "merged", MERGE)]),
        **tip(),
        f"GET {API}/pipelines/77/jobs": (200, [{"id": 700, "name": "apply"}]),
        "GET /api/v4/user": (200, {"username": "reconciler-bot"}),
        f"GET {API}/merge_requests/9/notes": (200, []),
        f"POST {API}/merge_requests/9/notes": (201, {"id": 1}),
    }
    gitlab = FakeGitLab(routes)
    temp = tmp_path / "temp"
    temp.mkdir()
    with gitlab.serving() as url:
        for script, args, env in every_gitlab_script(tmp_path, url):
            job = Job(tmp_path / script)
            result = job.run(script, *args, **env, TMPDIR=str(temp))
            assert result.returncode == 0, (script, result.stderr)
            assert TOKEN not in result.stderr + result.stdout, script
    assert list(temp.iterdir()) == []
    leaked = [p for p in tmp_path.rglob("*") if p.is_file() and TOKEN.encode() in p.read_bytes()]
    assert leaked == []
    assert {r.headers.get("PRIVATE-TOKEN") for r in gitlab.requests} == {TOKEN}


# -- the merge request's one note -------------------------------------------------------------------------

MARKER = "<!-- reconciler-plan -->"


def note(note_id: int, user: str, body: str) -> dict:
    return {"id": note_id, "author": {"username": user}, "body": body}


def post_note(tmp_path, notes: list[dict], body: str = "#### the plan\n"):
    routes = {
        "GET /api/v4/user": (200, {"username": "reconciler-bot"}),
        f"GET {API}/merge_requests/9/notes": (200, notes),
        f"POST {API}/merge_requests/9/notes": (201, {"id": 1}),
        f"PUT {API}/merge_requests/9/notes/77": (200, {"id": 77}),
    }
    gitlab = FakeGitLab(routes)
    job = Job(tmp_path)
    (tmp_path / "comment.md").write_text(body)
    with gitlab.serving() as url:
        result = job.run("gitlab-note.sh", tmp_path / "comment.md", **gitlab_env(url, CI_MERGE_REQUEST_IID="9"))
    writes = [r for r in gitlab.requests if r.method != "GET"]
    return result, writes


def test_the_first_plan_creates_the_note(tmp_path):
    result, writes = post_note(tmp_path, [note(5, "mallory", f"{MARKER}\nnot the bot's")])
    assert result.returncode == 0, result.stderr
    assert [(w.method, w.path) for w in writes] == [("POST", f"{API}/merge_requests/9/notes")]
    assert writes[0].form["body"] == [f"{MARKER}\n#### the plan\n"]


def test_a_later_plan_updates_the_note_in_place(tmp_path):
    notes = [note(5, "mallory", f"{MARKER}\nfake"), note(77, "reconciler-bot", f"{MARKER}\nthe old plan")]
    result, writes = post_note(tmp_path, notes, "#### the new plan\n")
    assert result.returncode == 0, result.stderr
    assert [(w.method, w.path) for w in writes] == [("PUT", f"{API}/merge_requests/9/notes/77")]
    assert writes[0].form["body"] == [f"{MARKER}\n#### the new plan\n"]


def test_a_blank_note_is_never_posted(tmp_path):
    result, writes = post_note(tmp_path, [], "\n\n")
    assert result.returncode == 1 and "a blank note is never posted" in result.stderr
    assert writes == []
