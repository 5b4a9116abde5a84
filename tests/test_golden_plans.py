"""Golden plans: each folder in tests/cases/ holds a root with a simulator seed (`root/`), a one-sentence
`reason.txt`, and the expected `plan.txt` and `plan.json`. The plan is made by the real command against
the embedded simulator over HTTP.

Regenerate after a deliberate change with `RECONCILER_UPDATE_GOLDEN=1 python -m pytest tests/test_golden_plans.py`
and review the diff before committing it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from reconciler.cli import main
from reconciler.render import MIN_MAX_CHARS, escape

CASES = Path(__file__).resolve().parent / "cases"
UPDATE = os.environ.get("RECONCILER_UPDATE_GOLDEN") == "1"
CREDENTIAL_VARIABLES = ("NHN_CLOUD_USERNAME", "NHN_CLOUD_API_PASSWORD", "OS_USERNAME", "OS_PASSWORD")


def case_names() -> list[str]:
    return sorted(p.name for p in CASES.iterdir() if (p / "root").is_dir())


def run_plan(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str) -> tuple[int, str]:
    root = tmp_path / fmt / "root"
    # A state file a local run left in the case (git ignores it) must not stand in for the seed.
    shutil.copytree(CASES / case / "root", root, ignore=shutil.ignore_patterns(".reconciler"))
    code = main(["plan", str(root), "--format", fmt, "--no-color"])
    return code, capsys.readouterr().out


def compare(path: Path, actual: str) -> None:
    if UPDATE:
        path.write_text(actual, encoding="utf-8")
        return
    assert path.exists(), f"{path} is missing: run with RECONCILER_UPDATE_GOLDEN=1 and review it"
    assert actual == path.read_text(encoding="utf-8")


@pytest.fixture(autouse=True)
def no_credentials(monkeypatch):
    for name in CREDENTIAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("case", case_names())
def test_golden_plan(case, tmp_path, capsys):
    reason = (CASES / case / "reason.txt").read_text(encoding="utf-8").strip()
    assert reason and "\n" not in reason, "reason.txt holds one sentence"

    code, document = run_plan(case, tmp_path, capsys, "json")
    compare(CASES / case / "plan.json", document)
    plan = json.loads(document)
    assert code == (3 if plan["refusals"] else 0), "exit code 3 exactly when the plan has refusals"

    code_text, text = run_plan(case, tmp_path, capsys, "text")
    compare(CASES / case / "plan.txt", text)
    assert code_text == code

    code_markdown, markdown = run_plan(case, tmp_path, capsys, "markdown")
    compare(CASES / case / "plan.md", markdown)
    assert code_markdown == code
    assert len(markdown) <= 60_000
    # The text is made from the same data: every action id's kind and key appear in it.
    for action in plan["actions"]:
        assert escape.text(action["key"]) in text and action["kind"] in text


def test_markdown_over_its_budget_keeps_the_essentials_and_says_what_it_left_out(tmp_path, capsys):
    root = tmp_path / "root"
    shutil.copytree(CASES / "unshare-many-members" / "root", root)
    assert main(["plan", str(root), "--format", "markdown", "--max-chars", str(MIN_MAX_CHARS)]) == 0
    markdown = capsys.readouterr().out
    compare(CASES / "unshare-many-members" / "plan.budget.md", markdown)
    # The 40 unshare lines are never cut and do not fit 95% of the minimum: the comment says so under the verdict.
    assert "**Review the risky changes**: 40 actions, 40 unshares" in markdown
    assert f"> This comment is {len(markdown):,} characters long, over its budget of 1,900 " in markdown
    assert markdown.count("> - unshare the share with") == 40
    assert "the table, the reasons of the risky changes and 1 of 1 detail block." in markdown
    assert markdown.count("<details>") == markdown.count("</details>")  # never cut inside a block


def test_identical_inputs_give_byte_identical_output(tmp_path, capsys):
    outputs = set()
    for attempt in range(2):
        _, document = run_plan("copies-two-regions", tmp_path / str(attempt), capsys, "json")
        outputs.add(document)
    assert len(outputs) == 1


def test_every_golden_plan_matches_the_plan_schema():
    import jsonschema

    from reconciler.schemas import load_schema

    validator = jsonschema.Draft202012Validator(load_schema("plan"))
    for case in case_names():
        document = json.loads((CASES / case / "plan.json").read_text(encoding="utf-8"))
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]
        assert errors == [], f"{case}: {errors}"


def test_no_file_of_a_case_root_is_ignored_by_git():
    """A case's root is copied whole: a file .gitignore keeps out of the repository (a `build/` artifact) would
    exist here and be missing in a clean clone, where the case then plans differently."""
    repository = CASES.parents[1]
    if not (repository / ".git").exists():
        pytest.skip("not a git checkout")
    files = [
        str(path.relative_to(repository))
        for path in CASES.glob("*/root/**/*")
        if path.is_file() and ".reconciler" not in path.parts and "__pycache__" not in path.parts
    ]
    ignored = subprocess.run(
        ["git", "check-ignore", "--no-index", "--stdin"],
        input="\n".join(files),
        cwd=repository,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert ignored == [], "ignored by .gitignore, so missing from a clean clone"
