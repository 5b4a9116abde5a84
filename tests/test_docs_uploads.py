"""The documentation of uploads from a file or a URL (issue 25) says what the code does: every manifest it
shows validates (the Packer example and the family among them), every option the operator has is
explained, the numbers it states are the code's, the plan's upload fields are all described, the runbook
quotes the reason the plan really prints for an upload's leftover, and every "docs/X.md, "Section"" the
code sends a reader to exists."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from reconciler.cli import build_parser
from reconciler.planner.temporary import UPLOAD_RESTARTS
from reconciler.sources import urls
from reconciler.sources.access import DEFAULT_MAX_UPLOAD_BYTES
from reconciler.validate import load_desired_state

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
SECTION = "Images from a file or a URL"
ROOT_CONFIG = "version: 1\nset: platform\ncloud: {kind: nhn, project: 0123456789abcdef0123456789abcdef}\n"
ROOT_CONFIG += "defaults: {region: KR1}\n"


def doc(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def section(text: str, heading: str) -> str:
    """The text under the `## heading`, up to the next `## ` heading; empty when there is none."""
    parts = re.split(rf"^## {re.escape(heading)}\n", text, maxsplit=1, flags=re.M)
    return re.split(r"^## ", parts[1], maxsplit=1, flags=re.M)[0] if len(parts) == 2 else ""


def manifests_in(text: str) -> list[str]:
    """The YAML blocks that are manifests (they say `version: 1` and declare images or families)."""
    blocks = re.findall(r"```yaml\n(.*?)```", text, re.S)
    return [b for b in blocks if (d := yaml.safe_load(b)) and d.get("version") == 1 and {"images", "families"} & set(d)]


def upload_options() -> list[str]:
    """The options of plan's "uploads from a file or a URL" group, as the command line spells them."""
    plan = next(a for a in build_parser()._actions if a.dest == "command").choices["plan"]
    group = next(g for g in plan._action_groups if g.title == "uploads from a file or a URL")
    return [a.option_strings[0] for a in group._group_actions]


def test_the_manifest_doc_has_the_upload_section_with_the_packer_example() -> None:
    text = section(doc("manifest.md"), SECTION)
    assert text, f'docs/manifest.md has no "## {SECTION}"'
    assert "output-hardened/hardened-2026-12.qcow2" in text and "sha256sum" in text
    assert 'format           = "qcow2"' in text and "source_not_built" in text and "--artifacts DIR" in text
    shown = [yaml.safe_load(b) for b in manifests_in(text)]
    single = [d for d in shown if "images" in d]
    assert single and single[0]["images"]["hardened-2026-12"]["source"]["disk_format"] == "qcow2"
    assert any("families" in d for d in shown), "the section shows a family of uploads"


@pytest.mark.parametrize("index", range(2))
def test_each_manifest_the_upload_section_shows_validates(index: int, tmp_path: Path) -> None:
    blocks = manifests_in(section(doc("manifest.md"), SECTION))
    assert len(blocks) >= 2
    (tmp_path / "reconciler.yaml").write_text(ROOT_CONFIG, encoding="utf-8")
    (tmp_path / "images.yaml").write_text(blocks[index], encoding="utf-8")
    desired = load_desired_state(tmp_path)
    assert desired.images and all(spec.source.uploaded for spec in desired.images)
    assert all((spec.properties or {}).get("os_type") == "linux" for spec in desired.images)


def test_every_upload_option_is_explained_in_the_manifest_doc_safety_and_readme() -> None:
    options = upload_options()
    assert len(options) == 7, options
    manifest, safety, readme = section(doc("manifest.md"), SECTION), doc("safety.md"), (REPO / "README.md").read_text()
    for option in options:
        assert f"`{option}" in manifest, f"{option} is not in the options table of docs/manifest.md"
        assert option in safety or option == "--artifacts DIR", option
    assert "--artifacts" in safety
    assert [o for o in options if o not in readme] == ["--allow-http-loopback"]  # a tests-only option


def test_safety_states_the_codes_numbers_and_the_pull_request_recipes_keep_to_them() -> None:
    text = section(doc("safety.md"), "Uploads: what a manifest can make the tool read")
    assert text
    assert f"at most {urls.REDIRECTS}," in text
    assert f"default {DEFAULT_MAX_UPLOAD_BYTES // 2**30} GiB" in text
    for words in ("O_NOFOLLOW", "SNI", "CONNECT <address>:<port>", "origin only", "169.254.169.254"):
        assert words in text, words
    # "The pull-request recipes never pass --fetch-sources": no tracked recipe file does.
    listed = subprocess.run(["git", "ls-files", "examples/gitops", "action.yml"], cwd=REPO, capture_output=True)
    recipes = [REPO / name for name in listed.stdout.decode().split()]
    assert recipes and not [p for p in recipes if "--fetch-sources" in p.read_text(errors="replace")]


def test_apply_describes_the_four_steps_and_no_resume() -> None:
    text = section(doc("apply.md"), "Uploads from a file or a URL")
    assert text
    steps = re.findall(r"^\d\. \*\*(\w[\w ]*)", text, re.M)
    assert steps == ["Create", "Stream", "Verify", "Name and mark"]
    assert "byte 0" in text and "5 MiB/s" in text and "uploading <key> -> <region>" in text


def test_the_runbook_quotes_the_reason_the_plan_prints_for_an_uploads_leftover() -> None:
    text = section(doc("runbook.md"), "An upload left under its temporary name")
    assert text and UPLOAD_RESTARTS in text


def test_plan_format_names_every_field_of_an_upload_create() -> None:
    plan = json.loads((REPO / "tests" / "cases" / "upload-file-present" / "plan.json").read_text())
    [create] = [a for a in plan["actions"] if a["kind"] == "create"]
    common = {"id", "kind", "key", "region", "image_id", "changes", "expects", "reason", "depends_on"}
    fields = (set(create) - common) | {"url"}
    bullet = doc("plan-format.md").split("- A `create` that uploads", 1)[1].split("\n- ", 1)[0]
    assert sorted(f for f in fields if f"`{f}`" not in bullet) == []
    assert '"1.1"' in bullet


def test_the_architecture_module_map_names_the_upload_modules() -> None:
    text = doc("architecture.md")
    modules = sorted(p.name for p in (REPO / "reconciler" / "sources").glob("*.py") if p.name != "__init__.py")
    assert [m for m in modules + ["image_upload.py", "uploads.create"] if m not in text] == []


def test_every_section_the_code_points_a_reader_to_exists() -> None:
    pointed = set()
    for module in (REPO / "reconciler").rglob("*.py"):
        for name, words in re.findall(r'docs/([a-z-]+\.md),\s+"([^"]+)"', module.read_text(encoding="utf-8")):
            pointed.add((name, " ".join(words.split())))  # a docstring may wrap the words
    assert ("manifest.md", SECTION) in pointed
    missing = [(name, words) for name, words in pointed if words not in " ".join(doc(name).split())]
    assert sorted(f'docs/{name}, "{words}"' for name, words in missing) == []
