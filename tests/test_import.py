"""reconciler import: manifests for a project's unmanaged images, as they are, so that the first plan
only adopts; then apply, and the plan is empty."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import yaml

from reconciler.cli import main
from reconciler.validate import load_desired_state

OWNER = "3f0c9d2e6b7a4f0e9a1b2c3d4e5f6a7b"
PARTNER = "8989447062e04a818baf9e073fd04fa7"
SEED = f"""\
regions: [KR1, JP1]
projects:
  - id: {OWNER}
    users: [{{username: dev@example.com, api_password: local-only}}]
  - id: {PARTNER}
images:
  - {{id: 00000000-0000-4000-8000-000000000001, project: {OWNER}, region: KR1, name: "Web Base (2025.10)",
     protected: true, size_mb: 2, content: web, visibility: shared, members: [{{project: {PARTNER}, status: accepted}}],
     min_disk: 20, properties: {{os_type: linux, login_username: ubuntu, description: Golden web,
     nhncloud_allow_download: "false", nhncloud_product: compute}}}}
  - {{id: 00000000-0000-4000-8000-000000000002, project: {OWNER}, region: JP1, name: "Web Base (2025.10)",
     size_mb: 2, content: web, visibility: shared, members: [{{project: {PARTNER}, status: accepted}}],
     min_disk: 20, properties: {{os_type: linux, login_username: ubuntu, description: Golden web}}}}
  - {{id: 00000000-0000-4000-8000-000000000003, project: {OWNER}, region: KR1, name: api-base,
     properties: {{os_type: linux}}}}
  - {{id: 00000000-0000-4000-8000-000000000004, project: {OWNER}, region: KR1, name: tmp-broken, status: killed,
     properties: {{os_type: linux}}}}
  - {{id: 00000000-0000-4000-8000-000000000005, project: {OWNER}, region: KR1, name: managed-already,
     properties: {{os_type: linux, reconciler_set: other-team, reconciler_key: x}}}}
"""


@pytest.fixture
def root(tmp_path, monkeypatch):
    for name in ("NHN_CLOUD_USERNAME", "NHN_CLOUD_API_PASSWORD", "OS_USERNAME", "OS_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "reconciler.yaml").write_text(
        "version: 1\nset: legacy\ncloud: {kind: simulator, seed: seed.yaml}\ndefaults: {region: KR1}\n"
    )
    (tmp_path / "seed.yaml").write_text(textwrap.dedent(SEED))
    return tmp_path


def plan(root: Path, capsys) -> dict:
    main(["plan", str(root), "--format", "json"])
    return json.loads(capsys.readouterr().out)


def test_import_then_the_first_plan_only_adopts_and_apply_converges(root, capsys):
    assert main(["import", str(root), "--region", "KR1"]) == 0
    captured = capsys.readouterr()
    assert "Wrote imported-kr1.yaml: 2 images." in captured.out
    assert "left out tmp-broken (00000000-0000-4000-8000-000000000004): killed" in captured.err
    manifest = yaml.safe_load((root / "imported-kr1.yaml").read_text())
    web = manifest["images"]["Web-Base-2025.10"]
    assert web["source"] == {"image": "00000000-0000-4000-8000-000000000001"}
    assert (web["protected"], web["min_disk"], web["download"], web["description"]) == (True, 20, False, "Golden web")
    assert web["properties"] == {"login_username": "ubuntu", "os_type": "linux"}  # nhncloud_* are NHN's own
    assert web["share"] == [PARTNER]
    assert web["copies"] == [{"region": "JP1", "image": "00000000-0000-4000-8000-000000000002", "protected": False}]
    assert set(manifest["images"]) == {"Web-Base-2025.10", "api-base"}  # nor another set's image
    load_desired_state(root)  # what import writes validates

    first = plan(root, capsys)
    assert {a["kind"] for a in first["actions"]} == {"adopt"} and first["refusals"] == []
    assert main(["apply", str(root), "--auto-approve"]) == 0
    capsys.readouterr()
    assert plan(root, capsys)["actions"] == []


def test_import_never_overwrites_and_finds_nothing_left_after_adoption(root, capsys):
    assert main(["import", str(root), "--region", "KR1", "--name-prefix", "api"]) == 0
    assert list(yaml.safe_load((root / "imported-kr1.yaml").read_text())["images"]) == ["api-base"]
    assert main(["import", str(root), "--region", "KR1"]) == 1
    assert "never overwrites" in capsys.readouterr().err
    main(["apply", str(root), "--auto-approve"])
    (root / "imported-kr1.yaml").rename(root / "api.yaml")
    capsys.readouterr()
    assert main(["import", str(root), "--region", "KR1", "--name-prefix", "api"]) == 0
    assert "No unmanaged image to import in KR1" in capsys.readouterr().out


def test_import_never_writes_an_image_under_a_temporary_name(root, capsys):
    """A temporary name (`~rc-` and 16 or 8 hex at the end) is some set's create, interrupted or running:
    its plan finishes or deletes it, so import neither declares it nor takes it for a copy."""
    temporary = f"""\
  - {{id: 00000000-0000-4000-8000-000000000006, project: {OWNER}, region: KR1, name: "web~rc-0123456789abcdef",
     properties: {{os_type: linux}}}}
  - {{id: 00000000-0000-4000-8000-000000000007, project: {OWNER}, region: KR1, name: "old~rc-01234567",
     properties: {{os_type: linux}}}}
