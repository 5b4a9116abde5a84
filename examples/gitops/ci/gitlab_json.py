"""gitlab_json.py COMMAND ARGS < JSON: the choices the GitLab recipe scripts make from GitLab's answers, kept
out of shell. Input is one JSON document per line (one per page). Each prints its answer, or a reason on
stderr and exits 1.

  merged-mr SHA              (GET repository/commits/SHA/merge_requests) the merge request merged as SHA:
                             "IID HEAD_SHA"
  plan-pipelines HEAD_SHA    (GET merge_requests/IID/pipelines) its pipelines at HEAD_SHA, newest first
  plan-job NAME              (GET pipelines/ID/jobs) the id of the finished job NAME with artifacts
  retried NAME ID            (GET pipelines/ID/jobs?include_retried=true) exit 0 when an earlier job NAME
                             ran in this pipeline (job ID is a retry), 1 when not
  branch-tip                 (GET repository/branches/B) the commit at the tip of the branch
  username                   (GET user) the token's user name
  note-id MARKER USERNAME    (GET merge_requests/IID/notes, pages) the id of USERNAME's note starting
                             with MARKER
"""

import json
import sys
from typing import Any


def pages() -> list[Any]:
    return [json.loads(line) for line in sys.stdin if line.strip()]


def items() -> list[dict[str, Any]]:
    return [item for page in pages() if isinstance(page, list) for item in page if isinstance(item, dict)]


def refuse(reason: str) -> None:
    print(reason, file=sys.stderr)
    sys.exit(1)


def merged_mr(sha: str) -> str:
    # The commit on the default branch is the merge commit, the squash commit, or (fast-forward) the head.
    def made(mr: dict[str, Any]) -> bool:
        if mr.get("merge_commit_sha") or mr.get("squash_commit_sha"):
            return sha in (mr.get("merge_commit_sha"), mr.get("squash_commit_sha"))
        return mr.get("sha") == sha

    mrs = [mr for mr in items() if mr.get("state") == "merged" and made(mr)]
    if len(mrs) != 1:
        refuse(
            f"commit {sha} was not made by merging one merge request ({len(mrs)} found): nothing was "
            "reviewed for it, so nothing is applied; change the manifests through a merge request"
        )
    return f"{mrs[0]['iid']} {mrs[0]['sha']}"


def plan_pipelines(head_sha: str) -> str:
    found = [p for p in items() if p.get("sha") == head_sha]
    found.sort(key=lambda p: p.get("id") or 0, reverse=True)
    return "\n".join(str(p["id"]) for p in found)


def plan_job(name: str) -> str:
    finished = ("success", "failed")
    jobs = [j for j in items() if j.get("name") == name and j.get("status") in finished and j.get("artifacts")]
    jobs.sort(key=lambda j: j.get("id") or 0, reverse=True)
    return str(jobs[0]["id"]) if jobs else ""


def retried(name: str, job_id: str) -> str:
    earlier = [j for j in items() if j.get("name") == name and (j.get("id") or 0) < int(job_id)]
    sys.exit(0 if earlier else 1)


def branch_tip() -> str:
    (branch,) = pages()
    return str(branch["commit"]["id"])


def username() -> str:
    (user,) = pages()
    return str(user["username"])


def note_id(marker: str, user: str) -> str:
    for note in items():
        if (note.get("author") or {}).get("username") == user and (note.get("body") or "").startswith(marker):
            return str(note["id"])
    return ""


COMMANDS = {
    "merged-mr": merged_mr,
    "plan-pipelines": plan_pipelines,
    "plan-job": plan_job,
    "retried": retried,
    "branch-tip": branch_tip,
    "username": username,
    "note-id": note_id,
}

if __name__ == "__main__":
    print(COMMANDS[sys.argv[1]](*sys.argv[2:]))
