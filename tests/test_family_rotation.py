"""Six months of a family on the simulator (issue 23), end to end through the CLI (`main([...])`, in-process).

Each "month" appends one version to `web-base` (keep 3, protect_newest 2, a copy in JP1, a share) and applies
with --auto-approve. After each apply the simulator is read through its own API (tests/support.py `Api`, the
project's token), never through the tool's output: exactly the newest `keep` versions exist in KR1 and JP1
(plus a version deferred while a server uses it: booted in month 3, deleted in month 5, retired by the apply
after), exactly the newest `protect_newest` are protected, `reconciler_newest` is on the newest only in each
region, every version image carries its family and version, and the project's other images are untouched.
Then: `plan --target web-base` covers the family's versions, retired ones included, and nothing else; a
saved plan whose retirement gains a user between plan and apply still applies (exit 0) and the image stays;
`apply --target` on the new version alone leaves one image marked reconciler_newest per region.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from support import CREDENTIAL_VARIABLES, OWNER, OWNER_USER, PARTNER, Api

from reconciler.cli import main
from reconciler.simulator.embedded import running_simulator

FAMILY = "web-base"
MONTHS = ["2026-09", "2026-10", "2026-11", "2026-12", "2027-01", "2027-02"]
KEEP, PROTECT_NEWEST = 3, 2
REGIONS = ("KR1", "JP1")
GOLDEN = "10000000-0000-4000-8000-000000000031"
APP_BASE = "00000000-0000-4000-8000-000000000301"  # declared by the root under images:, adopted by id
UNMANAGED = ("00000000-0000-4000-8000-000000000302", "00000000-0000-4000-8000-000000000303")  # KR1, JP1
OTHER_SET = "00000000-0000-4000-8000-000000000304"  # the image of another set

SEED: dict[str, Any] = {
    "regions": list(REGIONS),
    "projects": [
        {"id": OWNER, "users": [{"username": OWNER_USER[0], "api_password": OWNER_USER[1]}]},
        {"id": PARTNER},
    ],
    "servers": [
        {"id": GOLDEN, "project": OWNER, "region": "KR1", "name": "web-golden-01", "flavor": "u2.c2m4",
         "status": "SHUTOFF", "os_type": "linux"},
    ],
    "images": [
        {"id": APP_BASE, "project": OWNER, "region": "KR1", "name": "app-base", "size_mb": 16,
         "properties": {"os_type": "linux", "reconciler_set": "golden", "reconciler_key": "app-base",
                        "reconciler_source": f"image:{APP_BASE}"}},
        {"id": UNMANAGED[0], "project": OWNER, "region": "KR1", "name": "hand-made", "protected": True},
        {"id": UNMANAGED[1], "project": OWNER, "region": "JP1", "name": "hand-made-jp", "visibility": "shared",
         "members": [{"project": PARTNER, "status": "accepted"}]},
        {"id": OTHER_SET, "project": OWNER, "region": "KR1", "name": "batch-base",
         "properties": {"reconciler_set": "batch", "reconciler_key": "batch-base",
                        "reconciler_source": f"image:{OTHER_SET}"}},
    ],
}  # fmt: skip

ROOT = "version: 1\nset: golden\ncloud: {kind: simulator, seed: seed.yaml}\ndefaults: {region: KR1}\n"
APP_MANIFEST = f"version: 1\nimages:\n  app-base:\n    source: {{image: {APP_BASE}}}\n"


@pytest.fixture(autouse=True)
def no_credentials(monkeypatch):
    for name in CREDENTIAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)


# -- the root and its months ---------------------------------------------------------------------------


def make_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "images").mkdir(parents=True)
    (root / "reconciler.yaml").write_text(ROOT, encoding="utf-8")
    (root / "seed.yaml").write_text(yaml.safe_dump(SEED, sort_keys=False), encoding="utf-8")
    (root / "images" / "app.yaml").write_text(APP_MANIFEST, encoding="utf-8")
    return root


def list_versions(root: Path, month: int, oldest: int = 0) -> list[str]:
    """This month's pull request: the family lists the first `month` versions (from `oldest`: the history
    before it trimmed)."""
    listed = MONTHS[oldest:month]
    family = {
        "versions": listed,
        "keep": KEEP,
        "protect_newest": PROTECT_NEWEST,
        "image": {
            "source": {"instance": "web-golden-01"},
            "name": "web-base-{version}",
            "copies": ["JP1"],
            "share": [PARTNER],
        },
    }
    document = {"version": 1, "families": {FAMILY: family}}
    (root / "images" / "web.yaml").write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return listed


def apply(root: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> dict[str, Any]:
    code = main(["apply", *extra, str(root), "--auto-approve", "--format", "json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


def plan(root: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> dict[str, Any]:
    code = main(["plan", str(root), "--format", "json", *extra])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


# -- the simulator, through its own API ------------------------------------------------------------------


@contextmanager
def cloud(root: Path) -> Iterator[Api]:
    """The root's simulator (its state file, made from the seed if no command ran yet), as the owner sees it."""
    with running_simulator(root / ".reconciler" / "sim-state.json", seed_path=root / "seed.yaml") as server:
        yield Api(server, *OWNER_USER, OWNER)


