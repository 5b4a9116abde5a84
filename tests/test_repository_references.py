"""The repository explains itself: no tracked file points at design documents that live outside it (the
spec this project was built from is not part of the product; docs/architecture.md says it in our words)."""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# Written in pieces so that this file does not match itself.
OUTSIDE = ("design" + ".md", "design" + "-v2", "nhn-cloud" + "-api", ".." + "/shared")


def tracked_text_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    files = [REPO / name for name in listed.decode().split("\0") if name]
    return [path for path in files if path.is_file() and b"\0" not in path.read_bytes()[:4096]]


def test_no_file_refers_to_documents_outside_the_repository():
    found = [
        f"{path.relative_to(REPO)}: {word}"
        for path in tracked_text_files()
        for word in OUTSIDE
        if word in path.read_text(encoding="utf-8", errors="replace")
    ]
    assert found == []


def test_the_check_reads_the_files_it_should():
    names = {path.relative_to(REPO).as_posix() for path in tracked_text_files()}
    assert {"README.md", "reconciler/cli.py", "docs/safety.md", "schemas/manifest.schema.json"} <= names
