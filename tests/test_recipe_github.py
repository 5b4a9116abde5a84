"""The GitHub recipe scripts (examples/gitops/ci/), run as a job runs them, against a fake `gh` that
records every call and replays answers: the apply on merge takes the plan of the pull request that made
the merge commit, by number and head commit, from a run of this repository's own branch (never a fork's
at the same commit), or refuses; one comment per pull request, updated in place; a failed plan posts its
error text, never a blank comment; a comment over GitHub's limit keeps its verdict and risky lines."""

from __future__ import annotations

import json

import pytest
from recipes.harness import Job

REPO = "acme/images"
MERGE = "m" * 40
HEADS = {7: "7" * 40, 8: "8" * 40}
OLD_HEAD_7 = "6" * 40
RUNS = "repos/acme/images/actions/workflows/reconciler-plan.yml/runs?event=pull_request&head_sha={}&per_page=100"


def pull(number: int, *, merged_as: str | None) -> dict:
    return {
        "number": number,
        "merged_at": "2026-11-30T10:00:00Z" if merged_as else None,
        "merge_commit_sha": merged_as or ("c" * 40),
        "head": {"sha": HEADS[number], "ref": f"branch-{number}"},
    }


def run(run_id: int, head: str, created: str, event: str = "pull_request", number: int | None = None) -> dict:
    """A plan workflow run from this repository's branch of pull request `number` (by default the one
    whose head is `head`); GitHub has emptied its pull_requests list, as it does once they are closed."""
    number = number or next((n for n, sha in HEADS.items() if sha == head), 7)
    return {
        "id": run_id,
        "head_sha": head,
        "event": event,
        "status": "completed",
        "created_at": created,
        "head_repository": {"full_name": REPO},
        "head_branch": f"branch-{number}",
        "pull_requests": [],
    }


def download(run_id: int, name: str, *, plan: str | None) -> dict:
    args = ["run", "download", str(run_id), "--repo", REPO, "--name", name, "--dir", "DIR"]
    if plan is None:
        return {"args": args, "exit": 1, "stderr": "no valid artifacts found to download\n"}
    return {"args": args, "files": {"plans.json": plan}}


def find_plan(job: Job, answers: list[dict]):
    dest = job.work / "reviewed"
    for answer in answers:
        answer["args"] = [str(dest) if a == "DIR" else a for a in answer["args"]]
    job.answer_gh(answers)
    return job.run("github-find-plan.sh", GITHUB_REPOSITORY=REPO, GITHUB_SHA=MERGE)


@pytest.mark.parametrize("merged", [7, 8])
@pytest.mark.parametrize("order", ["7 planned first", "8 planned first"])
def test_apply_on_merge_takes_the_plan_of_the_pull_request_that_made_the_merge_commit(tmp_path, merged, order):
    """Two open pull requests planned in either order; one is merged. A merge commit is listed for every
    later pull request that contains it, and the runs listing holds the other pull request's runs and an
    older push's: only the merged pull request's plan at its head commit is taken."""
    other = 15 - merged
    pulls = [pull(merged, merged_as=MERGE), pull(other, merged_as=None)]
    runs = [
        run(100 + merged, HEADS[merged], "2026-11-30T09:00:00Z"),
        run(100 + other, HEADS[other], "2026-11-30T09:30:00Z"),
    ]
    if order == "8 planned first":
        pulls.reverse()
        runs.reverse()
    runs.append(run(99, OLD_HEAD_7, "2026-11-30T08:00:00Z"))  # an older push's plan
    runs.append(run(98, HEADS[merged], "2026-11-30T11:00:00Z", event="push"))
    name = f"reconciler-plan-{merged}-{HEADS[merged]}"
    job = Job(tmp_path)
    result = find_plan(
        job,
        [
            {"args": ["api", f"repos/{REPO}/commits/{MERGE}/pulls"], "stdout": json.dumps(pulls)},
            {"args": ["api", RUNS.format(HEADS[merged])], "stdout": json.dumps({"workflow_runs": runs})},
            download(100 + merged, name, plan=json.dumps({"the": f"plan of {merged}"})),
        ],
    )
    assert result.returncode == 0, result.stderr
    downloads = [c["args"] for c in job.gh_calls() if c["args"][:2] == ["run", "download"]]
    assert downloads == [
        ["run", "download", str(100 + merged), "--repo", REPO, "--name", name, "--dir", str(job.work / "reviewed")]
    ]
    outputs = job.outputs()
    assert outputs["plan-file"] == str(job.work / "reviewed" / "plans.json")
    assert outputs["pull-request"] == str(merged)
    assert json.loads((job.work / "reviewed" / "plans.json").read_text()) == {"the": f"plan of {merged}"}


