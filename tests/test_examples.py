"""The examples do what their READMEs say: the quickstart's plan shows a create from a running instance
with its warning, a copy, a share and a rename, and converges; a protected image retires in two steps; the
GitOps example's three roots validate, plan and apply in one command as its README says, its owner root
sharing a family version that its consumer root accepts (in the same apply without a saved plan, in the next
run with one); the monthly rotation's README walks a family through four months, its commands run as written
and its plans as shown."""

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


GITOPS_ROOTS = ["platform", "storefront", "apps"]  # apps, the consumer, after platform, whose shares it accepts
APPS_PROJECT = "5b0e2a7c4d6f4e8a9c1b3d5f7a9e0c2d"


def readme_block(readme: Path, heading: str, fence: str = "sh") -> list[str]:
    """The lines of the first ```FENCE block after HEADING (its commands, or the output it quotes)."""
    text = readme.read_text(encoding="utf-8")
    after = text[text.index(heading) :]
    block = after[after.index(f"```{fence}\n") + len(f"```{fence}\n") :]
    return [line for line in block[: block.index("```")].splitlines() if line.strip()]


def run_gitops_command(command: str, tmp_path: Path, capsys) -> str:
    """A README command as written, its /tmp files moved under tmp_path; it must exit 0. Returns its output."""
    argv = shlex.split(command.replace("/tmp/", f"{tmp_path}/"))
    assert argv[0] == "reconciler"
    code = main(argv[1:])
    captured = capsys.readouterr()
    assert code == 0, (command, captured)
    return captured.out


def copy_gitops(tmp_path: Path, monkeypatch) -> Path:
    root = tmp_path / "gitops"
    shutil.copytree(EXAMPLES / "gitops", root)
    monkeypatch.chdir(root)
    return root


def shared_with_apps(state_file: Path) -> dict[str, str]:
    """The apps project's member status of each web-base image, by name and region, as the simulator holds it."""
    images = json.loads(state_file.read_text(encoding="utf-8"))["images"].values()
    return {
        f"{image['fields']['name']} {image['region']}": image["members"][APPS_PROJECT]["status"]
        for image in images
        if image["fields"].get("reconciler_family") == "web-base" and APPS_PROJECT in image.get("members", {})
    }


def test_the_gitops_readme_plans_and_applies_its_roots_in_one_command(tmp_path, capsys, monkeypatch):
    """The commands of "Try it" as written (their /tmp files moved under tmp_path), from a copy of the
    example: the three roots validate, plan into one saved plan and apply from it in one command; apps'
    accepts, which the reviewed plan lacks, are left for the next plan, which shows them as the README quotes."""
    root = copy_gitops(tmp_path, monkeypatch)
    commands = readme_block(root / "README.md", "### Try it")
    assert [c.split()[1] for c in commands] == ["simulator", "validate", "plan", "apply", "plan"]
    outputs = [run_gitops_command(command, tmp_path, capsys) for command in commands]
    saved = json.loads((tmp_path / "gitops-plans.json").read_text(encoding="utf-8"))
    assert saved["format"] == "reconciler-plans" and len(saved["roots"]) == 3
    assert outputs[3].count("left for the next plan: accept:") == 2  # shared after the review: not run
    assert "Nothing was changed." in outputs[4]
    last_plan = outputs[4].splitlines()
    assert [line for line in readme_block(root / "README.md", "### Try it", "text") if line not in last_plan] == []

    # Nothing left to do in platform and storefront; apps' two accepts wait for the next run.
    state = ["--sim-state", str(tmp_path / "gitops-sim.json"), "--format", "json"]
    assert main(["plan", *GITOPS_ROOTS, *state]) == 0
    document = json.loads(capsys.readouterr().out)
    assert [[a["kind"] for a in plan["actions"]] for plan in document["roots"]] == [[], [], ["accept", "accept"]]
    images = json.loads((tmp_path / "gitops-sim.json").read_text(encoding="utf-8"))["images"].values()
    keys = {(image["fields"].get("reconciler_set"), image["fields"].get("reconciler_key")) for image in images}
    assert {("golden-images", "web-base-2026-11"), ("golden-images", "spark-worker-2026-11")} <= keys
    assert {("golden-images", "spark-worker-2026-10"), ("storefront-images", "checkout-2026-11")} <= keys
    assert shared_with_apps(tmp_path / "gitops-sim.json") == {
        "web-base-2026-11 KR1": "pending",
        "web-base-2026-11 JP1": "pending",
    }


