"""The examples do what their READMEs say: the quickstart's plan shows a create from a running instance
with its warning, a copy, a share and a rename, and converges; a protected image retires in two steps; the
GitOps example's two roots validate, plan and apply in one command as its README says; the monthly rotation's
README walks a family through four months, its commands run as written and its plans as shown."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from reconciler.cli import main
from reconciler.simulator.seed import state_from_seed
from reconciler.simulator.state import write_state_file

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture(autouse=True)
def no_credentials(monkeypatch):
    for name in ("NHN_CLOUD_USERNAME", "NHN_CLOUD_API_PASSWORD", "OS_USERNAME", "OS_PASSWORD"):
        monkeypatch.delenv(name, raising=False)


def copy(name: str, tmp_path: Path) -> Path:
    root = tmp_path / name
    shutil.copytree(EXAMPLES / name, root, ignore=shutil.ignore_patterns(".reconciler"))
    return root


def plan(root: Path, capsys) -> tuple[int, dict]:
    code = main(["plan", str(root), "--format", "json"])
    return code, json.loads(capsys.readouterr().out)


def test_the_quickstart_plan_shows_what_the_readme_promises(tmp_path, capsys):
    code, document = plan(copy("quickstart", tmp_path), capsys)
    assert code == 0
    kinds = {(a["kind"], a["key"]) for a in document["actions"]}
    assert ("create", "web-base-2026-11") in kinds and ("copy", "web-base-2026-11") in kinds
    assert ("share", "web-base-2026-11") in kinds
    rename = next(a for a in document["actions"] if a["key"] == "api-base")
    assert rename["changes"]["name"] == {"before": "api-base", "after": "api-base-lts"}
    assert "running_instance" in {w["code"] for w in document["warnings"]}


def test_the_quickstart_applies_and_converges(tmp_path, capsys):
    root = copy("quickstart", tmp_path)
    assert main(["apply", str(root), "--auto-approve"]) == 0
    capsys.readouterr()
    code, document = plan(root, capsys)
    assert (code, document["actions"], document["refusals"]) == (0, [], [])


def test_a_protected_image_retires_in_two_steps(tmp_path, capsys):
    root = copy("retire-protected", tmp_path)
    # Removing it first is refused.
    (root / "images" / "old-gold.yaml").rename(tmp_path / "old-gold.yaml")
    code, document = plan(root, capsys)
    assert code == 3 and [r["code"] for r in document["refusals"]] == ["protected_undeclared"]
    (tmp_path / "old-gold.yaml").rename(root / "images" / "old-gold.yaml")

    # Step 1: unprotect.
    _, document = plan(root, capsys)
    assert [a["id"] for a in document["actions"]] == ["unprotect:old-gold:KR1"]
    assert main(["apply", str(root), "--auto-approve"]) == 0
    capsys.readouterr()

    # Step 2: remove it from the manifests; now it is deleted.
    (root / "images" / "old-gold.yaml").unlink()
    _, document = plan(root, capsys)
    assert [a["id"] for a in document["actions"]] == ["delete:old-gold:KR1"]
    assert main(["apply", str(root), "--auto-approve"]) == 0
    capsys.readouterr()
    code, document = plan(root, capsys)
    assert (code, document["actions"]) == (0, [])


GITOPS_ROOTS = ["platform", "storefront"]


def readme_block(readme: Path, heading: str) -> list[str]:
    """The commands of the first ```sh block after HEADING, one per line."""
    text = readme.read_text(encoding="utf-8")
    after = text[text.index(heading) :]
    block = after[after.index("```sh\n") + len("```sh\n") :]
    return [line for line in block[: block.index("```")].splitlines() if line.strip()]


def test_the_gitops_readme_plans_and_applies_its_two_roots_in_one_command(tmp_path, capsys, monkeypatch):
    """The commands of "Try it" as written (their /tmp files moved under tmp_path), from a copy of the
    example: both roots validate, plan into one saved plan, apply from it in one command, and converge."""
    root = tmp_path / "gitops"
    shutil.copytree(EXAMPLES / "gitops", root)
    monkeypatch.chdir(root)
    commands = readme_block(root / "README.md", "### Try it")
    assert [c.split()[1] for c in commands] == ["simulator", "validate", "plan", "apply", "plan"]
    for command in commands:
        argv = shlex.split(command.replace("/tmp/", f"{tmp_path}/"))
        assert argv[0] == "reconciler" and main(argv[1:]) == 0, (command, capsys.readouterr())
        if argv[1] in ("plan", "apply") and "--out" not in argv and "--plan" not in argv:
            assert "Nothing was changed." in capsys.readouterr().out
    saved = json.loads((tmp_path / "gitops-plans.json").read_text(encoding="utf-8"))
    assert saved["format"] == "reconciler-plans" and len(saved["roots"]) == 2

    # What the README says the plan held, and that nothing is left to do in either root.
    state = ["--sim-state", str(tmp_path / "gitops-sim.json"), "--format", "json"]
    assert main(["plan", *GITOPS_ROOTS, *state]) == 0
    document = json.loads(capsys.readouterr().out)
    assert [plan["actions"] for plan in document["roots"]] == [[], []]
    images = json.loads((tmp_path / "gitops-sim.json").read_text(encoding="utf-8"))["images"].values()
    keys = {(image["fields"].get("reconciler_set"), image["fields"].get("reconciler_key")) for image in images}
    assert {("golden-images", "web-base-2026-11"), ("golden-images", "spark-worker-2026-11")} <= keys
    assert {("golden-images", "spark-worker-2026-10"), ("storefront-images", "checkout-2026-11")} <= keys