def test_the_newest_plan_of_the_head_commit_is_tried_first_then_older_ones(tmp_path):
    runs = [run(201, HEADS[7], "2026-11-30T09:00:00Z"), run(202, HEADS[7], "2026-11-30T09:10:00Z")]
    name = f"reconciler-plan-7-{HEADS[7]}"
    job = Job(tmp_path)
    result = find_plan(
        job,
        [
            {"args": ["api", f"repos/{REPO}/commits/{MERGE}/pulls"], "stdout": json.dumps([pull(7, merged_as=MERGE)])},
            {"args": ["api", RUNS.format(HEADS[7])], "stdout": json.dumps({"workflow_runs": runs})},
            download(202, name, plan=None),  # the re-run was cancelled before it saved a plan
            download(201, name, plan="{}"),
        ],
    )
    assert result.returncode == 0, result.stderr
    assert [c["args"][2] for c in job.gh_calls() if c["args"][:2] == ["run", "download"]] == ["202", "201"]


def test_a_forks_run_at_the_same_commit_never_supplies_the_plan(tmp_path):
    """A fork's pull request opened on the merged pull request's head commit runs its own (changed) plan
    workflow, which can upload an artifact named reconciler-plan-7-<head>; it is newer, and never taken."""
    name = f"reconciler-plan-7-{HEADS[7]}"
    honest = run(100, HEADS[7], "2026-11-30T09:00:00Z")
    fork = {**run(300, HEADS[7], "2026-11-30T09:30:00Z"), "head_repository": {"full_name": "mallory/images"}}
    fork_named_alike = {**fork, "id": 301, "head_branch": "branch-7"}
    job = Job(tmp_path)
    result = find_plan(
        job,
        [
            {"args": ["api", f"repos/{REPO}/commits/{MERGE}/pulls"], "stdout": json.dumps([pull(7, merged_as=MERGE)])},
            {
                "args": ["api", RUNS.format(HEADS[7])],
                "stdout": json.dumps({"workflow_runs": [honest, fork, fork_named_alike]}),
            },
            download(300, name, plan='{"from": "the fork"}'),
            download(301, name, plan='{"from": "the fork"}'),
            download(100, name, plan='{"from": "pull request 7"}'),
        ],
    )
    assert result.returncode == 0, result.stderr
    assert [c["args"][2] for c in job.gh_calls() if c["args"][:2] == ["run", "download"]] == ["100"]
    assert json.loads((job.work / "reviewed" / "plans.json").read_text()) == {"from": "pull request 7"}


