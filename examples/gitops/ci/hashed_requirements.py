"""hashed_requirements.py FILE: exits 0 when FILE is a requirements file pip can install with
--require-hashes and that installs reconciler: every requirement carries --hash=sha256:..., none is a
version-control URL (pip cannot hash those), one is nhncloud-image-reconciler, and the recipes' template
marker FILL-IN is gone. Else prints what is wrong (file, line) on stderr and exits 1."""

import re
import sys
from pathlib import Path

DISTRIBUTION = re.compile(r"^(?:\./|/|file:)?\S*nhncloud[-_.]image[-_.]reconciler\b", re.IGNORECASE)
HELP = 'README.md, "Before the first run", says how to make it'


def logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, line) with backslash continuations joined and comments dropped."""
    found, pending, start = [], "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = re.sub(r"(^|\s)#.*$", "", raw).rstrip()
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        whole = (pending + line).strip()
        pending = ""
        if whole:
            found.append((start, whole))
    return found


def problems(path: str) -> list[str]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        return [f"{path}: cannot be read ({error.strerror}); {HELP}"]
    if "FILL-IN" in text:
        line = text[: text.index("FILL-IN")].count("\n") + 1
        return [
            f"{path}:{line}: still the template (FILL-IN): list reconciler and its dependencies with hashes; {HELP}"
        ]
    found = []
    requirements = [(n, line) for n, line in logical_lines(text) if not line.startswith("-")]
    for number, line in requirements:
        if re.search(r"\b(git|hg|svn|bzr)\+", line):
            found.append(f"{path}:{number}: a version-control URL cannot be hash-checked; list a wheel instead")
        elif "--hash=sha256:" not in line:
            found.append(f"{path}:{number}: no --hash=sha256:... on this requirement")
    if not any(DISTRIBUTION.search(line) for _, line in requirements):
        found.append(f"{path}: nhncloud-image-reconciler is not listed; {HELP}")
    return found


if __name__ == "__main__":
    wrong = problems(sys.argv[1])
    for problem in wrong:
        print(f"hashed_requirements.py: {problem}", file=sys.stderr)
    sys.exit(1 if wrong else 0)
