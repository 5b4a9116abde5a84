"""The package name and every install line: the distribution is published as nhncloud-image-reconciler (the
name `reconciler` on the public index belongs to an unrelated project), while the command and the import
package stay `reconciler`. No recipe, action or documentation snippet installs a bare name, or a
name==version without a hash: only a git URL pinned to a 40-hex commit, hash-checked requirements, or a
local checkout. The recipes' placeholder makes a job fail at once."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CI = REPO / "examples" / "gitops" / "ci"
DISTRIBUTION = "nhncloud-image-reconciler"

INSTALL = re.compile(r"(?:\bpip3?|python\S*\s+-m\s+pip|\buv\s+pip|\bpipx)\s+install\b(?P<rest>.*)")
SEPARATORS = {"&&", "||", ";", "|", "\\"}
WITH_VALUE = {"-r", "--requirement", "-c", "--constraint", "-e", "--editable", "--target", "-t", "--index-url", "-i"}
PINNED_GIT = re.compile(r"^(?:[A-Za-z0-9._-]+ @ )?git\+https://[^\s@]+@[0-9a-f]{40}$")
LOCAL = re.compile(r"^(?:\.|\./|/|\$|\.\[)")


def install_sources() -> list[Path]:
    """The recipes and the action, and the documentation's snippets (README.md, docs/, examples/)."""
    examples = [p for p in (REPO / "examples").rglob("*") if p.is_file() and ".reconciler" not in p.parts]
    return [REPO / "action.yml", REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), *sorted(examples)]


def install_lines() -> list[tuple[str, str]]:
    found = []
    for path in install_sources():
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if INSTALL.search(line):
                found.append((f"{path.relative_to(REPO)}:{number}", line))
    return found


def unpinned(line: str) -> list[str]:
    """What this install line takes from an index without a pin: a bare name, or name==version with no
    --hash (and no --require-hashes)."""
    rest = INSTALL.search(line)["rest"]
    try:
        words = shlex.split(rest, comments=True)
    except ValueError:
        words = rest.split()
    args: list[str] = []
    for word in words:
        if word in SEPARATORS or word.endswith(";"):
            break
        args.append(word)
    hashed = "--require-hashes" in args or any(a.startswith("--hash=") for a in args)
    bad, skip = [], False
    for arg in args:
        if skip:
            skip = False
            continue
        if arg in WITH_VALUE:
            skip = True
            continue
        if arg.startswith("-"):
            continue
        if LOCAL.match(arg) or PINNED_GIT.match(arg) or (hashed and "://" not in arg):
            continue
        bad.append(arg)
    return bad


def test_the_checker_tells_pinned_from_unpinned():
    assert unpinned("python -m pip install reconciler") == ["reconciler"]
    assert unpinned("pip install --quiet reconciler==0.1.0 && reconciler plan .") == ["reconciler==0.1.0"]
    assert unpinned("pip install git+https://example.com/o/reconciler@main") == [
        "git+https://example.com/o/reconciler@main"
    ]
    assert unpinned("pip install reconciler==0.1.0 --hash=sha256:" + "0" * 64) == []
    assert unpinned("pip install --require-hashes -r requirements.txt") == []
    assert unpinned(f"pip install 'nhncloud-image-reconciler @ git+https://example.com/o/r.git@{'a' * 40}'") == []
    assert unpinned("python -m pip install -e '.[test]' && python -m pytest -q") == []
    assert unpinned('"$python" -m pip install --no-input "${source[@]}"') == []


def test_no_recipe_action_or_snippet_installs_an_unpinned_name():
    lines = install_lines()
    assert any("action.yml" in where for where, _ in lines) or any("install.sh" in where for where, _ in lines)
    offending = [(where, line.strip()) for where, line in lines if unpinned(line)]
    assert offending == [], offending


def test_the_readme_quick_start_installs_the_checkout():
    readme = (REPO / "README.md").read_text()
    assert "python -m pip install -e . && reconciler plan examples/quickstart\n" in readme
    assert "python -m pip install -e '.[test]' && python -m pytest -q\n" in readme


def test_the_distribution_has_a_name_of_its_own_and_keeps_the_command_and_the_package():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["name"] == DISTRIBUTION
    assert project["scripts"] == {"reconciler": "reconciler.cli:entry"}
    for recipe in (REPO / "examples" / "gitops").rglob("*.yml"):
        if "RECONCILER_PACKAGE" in recipe.read_text():
            assert f"FILL-IN: {DISTRIBUTION} @ git+https://" in recipe.read_text(), recipe


