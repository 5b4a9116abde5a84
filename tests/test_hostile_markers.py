"""Hostile markers on managed images (issue 17): anyone in the project may set properties, so a
`reconciler_props` marker that names the tool's own markers, or a bookkeeping property on a home image,
must neither make a plan strip the markers nor crash the planner. Through the CLI on the quickstart,
applied once, with the simulator's state edited as a colleague with the console would."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from reconciler.cli import main

QUICKSTART = Path(__file__).resolve().parent.parent / "examples" / "quickstart"
CREDENTIAL_VARIABLES = ("NHN_CLOUD_USERNAME", "NHN_CLOUD_API_PASSWORD", "OS_USERNAME", "OS_PASSWORD")
KEY = "web-base-2026-11"  # the quickstart's instance-sourced key: a KR1 home and a JP1 copy once applied
# Every name here is one no manifest may declare, or os_type, which the tool never removes.
HOSTILE_PROPS = "login_username,reconciler_key,reconciler_set,reconciler_copy_of,reconciler_source,os_type,name"


@pytest.fixture(autouse=True)
def no_credentials(monkeypatch):
    for name in CREDENTIAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def applied(tmp_path, capsys) -> Path:
    root = tmp_path / "quickstart"
    shutil.copytree(QUICKSTART, root, ignore=shutil.ignore_patterns(".reconciler"))
    assert main(["apply", str(root), "--auto-approve"]) == 0
    capsys.readouterr()
    return root


def state_path(root: Path) -> Path:
    return root / ".reconciler" / "sim-state.json"


def images_of_key(root: Path) -> dict[str, dict]:
    """The key's live images by region, their fields as the simulator stores them."""
    images = json.loads(state_path(root).read_text())["images"].values()
    return {i["region"]: i["fields"] for i in images if i["fields"].get("reconciler_key") == KEY}


def edit_key_images(root: Path, **properties: str) -> None:
    """Set properties on the key's home and copy, as anyone in the project may."""
    path = state_path(root)
    doc = json.loads(path.read_text())
    for image in doc["images"].values():
        if image["fields"].get("reconciler_key") == KEY:
            image["fields"].update(properties)
    path.write_text(json.dumps(doc))


def plan(root: Path, capsys, *extra: str) -> tuple[int, str]:
    code = main(["plan", str(root), *extra])
    return code, capsys.readouterr().out


def markers_of(fields: dict) -> dict[str, str]:
    return {k: v for k, v in fields.items() if k.startswith("reconciler_") and k != "reconciler_props"}


def test_a_props_marker_naming_markers_removes_none_of_them(applied, capsys):
    before = images_of_key(applied)
    assert set(before) == {"KR1", "JP1"} and "reconciler_copy_of" in before["JP1"]
    edit_key_images(applied, reconciler_props=HOSTILE_PROPS)

    code, out = plan(applied, capsys, "--format", "json")
    assert code == 0
    actions = json.loads(out)["actions"]
    # Only the marker itself is rewritten: nothing it named is set to null.
    assert actions and all(set(a["changes"]) == {"reconciler_props"} for a in actions), actions
    assert all(a["changes"]["reconciler_props"]["after"] == "login_username" for a in actions)

    assert main(["apply", str(applied), "--auto-approve"]) == 0
    capsys.readouterr()
    after = images_of_key(applied)
    for region in ("KR1", "JP1"):
        assert markers_of(after[region]) == markers_of(before[region])
        assert after[region]["os_type"] == before[region]["os_type"] == "linux"
        assert after[region]["name"] == KEY
        assert after[region]["reconciler_props"] == "login_username"
    # And the next plan is clean: no copy of the copy, no new home.
    code, out = plan(applied, capsys, "--format", "json")
    again = json.loads(out)
    assert (code, again["actions"], again["refusals"]) == (0, [], [])


def test_the_markdown_verdict_of_such_a_plan_covers_only_the_marker(applied, capsys):
    edit_key_images(applied, reconciler_props="login_username,reconciler_key")
    code, out = plan(applied, capsys, "--format", "markdown")
    assert code == 0
    assert "`reconciler_key`" not in out.split("<details>", 1)[1], out


@pytest.mark.parametrize(
    "bookkeeping", [{"reconciler_doctor": "x"}, {"reconciler_lock_claim": "other-set"}], ids=["doctor", "claim"]
)
def test_a_bookkeeping_property_on_a_home_image_is_no_traceback(applied, capsys, bookkeeping):
    path = state_path(applied)
    doc = json.loads(path.read_text())
    for image in doc["images"].values():
        fields = image["fields"]
        if fields.get("reconciler_key") == KEY and "reconciler_copy_of" not in fields:
            fields.update(bookkeeping)
    path.write_text(json.dumps(doc))

    # The planner no longer sees that image as the home (it is bookkeeping, nobody's image): it plans a
    # create from the instance, which needs what the snapshot reads for a key without a home.
    code = main(["plan", str(applied), "--format", "json"])
    assert code in (0, 2, 3)
    report = json.loads(capsys.readouterr().out)
    kinds = {(a["kind"], a["key"], a["region"]) for a in report["actions"]}
    assert ("create", KEY, "KR1") in kinds, report
