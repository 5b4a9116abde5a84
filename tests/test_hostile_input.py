"""Hostile and broken input (tests/bad_input/, plus generated cases): every one ends in located
problems, exit 1, bounded time and memory, no traceback, no change to the cloud and no file written
outside the root."""

from __future__ import annotations

import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parent / "bad_input"
LOCATED = re.compile(r"^[^\s:][^:]*:\d+:\d+: ")
CASES = sorted(p.name for p in CORPUS.iterdir() if p.is_dir())
ROOT_CONFIG = "version: 1\nset: hostile\ncloud: {kind: simulator, seed: seed.yaml}\ndefaults: {region: KR1}\n"
SEED = (
    "regions: [KR1]\nprojects:\n  - id: 3f0c9d2e6b7a4f0e9a1b2c3d4e5f6a7b\n    users: [{username: a, api_password: b}]\n"
)


def run(*args: str, cwd: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "reconciler", *args], capture_output=True, text=True, cwd=cwd, timeout=120
    )
    return result, time.monotonic() - started


def assert_refused_cleanly(root: Path, sandbox: Path, *, max_seconds: float = 20) -> None:
    before = sorted(p.name for p in sandbox.iterdir())
    for command in ("validate", "plan"):
        result, seconds = run(command, str(root), cwd=sandbox)
        assert result.returncode == 1, (command, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr
        problems = [line for line in result.stderr.splitlines() if not line.startswith(("error:", "hint:"))]
        assert problems and all(LOCATED.match(line) for line in problems), result.stderr[:2000]
        assert seconds < max_seconds, f"{command} took {seconds:.1f} s"
    # No change to the cloud (no state was even made) and nothing written outside the root.
    assert not (root / ".reconciler").exists()
    assert sorted(p.name for p in sandbox.iterdir()) == before
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    assert peak_mb < 400, f"a run peaked at {peak_mb:.0f} MB"


@pytest.mark.parametrize("case", CASES)
def test_the_corpus(case, tmp_path):
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    root = sandbox / "a" / "b" / "root"  # deep enough that ../../ stays inside the sandbox
    shutil.copytree(CORPUS / case, root, symlinks=True)
    assert_refused_cleanly(root, sandbox)


def problems_read_with(parser: str, root: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What validating `root` in this process says, its YAML read with `parser` (libyaml's or PyYAML's own)."""
    import yaml

    from reconciler.validate import InvalidRootError, load_desired_state

    with monkeypatch.context() as patch:
        patch.setattr(yaml, "__with_libyaml__", parser == "libyaml")
        with pytest.raises(InvalidRootError) as refused:
            load_desired_state(root)
    return [str(problem) for problem in refused.value.problems]


@pytest.mark.skipif("not __import__('yaml').__with_libyaml__", reason="PyYAML was built without libyaml")
@pytest.mark.parametrize("case", CASES)
def test_the_corpus_reads_the_same_with_either_yaml_parser(case, tmp_path, monkeypatch):
    """libyaml's parser (used when PyYAML has it) and PyYAML's own give the same located problems (issue 26)."""
    root = tmp_path / "a" / "b" / "root"
    shutil.copytree(CORPUS / case, root, symlinks=True)
    pure = problems_read_with("pure", root, monkeypatch)
    assert pure and all(LOCATED.match(problem) for problem in pure), pure
    assert problems_read_with("libyaml", root, monkeypatch) == pure


def make_root(tmp_path: Path) -> tuple[Path, Path]:
    sandbox = tmp_path / "sandbox"
    root = sandbox / "root"
    root.mkdir(parents=True)
    (root / "reconciler.yaml").write_text(ROOT_CONFIG)
    (root / "seed.yaml").write_text(SEED)
    return root, sandbox


def test_a_file_over_the_size_limit(tmp_path):
    root, sandbox = make_root(tmp_path)
    (root / "big.yaml").write_text("version: 1\nimages: {}\n" + "# padding\n" * 300_000)
    assert_refused_cleanly(root, sandbox)


def test_ten_thousand_manifests(tmp_path):
    root, sandbox = make_root(tmp_path)
    for i in range(10_000):
        folder = root / f"team-{i % 50:02d}"
        folder.mkdir(exist_ok=True)
        (folder / f"image-{i:05d}.yaml").write_text(
            f"version: 1\nimages:\n  image-{i:05d}:\n    source: {{instance: web}}\n    colour: red\n"
        )
    assert_refused_cleanly(root, sandbox, max_seconds=90)


# -- links a root cannot follow: the same located error for validate, plan and apply ---------------

OWN_IMAGE = "00000000-0000-4000-8000-000000000011"
SEED_WITH_IMAGE = SEED + (
    f"images:\n  - {{id: {OWN_IMAGE}, project: 3f0c9d2e6b7a4f0e9a1b2c3d4e5f6a7b, region: KR1, name: web,\n"
    "     properties: {os_type: linux, reconciler_set: hostile, reconciler_key: web,\n"
    f"                  reconciler_source: 'image:{OWN_IMAGE}'}}}}\n"
)
LINKS = {
    # where the link is: (what it points to, relative to the link's folder, the message)
    "team": ("../outside/team", "a symbolic link to a folder that leaves the root: not read"),
    "images/a/b/team": ("../../../../outside/team", "a symbolic link to a folder that leaves the root: not read"),
    "images/team": ("../team-gone", "a broken symbolic link (what it points to does not exist): not read"),
    "images/team.yaml": ("team-gone.yaml", "a broken symbolic link (what it points to does not exist): not read"),
    "images/loop": ("loop", "a symbolic link loop: not read"),
}


def root_whose_manifest_moved_out(tmp_path: Path, link: str) -> tuple[Path, Path]:
    """A root whose one manifest declares the set's one live image; planned once (the simulator state now
    holds the image), then its folder is replaced by `link`."""
    root, sandbox = make_root(tmp_path)
    (root / "seed.yaml").write_text(SEED_WITH_IMAGE)
    team = root / "team"
    team.mkdir()
    (team / "web.yaml").write_text(f"version: 1\nimages:\n  web:\n    source: {{image: {OWN_IMAGE}}}\n")
    result, _ = run("plan", str(root), "--detailed-exitcode", cwd=sandbox)
    assert result.returncode == 0, result.stdout + result.stderr
    (sandbox / "outside").mkdir()
    shutil.move(team, sandbox / "outside" / "team")
    where = root / link
    where.parent.mkdir(parents=True, exist_ok=True)
    where.symlink_to(LINKS[link][0])
    return root, sandbox


@pytest.mark.parametrize("command", ["validate", "plan", "apply"])
@pytest.mark.parametrize("link", sorted(LINKS))
def test_a_link_the_root_cannot_follow_is_a_located_error_not_a_deletion(tmp_path, link, command):
    root, sandbox = root_whose_manifest_moved_out(tmp_path, link)
    state = root / ".reconciler" / "sim-state.json"
    before = state.read_bytes()
    args = (command, str(root)) + (("--auto-approve",) if command == "apply" else ())
    result, _ = run(*args, cwd=sandbox)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert f"{link}:1:1: {LINKS[link][1]}\n" in result.stderr
    assert "Traceback" not in result.stderr and "delete" not in result.stdout
    assert state.read_bytes() == before  # nothing read from or changed in the cloud
