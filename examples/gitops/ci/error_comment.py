"""error_comment.py EXIT_CODE ERR_FILE: the comment posted when `reconciler plan` failed: a line saying so,
and the end of what it printed on stderr in a code block (its text is shown as is, never as Markdown), so a
failed plan never posts an empty comment."""

import sys
from pathlib import Path

MAX_CHARS = 20_000  # well under GitHub's 65,536 and GitLab's 1,000,000 per comment


def main(code: str, err_file: str) -> str:
    try:
        text = Path(err_file).read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        text = ""
    head = f"**reconciler plan failed** (exit {code}): nothing was planned, and no saved plan was kept."
    if not text:
        return f"{head}\nIt printed no error; see the job's log.\n"
    if len(text) > MAX_CHARS:
        text = "[...]\n" + text[-MAX_CHARS:]
    fence = "`" * max(3, longest_backtick_run(text) + 1)
    return f"{head}\n\n{fence}text\n{text}\n{fence}\n"


def longest_backtick_run(text: str) -> int:
    longest = run = 0
    for char in text:
        run = run + 1 if char == "`" else 0
        longest = max(longest, run)
    return longest


if __name__ == "__main__":
    sys.stdout.write(main(*sys.argv[1:3]))