def readme_transcript(readme: Path, heading: str) -> list[tuple[str, list[str]]]:
    """The ```text block after HEADING as (command, the output lines it quotes): a line "$ COMMAND" starts
    each command's part."""
    parts: list[tuple[str, list[str]]] = []
    for line in readme_block(readme, heading, "text"):
        if line.startswith("$ "):
            parts.append((line[2:], []))
        else:
            parts[-1][1].append(line)
    return parts


def quoted_in_order(quoted: list[str], output: str) -> bool:
    """Every quoted line is a whole line of the output, in the order quoted (lines between may be left out)."""
    lines = iter(output.splitlines())
    return all(any(line == wanted for line in lines) for wanted in quoted)


def test_the_gitops_readme_shares_and_accepts_a_family_version_in_one_command(tmp_path, capsys, monkeypatch):
    """The commands of "The owner shares, the consumer accepts" as written, in order: one apply of the three
    roots makes web-base-2026-11, shares it with the apps project and accepts it there (the consumer's plan
    is made after the owner's apply); each command prints the lines the README quotes; the consumer's plan
    then shows no change and the owner's no members_pending; a new version is accepted by the same rule."""
    heading = "### The owner shares, the consumer accepts"
    root = copy_gitops(tmp_path, monkeypatch)
    commands = readme_block(root / "README.md", heading)
    assert [c.split()[1] for c in commands] == ["simulator", "apply", "plan", "plan"]
    transcript = readme_transcript(root / "README.md", heading)
    assert [command for command, _ in transcript] == commands[1:]
    outputs = dict(zip(commands, (run_gitops_command(c, tmp_path, capsys) for c in commands), strict=True))
    for command, quoted in transcript:
        assert quoted_in_order(quoted, outputs[command]), (command, quoted, outputs[command])

    state = tmp_path / "gitops-accept.json"
    assert shared_with_apps(state) == {"web-base-2026-11 KR1": "accepted", "web-base-2026-11 JP1": "accepted"}
    assert main(["plan", *GITOPS_ROOTS, "--sim-state", str(state), "--format", "json"]) == 0
    platform, storefront, apps = json.loads(capsys.readouterr().out)["roots"]
    assert [plan["actions"] for plan in (platform, storefront, apps)] == [[], [], []]
    assert "members_pending" not in {warning["code"] for warning in platform["warnings"]}
    assert apps["warnings"] == []  # the rule matches: no rule_matched_nothing any more

    # Next month (README): the family rule accepts the new version too, apps/accept.yaml unchanged.
    web = root / "platform" / "teams" / "web" / "images.yaml"
    web.write_text(web.read_text().replace('versions: ["2026-11"]', 'versions: ["2026-11", "2026-12"]'))
    assert main(["apply", *GITOPS_ROOTS, "--sim-state", str(state), "--auto-approve"]) == 0
    capsys.readouterr()
    assert shared_with_apps(state) == {
        f"web-base-{version} {region}": "accepted" for version in ("2026-11", "2026-12") for region in ("KR1", "JP1")
    }


def test_the_gitops_roots_plan_as_the_readme_says(tmp_path, capsys, monkeypatch):
    """Against the seed: 16 actions in platform (a stop for imaging, the family's first version made, copied to
    JP1 and shared with apps, a re-key), one create in storefront, whose root acts as its own API user
    (STOREFRONT_USERNAME, named in its target), and nothing yet in apps (its accept rule matches nothing)."""
    monkeypatch.chdir(EXAMPLES / "gitops")
    state = tmp_path / "sim.json"
    write_state_file(state, state_from_seed(yaml.safe_load(Path("simulator-seed.yaml").read_text(encoding="utf-8"))))
    assert main(["validate", *GITOPS_ROOTS]) == 0
    validated = capsys.readouterr().out
    assert "nhn api-identity-infrastructure.nhncloudservice.com as STOREFRONT_USERNAME" in validated
    assert "nhn api-identity-infrastructure.nhncloudservice.com as APPS_USERNAME" in validated
    assert main(["plan", *GITOPS_ROOTS, "--sim-state", str(state), "--format", "json"]) == 0
    platform, storefront, apps = json.loads(capsys.readouterr().out)["roots"]
    kinds = [action["kind"] for action in platform["actions"]]
    assert len(kinds) == 16 and {"stop_instance", "copy", "share"} <= set(kinds)
    shares = {(a["key"], a["region"]) for a in platform["actions"] if a["kind"] == "share"}
    assert shares == {("web-base-2026-11", "KR1"), ("web-base-2026-11", "JP1")}
    assert [(a["kind"], a["key"]) for a in storefront["actions"]] == [("create", "checkout-2026-11")]
    assert apps["actions"] == [] and [w["code"] for w in apps["warnings"]] == ["rule_matched_nothing"]


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
