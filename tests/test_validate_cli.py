"""`reconciler validate` from the installed command: target line and OK on stdout, located problems on
stderr, exit codes 0 and 1, and "not a reconciler root" with the nearest root above."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
QUICKSTART = REPO / "examples" / "quickstart"


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reconciler", *args], capture_output=True, text=True, cwd=cwd)


def test_the_quickstart_is_valid():
    result = run("validate", str(QUICKSTART))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == (
        "reconciler validate · set quickstart · SIMULATOR state .reconciler/sim-state.json · project 3f0c…6a7b · "
        "all catalog regions"
    )
    assert lines[1] == "OK: 2 images in 2 files"
    assert result.stderr == ""


def test_the_root_defaults_to_the_current_folder():
    assert run("validate", cwd=QUICKSTART).returncode == 0


def test_problems_go_to_stderr_with_exit_1(tmp_path):
    root = tmp_path / "root"
    shutil.copytree(QUICKSTART, root)
    (root / "images" / "web.yaml").write_text(
        "version: 1\nimages:\n  web:\n    source: {instance: x}\n    protected: yes please\n"
    )
    result = run("validate", str(root))
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "images/web.yaml:5:16: images.web.protected: expected true or false, got a string",
        "error: 1 problem found; nothing was read from or changed in the cloud",
    ]


def test_a_folder_without_reconciler_yaml_is_not_a_root(tmp_path):
    result = run("validate", str(QUICKSTART / "images"))
    assert result.returncode == 1
    assert "is not a reconciler root (no reconciler.yaml)" in result.stderr
    assert f"the nearest root above is {QUICKSTART}" in result.stderr


def test_sim_state_names_the_target_it_overrides(tmp_path):
    result = run("--sim-state", str(tmp_path / "other.json"), "validate", str(QUICKSTART))
    assert f"SIMULATOR state {tmp_path / 'other.json'}" in result.stdout.splitlines()[0]


def test_too_long_values_give_the_limit_and_the_length_not_the_whole_value(tmp_path):
    """Issue 17: jsonschema's "'<the whole value>' is too long" named neither the limit nor the length."""
    root = tmp_path / "root"
    shutil.copytree(QUICKSTART, root)
    long_key = "k" * 300
    (root / "images" / "web.yaml").write_text(
        "version: 1\nimages:\n  web:\n    source: {instance: x}\n"
        f"    description: {'d' * 290}TAIL\n"
        f"    properties: {{{long_key}: v}}\n"
    )
    result = run("validate", str(root))
    assert result.returncode == 1
    assert "TAIL" not in result.stderr and long_key not in result.stderr, result.stderr
    assert (
        f"images.web.description: too long: 294 characters, at most 255 allowed (starts '{'d' * 40}...')"
        in result.stderr
    ), result.stderr
    assert f"too long: 300 characters, at most 255 allowed (starts '{'k' * 40}...')" in result.stderr


def test_a_quoted_value_is_escaped_and_cut():
    from reconciler.schema_messages import _quoted

    assert _quoted("web\x1b[2J\n- delete x") == "'web\\x1b[2J\\x0a- delete x'"
    assert _quoted("\u202e" + "z" * 100) == "'\\u202e" + "z" * 39 + "...'"
    assert _quoted(3) == "3"


def test_a_broken_reconciler_yaml_is_reported_alone_with_one_line_saying_why(tmp_path):
    """A typo in the seed's name used to add ~6 "seed.yaml: ... unknown key" lines: the seed read as a
    manifest (issue 17)."""
    root = tmp_path / "root"
    shutil.copytree(QUICKSTART, root)
    config = root / "reconciler.yaml"
    config.write_text(config.read_text().replace("seed: seed.yaml", "seed: seeds.yaml"))
    result = run("validate", str(root))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "reconciler.yaml:8:9: cloud.seed: seeds.yaml does not exist",
        "error: 1 problem found; nothing was read from or changed in the cloud",
        "hint: the manifests are checked once reconciler.yaml is valid",
    ]


def test_two_keys_adopting_one_image_exit_1_naming_both(tmp_path):
    root = tmp_path / "root"
    shutil.copytree(QUICKSTART, root)
    api = root / "images" / "api.yaml"
    api.write_text(api.read_text() + "  api-copy:\n    source:\n      image: 5d3c6a52-0b8e-4c39-9a51-2f7c1e9b4a10\n")
    result = run("validate", str(root))
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == (
        "images/api.yaml:10:14: images.api-copy.source.image: image 5d3c6a52-0b8e-4c39-9a51-2f7c1e9b4a10 is already "
        "adopted by images.api-base.source.image (at images/api.yaml:7:14); an image belongs to one key: declare it once"
    )


def test_a_root_with_a_family_counts_its_kept_versions(tmp_path):
    shutil.copytree(QUICKSTART, tmp_path / "root", ignore=shutil.ignore_patterns(".reconciler"))
    (tmp_path / "root" / "family.yaml").write_text(
        "version: 1\nfamilies:\n  base:\n    versions: ['1', '2', '3']\n    keep: 2\n"
        "    image: {source: {instance: web-golden-01}}\n",
        encoding="utf-8",
    )
    result = run("validate", str(tmp_path / "root"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1] == "OK: 4 images (2 of them kept versions of 1 family) in 3 files"


def test_a_consumer_root_counts_its_rules(tmp_path):
    root = tmp_path / "consumer"
    root.mkdir()
    (root / "reconciler.yaml").write_text(
        "version: 1\nset: apps\ncloud: {kind: simulator, seed: seed.yaml, project: 8989447062e04a818baf9e073fd04fa7}\n",
        encoding="utf-8",
    )
    shutil.copy(QUICKSTART / "seed.yaml", root / "seed.yaml")
    (root / "accept.yaml").write_text(
        "version: 1\naccept:\n  - {owner: 3f0c9d2e6b7a4f0e9a1b2c3d4e5f6a7b, family: web-base}\n"
        "  - {owner: 3f0c9d2e6b7a4f0e9a1b2c3d4e5f6a7b, name: 'ubuntu-*'}\n"
        "reject:\n  - {owner: 0123456789abcdef0123456789abcdef, name: '*'}\n",
        encoding="utf-8",
    )
    result = run("validate", str(root))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1] == "OK: 0 images, 2 accept rules, 1 reject rule in 1 file"