def test_a_run_listed_for_another_pull_request_is_never_taken(tmp_path):
    """Two pull requests of this repository at the same commit: a run GitHub lists for #8 (or one from #8's
    branch) is not #7's plan."""
    name = f"reconciler-plan-7-{HEADS[7]}"
    listed_for_8 = {**run(400, HEADS[7], "2026-11-30T09:40:00Z"), "pull_requests": [{"number": 8}]}
    branch_of_8 = run(401, HEADS[7], "2026-11-30T09:45:00Z", number=8)
    listed_for_7 = {**run(100, HEADS[7], "2026-11-30T09:00:00Z", number=8), "pull_requests": [{"number": 7}]}
    job = Job(tmp_path)
    result = find_plan(
        job,
        [
            {"args": ["api", f"repos/{REPO}/commits/{MERGE}/pulls"], "stdout": json.dumps([pull(7, merged_as=MERGE)])},
            {
                "args": ["api", RUNS.format(HEADS[7])],
                "stdout": json.dumps({"workflow_runs": [listed_for_8, branch_of_8, listed_for_7]}),
            },
            download(400, name, plan="{}"),
            download(401, name, plan="{}"),
            download(100, name, plan='{"from": "pull request 7"}'),
        ],
    )
    assert result.returncode == 0, result.stderr
    assert [c["args"][2] for c in job.gh_calls() if c["args"][:2] == ["run", "download"]] == ["100"]


def test_a_commit_no_pull_request_was_merged_as_is_refused(tmp_path):
    """A direct push to main (or a merge commit only contained in an open pull request): nothing was
    reviewed, so nothing is applied, and no plan is downloaded."""
    job = Job(tmp_path)
    result = find_plan(
        job, [{"args": ["api", f"repos/{REPO}/commits/{MERGE}/pulls"], "stdout": json.dumps([pull(8, merged_as=None)])}]
    )
    assert result.returncode == 1
    assert f"commit {MERGE} was not made by merging one pull request" in result.stderr
    assert [c["args"][0] for c in job.gh_calls()] == ["api"]
    assert "plan-file" not in job.outputs()


def test_a_pull_request_without_a_plan_of_its_last_commit_is_refused(tmp_path):
    """Merged before the plan of its last push finished: an older push's plan is never taken."""
    runs = [run(99, OLD_HEAD_7, "2026-11-30T08:00:00Z")]
    job = Job(tmp_path)
    result = find_plan(
        job,
        [
            {"args": ["api", f"repos/{REPO}/commits/{MERGE}/pulls"], "stdout": json.dumps([pull(7, merged_as=MERGE)])},
            {"args": ["api", RUNS.format(HEADS[7])], "stdout": json.dumps({"workflow_runs": runs})},
        ],
    )
    assert result.returncode == 1
    assert f"no saved plan reconciler-plan-7-{HEADS[7]}" in result.stderr
    assert not any(c["args"][:2] == ["run", "download"] for c in job.gh_calls())


# -- the pull request's one comment ----------------------------------------------------------------------

COMMENTS = f"repos/{REPO}/issues/7/comments?per_page=100"
MARKER = "<!-- reconciler-plan -->"


def comment(comment_id: int, login: str, body: str) -> dict:
    return {"id": comment_id, "user": {"login": login}, "body": body}


def post_comment(job: Job, pages: list[list[dict]], body: str, **env: str):
    path = job.tmp / "comment.md"
    path.write_text(body)
    listing = "".join(json.dumps(page) for page in pages)  # gh --paginate prints the pages back to back
    job.answer_gh(
        [
            {"args": ["api", "--paginate", COMMENTS], "stdout": listing},
            {
                "args": [
                    "api",
                    "--method",
                    "POST",
                    f"repos/{REPO}/issues/7/comments",
                    "--input",
                    str(job.work / "comment.json"),
                    "--silent",
                ]
            },
            {
                "args": [
                    "api",
                    "--method",
                    "PATCH",
                    f"repos/{REPO}/issues/comments/555",
                    "--input",
                    str(job.work / "comment.json"),
                    "--silent",
                ]
            },
        ]
    )
    return job.run("github-comment.sh", 7, path, GITHUB_REPOSITORY=REPO, **env)


