"""github_json.py COMMAND ARGS < JSON: the choices the GitHub recipe scripts make from GitHub's answers,
kept out of shell. Each prints its answer, or a reason on stderr and exits 1.

  merged-pull SHA            (GET commits/SHA/pulls) the pull request merged as SHA: "NUMBER HEAD_SHA"
  plan-runs HEAD_SHA         (GET actions/workflows/W/runs) finished pull_request runs at HEAD_SHA, newest first
  comment-id MARKER AUTHOR   (GET issues/N/comments, pages) the id of AUTHOR's comment starting with MARKER
  comment-body MARKER FILE   the JSON payload of that comment: MARKER, then FILE (must not be empty)
"""

import json
import sys
from collections.abc import Iterator
from typing import Any

MAX_BODY = 65_000  # GitHub refuses comments over 65,536 characters


def documents(text: str) -> Iterator[Any]:
    """`gh api --paginate` prints one JSON document per page, back to back."""
    decoder = json.JSONDecoder()
    at = 0
    while at < len(text):
        if text[at].isspace():
            at += 1
            continue
        doc, at = decoder.raw_decode(text, at)
        yield doc


def items(text: str, key: str | None = None) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for doc in documents(text):
        page = doc.get(key, []) if key and isinstance(doc, dict) else doc
        found.extend(item for item in page if isinstance(item, dict))
    return found


def refuse(reason: str) -> None:
    print(reason, file=sys.stderr)
    sys.exit(1)


def merged_pull(sha: str) -> str:
    # A merge commit belongs to every later pull request branched from main; only one was merged as it.
    pulls = [p for p in items(sys.stdin.read()) if p.get("merged_at") and p.get("merge_commit_sha") == sha]
    if len(pulls) != 1:
        refuse(
            f"commit {sha} was not made by merging one pull request ({len(pulls)} found): nothing was "
            "reviewed for it, so nothing is applied; change the manifests through a pull request"
        )
    return f"{pulls[0]['number']} {pulls[0]['head']['sha']}"


def plan_runs(head_sha: str) -> str:
    runs = [
        r
        for r in items(sys.stdin.read(), "workflow_runs")
        if r.get("head_sha") == head_sha and r.get("event") == "pull_request" and r.get("status") == "completed"
    ]
    runs.sort(key=lambda r: (r.get("created_at") or "", r.get("id") or 0), reverse=True)
    return "\n".join(str(r["id"]) for r in runs)


def comment_id(marker: str, author: str) -> str:
    for comment in items(sys.stdin.read()):
        if (comment.get("user") or {}).get("login") == author and (comment.get("body") or "").startswith(marker):
            return str(comment["id"])
    return ""


def comment_body(marker: str, path: str) -> str:
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    if not text.strip():
        refuse(f"{path} is empty: a blank comment is never posted")
    if len(marker) + len(text) > MAX_BODY:
        text = (
            f"**The plan is too long for a comment** ({len(text):,} characters; GitHub takes 65,536). "
            "Read it in the job's log or in the saved plan artifact.\n"
        )
    return json.dumps({"body": f"{marker}\n{text}"})


COMMANDS = {"merged-pull": merged_pull, "plan-runs": plan_runs, "comment-id": comment_id, "comment-body": comment_body}

if __name__ == "__main__":
    print(COMMANDS[sys.argv[1]](*sys.argv[2:]))
