"""Members the tool would never add, set in the cloud by anyone in the project (`..`, text with a newline):
never shared or unshared, one invalid_member warning per image, and a saved plan still round-trips. Before,
an unshare of `..` went out as DELETE of the image itself, and a member with a newline made an action id
no saved plan accepts. End to end, over the simulator's HTTP API."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from reconciler.cli import main
from reconciler.connect import open_cloud
from reconciler.validate import load_desired_state

CASES = Path(__file__).resolve().parent / "cases"
IMAGE = "00000000-0000-4000-8000-000000000011"  # web-base in unshare-last-member, shared with PARTNER
PARTNER = "8989447062e04a818baf9e073fd04fa7"
ODD = ["..", "x\n  - delete web-base"]


@pytest.fixture(autouse=True)
def no_credentials(monkeypatch):
    for name in ("NHN_CLOUD_USERNAME", "NHN_CLOUD_API_PASSWORD", "OS_USERNAME", "OS_PASSWORD"):
        monkeypatch.delenv(name, raising=False)


def through_the_api(root: Path, change):
    desired = load_desired_state(root)
    with open_cloud(desired.root, desired.root.cloud, {}) as (client, _):
        return change(client)


@pytest.fixture
def root(tmp_path, capsys) -> Path:
    """unshare-last-member (share: [], one partner live) with the odd members added by hand."""
    made = tmp_path / "root"
    shutil.copytree(CASES / "unshare-last-member" / "root", made)
    assert main(["plan", str(made)]) == 0  # the state is made from the seed
    capsys.readouterr()
    through_the_api(made, lambda client: [client.add_member("KR1", IMAGE, member) for member in ODD])
    return made


def members(root: Path) -> list[str]:
    """From the simulator's state: Glance lists no members of an image that is private again."""
    state = json.loads((root / ".reconciler" / "sim-state.json").read_text())
    return sorted(state["images"][IMAGE]["members"])


def test_odd_members_get_one_warning_and_no_action(root, capsys):
    assert main(["plan", str(root), "--format", "json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert [(a["kind"], a.get("member")) for a in plan["actions"]] == [("unshare", PARTNER)]
    (warning,) = [w for w in plan["warnings"] if w["code"] == "invalid_member"]
    assert (warning["key"], warning["region"]) == ("web-base", "KR1")
    assert IMAGE in warning["message"]
    assert '".."' in warning["message"] and '"x\n  - delete web-base"' in warning["message"]  # quoted, as data


def test_the_text_plan_shows_the_odd_member_escaped(root, capsys):
    assert main(["plan", str(root), "--no-color"]) == 0
    out = capsys.readouterr().out
    assert "invalid_member" in out or "never adds" in out
    assert "\n  - delete web-base" not in out
    assert not any(line.lstrip().startswith("- delete") for line in out.splitlines())


def test_apply_leaves_the_image_and_the_odd_members_alone(root, capsys):
    assert main(["apply", str(root), "--auto-approve"]) == 0
    capsys.readouterr()
    image = through_the_api(root, lambda client: client.get_image("KR1", IMAGE))
    assert (image.status, image.visibility) == ("active", "private")
    assert members(root) == sorted(ODD)


def test_a_saved_plan_with_odd_members_round_trips(root, tmp_path, capsys):
    plan_file = tmp_path / "plan.json"
    assert main(["plan", str(root), "--out", str(plan_file)]) == 0
    capsys.readouterr()
    assert main(["apply", "--plan", str(plan_file), str(root), "--auto-approve", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["outcome"] == "applied"
    assert [r["id"] for r in report["results"]] == [f"unshare:web-base:KR1:{PARTNER}"]
    assert members(root) == sorted(ODD)
    assert main(["plan", str(root), "--detailed-exitcode"]) == 0  # converged; the warning stays