# -- install.sh -----------------------------------------------------------------------------------------


def install(tmp_path: Path, spec: str, **env: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """install.sh with a fake Python that records what pip was asked to install."""
    log = tmp_path / "python-calls"
    fake = tmp_path / "python"
    fake.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {log}\n')
    fake.chmod(0o755)
    result = subprocess.run(
        [str(CI / "install.sh")],
        env={"PATH": "/usr/bin:/bin", "RECONCILER_PACKAGE": spec, "RECONCILER_PYTHON": str(fake), **env},
        capture_output=True,
        text=True,
        timeout=30,
    )
    return result, log.read_text().splitlines() if log.exists() else []


def recipe_placeholders() -> list[str]:
    found = []
    for recipe in [*(REPO / "examples" / "gitops").rglob("*.yml"), REPO / "examples" / "gitops" / ".gitlab-ci.yml"]:
        found += re.findall(r'RECONCILER_PACKAGE: "([^"]+)"', recipe.read_text())
    return found


@pytest.mark.parametrize("spec", sorted(set(recipe_placeholders())))
def test_a_job_cannot_run_with_the_recipes_placeholder(tmp_path, spec):
    result, calls = install(tmp_path, spec)
    assert result.returncode == 1 and "is still the placeholder" in result.stderr
    assert calls == []


@pytest.mark.parametrize(
    "spec",
    [
        "",
        "reconciler",
        "reconciler==0.1.0",
        "nhncloud-image-reconciler==0.1.0",
        "git+https://example.com/o/reconciler@main",
        f"git+http://example.com/o/reconciler@{'a' * 40}",
        f"git+https://example.com/o/reconciler@{'a' * 40} reconciler",
        "-r requirements.txt",
    ],
)
def test_install_refuses_anything_unpinned(tmp_path, spec):
    result, calls = install(tmp_path, spec)
    assert result.returncode == 1 and "RECONCILER_PACKAGE" in result.stderr
    assert calls == []


@pytest.mark.parametrize(
    ("spec", "pip_args"),
    [
        (f"{DISTRIBUTION} @ git+https://example.com/o/reconciler.git@{'a' * 40}", None),
        (f"git+https://example.com/o/reconciler@{'0' * 40}", None),
        ("--require-hashes -r ci/reconciler.txt", "--require-hashes -r ci/reconciler.txt"),
    ],
)
def test_install_takes_a_pinned_commit_or_hashed_requirements(tmp_path, spec, pip_args):
    result, calls = install(tmp_path, spec)
    assert result.returncode == 0, result.stderr
    assert calls == [f"-m pip install --disable-pip-version-check --no-input {pip_args or spec}"]


def test_the_saved_plan_finds_the_renamed_distribution_and_its_commit(tmp_path):
    """An install from a git URL records its commit (direct_url.json); saved plans compare it
    (reconciler/saved_plan.py finds the distribution through packages_distributions(), whatever its name)."""
    pytest.importorskip("hatchling", reason="hatchling is part of the test extra")
    source = tmp_path / "source"
    subprocess.run(["git", "init", "-q", str(source)], check=True)
    for name in ("pyproject.toml", "README.md"):
        (source / name).write_bytes((REPO / name).read_bytes())
    subprocess.run(["cp", "-r", str(REPO / "reconciler"), str(REPO / "schemas"), str(source)], check=True)
    git = ["git", "-C", str(source), "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "add", "pyproject.toml", "README.md", "reconciler", "schemas"], check=True)
    subprocess.run([*git, "commit", "-qm", "snapshot"], check=True)
    commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--target",
         str(target), f"git+file://{source}@{commit}"],
        check=True, capture_output=True,
    )  # fmt: skip
    probe = (
        "from importlib import metadata; from reconciler.saved_plan import tool_identity; "
        "print(metadata.packages_distributions()['reconciler'][0]); print(tool_identity()['commit'])"
    )
    found = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env={"PYTHONPATH": str(target)}, capture_output=True, text=True
    )
    assert found.returncode == 0, found.stderr
    assert found.stdout.split() == [DISTRIBUTION, commit]