def test_the_gitops_roots_plan_as_the_readme_says(tmp_path, capsys, monkeypatch):
    """Against the seed: 14 actions in platform (a stop for imaging, a copy to JP1, shares, a re-key), one
    create in storefront, whose root acts as its own API user (STOREFRONT_USERNAME, named in its target)."""
    monkeypatch.chdir(EXAMPLES / "gitops")
    state = tmp_path / "sim.json"
    write_state_file(state, state_from_seed(yaml.safe_load(Path("simulator-seed.yaml").read_text(encoding="utf-8"))))
    assert main(["validate", *GITOPS_ROOTS]) == 0
    assert "nhn api-identity-infrastructure.nhncloudservice.com as STOREFRONT_USERNAME" in capsys.readouterr().out
    assert main(["plan", *GITOPS_ROOTS, "--sim-state", str(state), "--format", "json"]) == 0
    platform, storefront = json.loads(capsys.readouterr().out)["roots"]
    kinds = [action["kind"] for action in platform["actions"]]
    assert len(kinds) == 14 and {"stop_instance", "copy", "share"} <= set(kinds)
    assert [(a["kind"], a["key"]) for a in storefront["actions"]] == [("create", "checkout-2026-11")]


# -- examples/monthly-rotation ------------------------------------------------------------------------


def readme_months(readme: Path) -> list[tuple[list[str], list[str]]]:
    """Each "### Month" section of the README: the commands of its ```sh block and the plan lines of its
    ```text block."""
    sections = readme.read_text(encoding="utf-8").split("### Month ")[1:]
    months = []
    for section in sections:
        section = section.split("\n## ")[0]
        commands = section.split("```sh\n", 1)[1].split("```", 1)[0]
        shown = section.split("```text\n", 1)[1].split("```", 1)[0]
        months.append(([c for c in commands.splitlines() if c.strip()], shown.splitlines()))
    return months


def run_readme_command(command: str, capsys) -> str:
    """A README command as written, from the folder holding examples/: the tool in-process, an edit in sh."""
    argv = shlex.split(command)
    if argv[0] == "reconciler":
        code = main(argv[1:])
        captured = capsys.readouterr()
        assert code == 0, (command, captured.err)
        return captured.out
    subprocess.run(["sh", "-c", command], check=True)
    return ""


def test_the_monthly_rotation_readme_walks_four_months_as_it_says(tmp_path, capsys, monkeypatch):
    """The commands of months 1 to 4, as written, in a copy of the example: every plan line the README shows
    is in the plan, and after month 4 each region holds the newest three versions, the newest two protected
    and reconciler_newest on the newest only, as the README says."""
    (tmp_path / "examples").mkdir()
    copy("monthly-rotation", tmp_path / "examples")
    monkeypatch.chdir(tmp_path)
    months = readme_months(EXAMPLES / "monthly-rotation" / "README.md")
    assert len(months) == 4
    for number, (commands, shown) in enumerate(months, start=1):
        assert [c.split()[:2] for c in commands][-2:] == [["reconciler", "plan"], ["reconciler", "apply"]]
        outputs = [run_readme_command(command, capsys) for command in commands]
        plan_lines = outputs[-2].splitlines()
        missing = [line for line in shown if line not in plan_lines]
        assert missing == [], f"month {number}: the README shows lines the plan does not have"

    state = json.loads((tmp_path / "examples/monthly-rotation/.reconciler/sim-state.json").read_text())
    images = [image for image in state["images"].values() if image["fields"].get("reconciler_family") == "web-base"]
    for region in ("KR1", "JP1"):
        here = {i["fields"]["reconciler_version"]: i["fields"] for i in images if i["region"] == region}
        assert sorted(here) == ["2026-10", "2026-11", "2026-12"], region
        assert sorted(v for v, fields in here.items() if fields["protected"]) == ["2026-11", "2026-12"]
        assert [v for v, fields in here.items() if fields.get("reconciler_newest") == "true"] == ["2026-12"]
    assert main(["plan", "examples/monthly-rotation", "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert (document["actions"], document["refusals"]) == ([], []), "month 4 converged"