"""
    (root / "seed.yaml").write_text(textwrap.dedent(SEED) + temporary)
    assert main(["import", str(root), "--region", "KR1"]) == 0
    captured = capsys.readouterr()
    assert "Wrote imported-kr1.yaml: 2 images." in captured.out
    for name, image_id in (("old~rc-01234567", "7"), ("web~rc-0123456789abcdef", "6")):
        assert f"left out {name} (00000000-0000-4000-8000-00000000000{image_id}): a temporary name" in captured.err
    manifest = yaml.safe_load((root / "imported-kr1.yaml").read_text())
    assert set(manifest["images"]) == {"Web-Base-2025.10", "api-base"}


# Names, descriptions and properties a manifest may not hold (issue 17, hostile review): import wrote them,
# said "Review it, then: reconciler plan", and the next validate failed on the file import had just written.
HIDDEN_NAMES = {
    "a1": "\u200b",  # a zero-width space: looks empty
    "a2": "\u202e\u202e",  # right-to-left overrides
    "a3": "web\x1b[2J\n  - delete prod KR1",  # an ESC sequence and a fake plan line
    "a4": "\u3164",  # a Hangul filler: a letter that shows as nothing
    "a5": "web\u2800base",  # the blank Braille pattern
    "a6": "half~rc-way",  # ~rc- marks the tool's temporary names
}


def test_import_leaves_out_what_a_manifest_may_not_hold_and_its_file_validates(root, capsys):
    odd = "".join(
        f"  - {{id: 00000000-0000-4000-8000-0000000000{suffix}, project: {OWNER}, region: KR1, "
        f"name: {json.dumps(name)}, properties: {{os_type: linux}}}}\n"
        for suffix, name in HIDDEN_NAMES.items()
    )
    description, note, key = (json.dumps(s) for s in ("line one\nline two", "x\x1b[31m", "k\u200b"))
    odd += (
        f"  - {{id: 00000000-0000-4000-8000-0000000000b1, project: {OWNER}, region: KR1, name: db-base,\n"
        f"     properties: {{os_type: linux, description: {description}, team: data,\n"
        f"     owner_note: {note}, {key}: v}}}}\n"
    )
    (root / "seed.yaml").write_text(textwrap.dedent(SEED) + odd)
    assert main(["import", str(root), "--region", "KR1"]) == 0
    captured = capsys.readouterr()
    assert "Wrote imported-kr1.yaml: 3 images." in captured.out
    assert "\x1b" not in captured.err and "\u202e" not in captured.err and "\n  - delete" not in captured.err
    for suffix in HIDDEN_NAMES:
        image_id = f"00000000-0000-4000-8000-0000000000{suffix}"
        (note,) = [line for line in captured.err.splitlines() if image_id in line]
        assert note.startswith("  left out ") and "rename the image, then import again" in note, note
    assert "(00000000-0000-4000-8000-0000000000a3): its name holds characters that do not show (\\x1b, \\x0a)" in (
        captured.err
    )
    assert "db-base: description left out (it is left alone)" in captured.err
    assert "db-base: the property owner_note left out (it is left alone): its value holds" in captured.err
    assert "db-base: a property left out (it is left alone): its name holds characters that do not show (\\u200b)" in (
        captured.err
    )
    text = (root / "imported-kr1.yaml").read_text()
    manifest = yaml.safe_load(text)
    assert set(manifest["images"]) == {"Web-Base-2025.10", "api-base", "db-base"}
    db = manifest["images"]["db-base"]
    assert "description" not in db and db["properties"] == {"os_type": "linux", "team": "data"}
    assert all(c.isprintable() or c == "\n" for c in text)
    load_desired_state(root)  # what import writes validates
    assert main(["validate", str(root)]) == 0


def test_import_leaves_out_members_that_are_no_project_id(root, capsys):
    """Members anyone in the project can add by hand (`..`, text with a newline): the plan leaves them alone
    and no manifest may declare them, so import keeps the real partner and says what it left out."""
    from reconciler.connect import open_cloud

    assert main(["plan", str(root)]) == 0  # the state is made from the seed
    capsys.readouterr()
    desired = load_desired_state(root)
    with open_cloud(desired.root, desired.root.cloud, {}) as (client, _):
        for member in ("..", "x\n  - delete web"):
            client.add_member("KR1", "00000000-0000-4000-8000-000000000001", member)
    assert main(["import", str(root), "--region", "KR1"]) == 0
    err = capsys.readouterr().err
    assert "Web-Base-2025.10: 2 member(s) that are no project id left out of share (left alone)" in err
    manifest = yaml.safe_load((root / "imported-kr1.yaml").read_text())
    assert manifest["images"]["Web-Base-2025.10"]["share"] == [PARTNER]
    assert main(["validate", str(root)]) == 0
    capsys.readouterr()
    document = plan(root, capsys)
    assert {a["kind"] for a in document["actions"]} == {"adopt"}