def test_the_first_plan_creates_the_comment(tmp_path):
    job = Job(tmp_path)
    others = [comment(1, "alice", "looks good"), comment(2, "mallory", f"{MARKER}\nnot the tool's comment")]
    result = post_comment(job, [others], "#### reconciler plan\n")
    assert result.returncode == 0, result.stderr
    (write,) = [c for c in job.gh_calls() if "--method" in c["args"]]
    assert write["args"][2:4] == ["POST", f"repos/{REPO}/issues/7/comments"]
    assert write["input"] == {"body": f"{MARKER}\n#### reconciler plan\n"}


def test_a_later_plan_updates_the_one_comment_in_place(tmp_path):
    """The comment is found on any page; a comment by someone else that starts with the marker is not it."""
    job = Job(tmp_path)
    first_page = [comment(2, "mallory", f"{MARKER}\nfake")] + [comment(i, "alice", "+1") for i in range(10, 109)]
    second_page = [comment(555, "github-actions[bot]", f"{MARKER}\nthe old plan")]
    result = post_comment(job, [first_page, second_page], "#### the new plan\n")
    assert result.returncode == 0, result.stderr
    writes = [c for c in job.gh_calls() if "--method" in c["args"]]
    assert [w["args"][2:4] for w in writes] == [["PATCH", f"repos/{REPO}/issues/comments/555"]]
    assert writes[0]["input"]["body"] == f"{MARKER}\n#### the new plan\n"


def test_a_blank_comment_is_never_posted(tmp_path):
    job = Job(tmp_path)
    result = post_comment(job, [[]], " \n")
    assert result.returncode == 1 and "a blank comment is never posted" in result.stderr
    assert job.gh_calls() == []


def test_a_failed_plan_posts_its_error_text(tmp_path):
    """plan fails (exit 1, nothing on stdout): the comment body is the error, in a code block, and the step
    outputs say so; the comment posted is that text."""
    job = Job(tmp_path, fake_reconciler=True)
    error = "error: reconciler.yaml:4:3: cloud.project: ``` is not a project id\n"
    job.answer_reconciler({"plan": {"exit": 1, "stderr": error}})
    result = job.run("plan.sh", ".")
    assert result.returncode == 1
    outputs = job.outputs()
    assert outputs["exit-code"] == "1" and outputs["outcome"] == "failed" and outputs["plan-file"] == ""
    body = (job.work / "comment.md").read_text()
    assert body.startswith("**reconciler plan failed** (exit 1)")
    assert "````text\nerror: reconciler.yaml:4:3: cloud.project: ``` is not a project id\n````" in body

    posted = post_comment(job, [[]], body)
    assert posted.returncode == 0, posted.stderr
    (write,) = [c for c in job.gh_calls() if "--method" in c["args"]]
    assert "is not a project id" in write["input"]["body"]


def oversized_plan(deletes: int) -> str:
    """A plan comment as the renderer writes one whose never-cut lines alone exceed the budget."""
    banner = "\n".join(
        f"> - delete image `tmp-{i:05}` in KR1: no longer declared; not protected" for i in range(deletes)
    )
    return (
        "#### reconciler plan · set web-platform · NHN state · project 3f0c…6a7b · KR1\n\n"
        f"**Cannot be applied**: {deletes:,} actions, {deletes:,} deletions, 1 refused\n\n"
        "| region | delete |\n|---|---|\n| KR1 | 1 |\n\n"
        f"> [!WARNING]\n> This plan deletes:\n{banner}\n\n"
        "### Refused\n\n"
        f"- **max_deletions** : {deletes:,} deletions planned, more than max\\_deletions 3\n"
        "  - hint: check that no manifest was removed by mistake\n\n"
        "<details><summary>Order of the steps</summary>\n\n" + ("x" * 99 + "\n") * 800 + "\n</details>\n\n"
        f"Plan: {deletes:,} to delete ({deletes:,} actions); 1 refused.\n\nNothing was changed.\n"
    )


