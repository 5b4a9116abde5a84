"""github_json.py COMMAND ARGS < JSON: the choices the GitHub recipe scripts make from GitHub's answers,
kept out of shell. Each prints its answer, or a reason on stderr and exits 1.

  merged-pull SHA            (GET commits/SHA/pulls) the pull request merged as SHA: "NUMBER HEAD_SHA HEAD_REF"
  plan-runs HEAD_SHA REPO NUMBER HEAD_REF
                             (GET actions/workflows/W/runs) the finished pull_request runs at HEAD_SHA of that
                             pull request, from REPO itself (never a fork's), newest first
  branch-tip                 (GET branches/B) the commit at the tip of the branch
  comment-id MARKER AUTHOR   (GET issues/N/comments, pages) the id of AUTHOR's comment starting with MARKER
  comment-body MARKER FILE [WHERE]
                             the JSON payload of that comment: MARKER, then FILE (must not be empty); when
                             that is over GitHub's limit, the verdict, the risky changes and refusals that
                             fit, and a note saying the full plan is WHERE
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
    head = pulls[0]["head"]
    return f"{pulls[0]['number']} {head['sha']} {head.get('ref') or '-'}"


def plan_runs(head_sha: str, repo: str, number: str, head_ref: str) -> str:
    runs = [
        r
        for r in items(sys.stdin.read(), "workflow_runs")
        if r.get("head_sha") == head_sha
        and r.get("event") == "pull_request"
        and r.get("status") == "completed"
        and of_the_pull_request(r, repo, int(number), head_ref)
    ]
    runs.sort(key=lambda r: (r.get("created_at") or "", r.get("id") or 0), reverse=True)
    return "\n".join(str(r["id"]) for r in runs)


def of_the_pull_request(run: dict[str, Any], repo: str, number: int, head_ref: str) -> bool:
    """A run from a branch of REPO itself: a fork's pull request at the same commit runs its own (possibly
    changed) workflow and could upload an artifact of the same name. GitHub lists the run's pull requests
    while they are open and empties the list once they are closed: then the branch must be the merged pull
    request's."""
    if (run.get("head_repository") or {}).get("full_name") != repo:
        return False
    numbers = [p.get("number") for p in run.get("pull_requests") or [] if isinstance(p, dict)]
    if numbers:
        return number in numbers
    return run.get("head_branch") == head_ref


def branch_tip() -> str:
    (branch,) = documents(sys.stdin.read())
    return str(branch["commit"]["sha"])


def comment_id(marker: str, author: str) -> str:
    for comment in items(sys.stdin.read()):
        if (comment.get("user") or {}).get("login") == author and (comment.get("body") or "").startswith(marker):
            return str(comment["id"])
    return ""


def comment_body(marker: str, path: str, where: str = "the saved plan artifact of the plan job") -> str:
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    if not text.strip():
        refuse(f"{path} is empty: a blank comment is never posted")
    return json.dumps({"body": f"{marker}\n{fitted(text, MAX_BODY - len(marker) - 1, where)}"})


def fitted(text: str, limit: int, where: str) -> str:
    """TEXT when it fits in LIMIT characters. Else, in order: the head down to the verdict, a note saying
    what was cut and where the full plan is, the lines that must stay as far as they fit, and the closing
    summary. Those lines are the Refused section (each refusal and its hint, which say why the verdict is
    what it is), kept first, then the blockquotes (the risky changes, one line each) in their order. The
    renderer keeps a plan under --max-chars; this is for what still is not (its never-cut lines alone)."""
    if len(text) <= limit:
        return text
    lines = text.rstrip("\n").split("\n")
    head_end = next((i + 1 for i, line in enumerate(lines) if line.startswith("**")), 1)
    summary = [i for i in range(head_end, len(lines)) if lines[i].startswith("Plan:")]
    footer_start = summary[-1] if summary else len(lines)
    head, footer = lines[:head_end], lines[footer_start:]
    quotes, refused = kept_lines(lines[head_end:footer_start])

    def composed(shown: int) -> str:
        kept_refused = refused[:shown]
        kept_quotes = quotes[: max(0, shown - len(refused))]
        parts = [*cut(kept_quotes, quotes), *cut(kept_refused, refused)]
        counts = (count_items(kept_refused), count_items(refused), count_items(kept_quotes), count_items(quotes))
        note = cut_note(len(text), *counts, where)
        return "\n".join([*head, "", note, "", *paragraphs(parts), "", *footer]) + "\n"

    low, high = -1, len(quotes) + len(refused) + 1  # composed(high) does not fit or is past the end
    while high - low > 1:
        middle = (low + high) // 2
        if len(composed(middle)) <= limit:
            low = middle
        else:
            high = middle
    if low < 0:  # not even the head and the note fit: the text, cut
        return text[: limit - len(CUT_MARK) - 2] + "\n" + CUT_MARK + "\n"
    return composed(low)


CUT_MARK = "> - … (cut here: see the note above)"


def cut(kept: list[str], whole: list[str]) -> list[str]:
    """KEPT (the start of WHOLE), and a line saying where the rest was cut, if any was."""
    if len(kept) == len(whole):
        return kept
    return [*kept, CUT_MARK if kept and kept[-1].startswith(">") else CUT_MARK.removeprefix("> ")]


def kept_lines(body: list[str]) -> tuple[list[str], list[str]]:
    """The lines never to cut when possible, blank lines left out: the blockquotes (the risky changes, a
    caution), and the Refused section (its heading, each refusal with its hint), each in its order."""
    quotes: list[str] = []
    refused: list[str] = []
    in_refused = False
    for line in body:
        if line.startswith("### "):
            in_refused = line.strip() == "### Refused"
        elif line.startswith(("<details", "_Left out", ">")):
            in_refused = False
        if not line.strip():
            continue
        if in_refused:
            refused.append(line)
        elif line.startswith(">"):
            quotes.append(line)
    return quotes, refused


def is_item(line: str) -> bool:
    """A line of a risky change, a refusal or a hint (not a heading or an alert's title)."""
    return line.removeprefix(">").lstrip().startswith("- ") and line not in (CUT_MARK, CUT_MARK.removeprefix("> "))


def paragraphs(lines: list[str]) -> list[str]:
    """LINES with a blank line wherever a blockquote starts or ends, so each part renders on its own."""
    out: list[str] = []
    for line in lines:
        if out and out[-1].startswith(">") != line.startswith(">"):
            out.append("")
        out.append(line)
    return out


def count_items(lines: list[str]) -> int:
    return sum(1 for line in lines if is_item(line))


def cut_note(length: int, refused: int, all_refused: int, risky: int, all_risky: int, where: str) -> str:
    return (
        f"> [!CAUTION]\n> **Cut to fit GitHub's limit of 65,536 characters**: the comment is {length:,} "
        f"characters long. Kept: the verdict, {refused:,} of the {all_refused:,} lines of refusals and hints, "
        f"{risky:,} of the {all_risky:,} lines of risky changes, and the summary. The full plan: {where}."
    )


COMMANDS = {
    "merged-pull": merged_pull,
    "plan-runs": plan_runs,
    "branch-tip": branch_tip,
    "comment-id": comment_id,
    "comment-body": comment_body,
}

if __name__ == "__main__":
    print(COMMANDS[sys.argv[1]](*sys.argv[2:]))