def project_images(root: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """The project's own images, by region and id, with their members (Glance v2 fields as served)."""
    found: dict[str, dict[str, dict[str, Any]]] = {}
    with cloud(root) as api:
        for region in REGIONS:
            answer = api.image("GET", "/v2/images", region, params={"limit": 1000, "owner": OWNER})
            assert answer.status_code == 200, answer.text
            images = {image["id"]: image for image in answer.json()["images"] if image["owner"] == OWNER}
            assert len(images) < 1000, "one page holds them all"
            for image_id, image in images.items():
                members = api.image("GET", f"/v2/images/{image_id}/members", region).json().get("members", [])
                image["members"] = sorted(member["member_id"] for member in members)
            found[region] = images
    return found


def family_versions(images: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """A region's images of the family, by their reconciler_version."""
    return {image["reconciler_version"]: image for image in images.values() if image.get("reconciler_family")}


def other_images(images: dict[str, dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    return {
        image_id: image
        for region in REGIONS
        for image_id, image in images[region].items()
        if not image.get("reconciler_family")
    }


def boot_from(root: Path, image_id: str, region: str = "KR1") -> str:
    with cloud(root) as api:
        flavors = api.compute("GET", "/flavors/detail", region).json()["flavors"]
        flavor = next(f["id"] for f in flavors if f["name"] == "u2.c2m4")  # a local disk: image.id is the image
        body = {"server": {"name": "app-on-an-old-version", "flavorRef": flavor, "imageRef": image_id}}
        answer = api.compute("POST", "/servers", region, json=body)
    assert answer.status_code == 202, answer.text
    return answer.json()["server"]["id"]


def delete_server(root: Path, server_id: str, region: str = "KR1") -> None:
    with cloud(root) as api:
        answer = api.compute("DELETE", f"/servers/{server_id}", region)
    assert answer.status_code == 204, answer.text


def check_month(images: dict[str, dict[str, dict[str, Any]]], listed: list[str], deferred: dict[str, str]) -> None:
    """What a month leaves in each region: the newest KEEP versions (and a deferred one), the newest
    PROTECT_NEWEST protected, the newest marker on the newest only, each version marked and shared."""
    kept, protected, newest = listed[-KEEP:], listed[-PROTECT_NEWEST:], listed[-1]
    for region in REGIONS:
        versions = family_versions(images[region])
        expected = set(kept) | ({deferred[region]} if region in deferred else set())
        assert set(versions) == expected, (region, listed)
        assert {v for v, image in versions.items() if image["protected"]} == set(protected), (region, listed)
        assert {v for v, image in versions.items() if image.get("reconciler_newest") == "true"} == {newest}
        for version, image in versions.items():
            assert (image["reconciler_family"], image["reconciler_key"]) == (FAMILY, f"{FAMILY}-{version}")
            assert image["name"] == f"{FAMILY}-{version}" and image["status"] == "active"
            assert image["members"] == [PARTNER], (region, version)


def run_months(root: Path, capsys: pytest.CaptureFixture[str], months: range) -> None:
    """Apply the given months one after the other (no user in between)."""
    for month in months:
        listed = list_versions(root, month)
        apply(root, capsys)
        check_month(project_images(root), listed, {})


# -- the tests ------------------------------------------------------------------------------------------


def test_six_months_keep_the_newest_three_protect_the_newest_two_and_wait_for_a_user(tmp_path, capsys):
    root = make_root(tmp_path)
    others_before = other_images(project_images(root))
    assert set(others_before) == {APP_BASE, *UNMANAGED, OTHER_SET}
    deferred: dict[str, str] = {}
    server = None

    for month in range(1, len(MONTHS) + 1):
        listed = list_versions(root, month)
        report = apply(root, capsys)
        assert report["outcome"] == "applied", report
        images = project_images(root)
        check_month(images, listed, deferred)
        assert other_images(images) == others_before, f"month {month} changed an image outside the family"

        if month == 3:
            # A team boots a server from the oldest version's KR1 image: month 4 retires its JP1 copy only.
            server = boot_from(root, family_versions(images["KR1"])["2026-09"]["id"])
            deferred = {"KR1": "2026-09"}
        if month == 5:
            # Still waiting after two monthly applies; once the server goes, the next apply retires it.
            assert server is not None
            delete_server(root, server)
            deferred = {}

    final = project_images(root)
    assert {region: sorted(family_versions(final[region])) for region in REGIONS} == {
        region: MONTHS[-KEEP:] for region in REGIONS
    }
    assert main(["plan", str(root), "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert (document["actions"], document["refusals"]) == ([], []), "six months converge"


def test_plan_target_family_covers_its_versions_unlisted_retired_ones_included_and_nothing_else(tmp_path, capsys):
    root = make_root(tmp_path)
    run_months(root, capsys, range(1, 4))
    list_versions(root, 4, oldest=1)  # 2026-09 leaves the list: only its images' markers name it now
    # A change outside the family in the same pull request: --target web-base leaves it out.
    (root / "images" / "app.yaml").write_text(APP_MANIFEST + "    description: app base\n", encoding="utf-8")

    full = plan(root, capsys)
    targeted = plan(root, capsys, "--target", FAMILY)

    keys = {action["key"] for action in targeted["actions"]}
    assert keys == {f"{FAMILY}-{v}" for v in ("2026-09", "2026-10", "2026-11", "2026-12")}
    retired = [a["id"] for a in targeted["actions"] if a["reason"]["code"] == "retired"]
    assert retired == ["delete:web-base-2026-09:JP1", "delete:web-base-2026-09:KR1"]
    assert [a["id"] for a in full["actions"] if a["key"] == "app-base"] == ["update:app-base:KR1"]
    assert [a["id"] for a in full["actions"] if a["key"] != "app-base"] == [a["id"] for a in targeted["actions"]]


def test_a_saved_plan_whose_retirement_gains_a_user_before_apply_applies_and_the_version_stays(tmp_path, capsys):
    root = make_root(tmp_path)
    run_months(root, capsys, range(1, 4))
    listed = list_versions(root, 4)
    plan_file = tmp_path / "month-4.json"
    assert main(["plan", str(root), "--out", str(plan_file)]) == 0
    capsys.readouterr()
    saved = json.loads(plan_file.read_text(encoding="utf-8"))
    assert {a["id"] for a in saved["actions"] if a["kind"] == "delete"} == {
        "delete:web-base-2026-09:JP1",
        "delete:web-base-2026-09:KR1",
    }

    home = family_versions(project_images(root)["KR1"])["2026-09"]["id"]
    boot_from(root, home)

    code = main(["apply", "--plan", str(plan_file), str(root), "--auto-approve", "--format", "json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    report = json.loads(captured.out)
    assert report["outcome"] == "applied" and report["summary"]["failed"] == 0, report
    deletes = {r["id"]: r["status"] for r in report["results"] if r["id"].startswith("delete:")}
    # The fresh plan apply makes before it runs sees the server: that retirement is deferred, not done.
    assert deletes.get("delete:web-base-2026-09:KR1", "deferred") == "deferred", deletes
    assert deletes["delete:web-base-2026-09:JP1"] == "done"
    assert "retirement_deferred" in captured.err, captured.err
    check_month(project_images(root), listed, {"KR1": "2026-09"})


def test_apply_target_on_the_new_version_alone_leaves_one_newest_image_per_region(tmp_path, capsys):
    """--target names only the new version: the marker's removal from the version before it is one move with
    its add, so no region ends with two images marked reconciler_newest (what a hostile review found)."""
    root = make_root(tmp_path)
    run_months(root, capsys, range(1, 4))
    list_versions(root, 4)

    report = apply(root, capsys, "--target", f"{FAMILY}-2026-12")
    assert report["outcome"] == "applied", report

    images = project_images(root)
    for region in REGIONS:
        versions = family_versions(images[region])
        assert {v for v, image in versions.items() if image.get("reconciler_newest") == "true"} == {"2026-12"}
        # The rest of the rotation was out of scope: 2026-09 is still there and 2026-10 still protected.
        assert {"2026-09", "2026-10"} <= set(versions) and versions["2026-10"]["protected"]