def test_a_comment_over_githubs_limit_keeps_its_verdict_and_risky_lines(tmp_path):
    """GitHub refuses comments over 65,536 characters. The comment keeps the head and the verdict, says what
    was cut and where the full plan is, lists the risky lines as far as they fit, and ends with the summary."""
    job = Job(tmp_path)
    text = oversized_plan(2_000)
    assert len(text) > 140_000
    result = post_comment(job, [[]], text, GITHUB_RUN_ID="4242")
    assert result.returncode == 0, result.stderr
    (write,) = [c for c in job.gh_calls() if "--method" in c["args"]]
    body = write["input"]["body"]
    assert 60_000 < len(body) <= 65_000
    lines = body.splitlines()
    assert lines[:4] == [
        MARKER,
        text.splitlines()[0],
        "",
        "**Cannot be applied**: 2,000 actions, 2,000 deletions, 1 refused",
    ]
    assert "Cut to fit GitHub's limit of 65,536 characters" in body
    assert f"https://github.com/{REPO}/actions/runs/4242" in body
    assert "> - delete image `tmp-00000` in KR1" in body and "> This plan deletes:" in body
    kept = sum(1 for line in lines if line.startswith("> - delete image"))
    assert 500 < kept < 2_000 and f"2 of the 2 lines of refusals and hints, {kept:,} of the 2,000 lines" in body
    assert lines[10 + kept] == "> - … (cut here: see the note above)"  # right after the last delete kept
    # The refusal says why the verdict is what it is: kept before the risky lines are, shown after them.
    assert lines[10 + kept + 1 :] == [
        "",
        "### Refused",
        "- **max_deletions** : 2,000 deletions planned, more than max\\_deletions 3",
        "  - hint: check that no manifest was removed by mistake",
        "",
        "Plan: 2,000 to delete (2,000 actions); 1 refused.",
        "",
        "Nothing was changed.",
    ]
    assert "<details>" not in body


def test_a_comment_whose_risky_lines_fit_keeps_them_all_and_the_refusals(tmp_path):
    job = Job(tmp_path)
    text = oversized_plan(50)  # the details push it over; the risky lines and refusals fit
    result = post_comment(job, [[]], text)
    assert result.returncode == 0, result.stderr
    (write,) = [c for c in job.gh_calls() if "--method" in c["args"]]
    body = write["input"]["body"]
    assert (
        len(body) < 65_000 and "Cut to fit" in body and "2 of the 2 lines of refusals and hints, 50 of the 50" in body
    )
    assert "- **max_deletions** : 50 deletions planned" in body and "  - hint: check that no manifest" in body
    assert "(cut here" not in body


def test_a_plan_passes_its_markdown_and_saved_plan_on(tmp_path):
    job = Job(tmp_path, fake_reconciler=True)
    job.answer_reconciler({"plan": {"exit": 3, "stdout": "#### refusals\n", "saved": "{}"}})
    result = job.run("plan.sh", "root")
    assert result.returncode == 3
    (call,) = job.reconciler_calls()
    assert call == ["plan", "root", "--format", "markdown", "--out", str(job.work / "plans.json")]
    outputs = job.outputs()
    assert outputs["outcome"] == "refused" and outputs["plan-file"] == str(job.work / "plans.json")
    assert (job.work / "comment.md").read_text() == "#### refusals\n"


def test_the_action_runner_lets_listed_exit_codes_through(tmp_path):
    """run.sh (the action's step): a plan with refusals does not fail the step when 3 is listed, so the
    comment step still runs; the exit-code output keeps the 3."""
    job = Job(tmp_path, fake_reconciler=True)
    job.answer_reconciler({"plan": {"exit": 3, "stdout": "#### refusals\n", "saved": "{}"}})
    assert job.run("run.sh", "plan", ".", RECONCILER_OK_EXIT_CODES="1 3").returncode == 0
    assert job.outputs()["exit-code"] == "3"
    assert job.run("run.sh", "plan", ".").returncode == 3
