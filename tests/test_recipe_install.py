"""The package name and every install line: the distribution is published as nhncloud-image-reconciler (the
name `reconciler` on the public index belongs to an unrelated project), while the command and the import
package stay `reconciler`. No recipe, action or documentation snippet installs a bare name, a name==version
without a hash, or a git URL (it pins reconciler's code, not one of its dependencies, and pip can hash-check
neither a version-control URL nor, reliably, a constraints file): only hash-checked requirements or a local
checkout. The recipes install `--require-hashes -r reconciler-requirements.txt` into a virtual environment
of their own (install.sh), and the template they ship makes a job fail at once."""

from __future__ import annotations

import hashlib
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
GITOPS = REPO / "examples" / "gitops"
CI = GITOPS / "ci"
DISTRIBUTION = "nhncloud-image-reconciler"
HASHED = "--require-hashes -r reconciler-requirements.txt"

INSTALL = re.compile(r"(?:\bpip3?|python\S*\s+-m\s+pip|\buv\s+pip|\bpipx)\s+install\b(?P<rest>.*)")
SEPARATORS = {"&&", "||", ";", "|", "\\"}
WITH_VALUE = {
    *("-r", "--requirement", "-c", "--constraint", "-e", "--editable", "--target", "-t", "--index-url", "-i"),
    *("--only-binary", "--no-binary"),
}
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
    """What this install line takes without a hash: a bare name, name==version with no --hash (and no
    --require-hashes), or any URL (a git URL pins the tool's code but none of its dependencies)."""
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
        if LOCAL.match(arg) or (hashed and "://" not in arg):
            continue
        bad.append(arg)
    return bad


def test_the_checker_tells_pinned_from_unpinned():
    assert unpinned("python -m pip install reconciler") == ["reconciler"]
    assert unpinned("pip install --quiet reconciler==0.1.0 && reconciler plan .") == ["reconciler==0.1.0"]
    assert unpinned("pip install git+https://example.com/o/reconciler@main") == [
        "git+https://example.com/o/reconciler@main"
    ]
    pinned_code_only = f"nhncloud-image-reconciler @ git+https://example.com/o/r.git@{'a' * 40}"
    assert unpinned(f"pip install '{pinned_code_only}'") == [pinned_code_only]
    assert unpinned(f"pip install --require-hashes '{pinned_code_only}'") == [pinned_code_only]
    assert unpinned("pip install reconciler==0.1.0 --hash=sha256:" + "0" * 64) == []
    assert unpinned("pip install --require-hashes -r requirements.txt") == []
    assert unpinned("python -m pip install -e '.[test]' && python -m pytest -q") == []
    assert unpinned('"$python" -m pip install --no-input "${source[@]}"') == []
    assert unpinned('"$venv/bin/python" -m pip install --only-binary :all: --require-hashes -r "$file"') == []


def test_no_recipe_action_or_snippet_installs_an_unpinned_name():
    lines = install_lines()
    assert any("install.sh" in where for where, _ in lines)
    offending = [(where, line.strip()) for where, line in lines if unpinned(line)]
    assert offending == [], offending


def test_the_readme_quick_start_installs_the_checkout():
    readme = (REPO / "README.md").read_text()
    assert "python -m pip install -e . && reconciler plan examples/quickstart\n" in readme
    assert "python -m pip install -e '.[test]' && python -m pytest -q\n" in readme


def recipe_packages() -> dict[str, str]:
    """Each recipe's RECONCILER_PACKAGE, and what each use of the action installs."""
    found = {}
    for recipe in [*(GITOPS / ".github" / "workflows").glob("*.yml"), GITOPS / ".gitlab-ci.yml"]:
        doc = yaml.safe_load(recipe.read_text())
        found[recipe.name] = (doc.get("env") or doc.get("variables"))["RECONCILER_PACKAGE"]
        for job in (doc.get("jobs") or {}).values():
            for step in job.get("steps", []):
                if "package" in step.get("with", {}):
                    assert step["with"]["package"] == "${{ env.RECONCILER_PACKAGE }}", recipe.name
    return found


def test_the_distribution_has_a_name_of_its_own_and_keeps_the_command_and_the_package():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["name"] == DISTRIBUTION
    assert project["scripts"] == {"reconciler": "reconciler.cli:entry"}


def test_every_recipe_installs_hash_checked_requirements_by_default():
    """Not a git URL: it would pin reconciler's code and take its fifteen dependencies unpinned."""
    packages = recipe_packages()
    assert set(packages) == {"reconciler-plan.yml", "reconciler-apply.yml", "reconciler-drift.yml", ".gitlab-ci.yml"}
    assert set(packages.values()) == {HASHED}
    template = (GITOPS / "reconciler-requirements.txt").read_text()
    assert template.startswith("# FILL-IN") and "--generate-hashes" in template and "pip hash" in template


# -- install.sh -----------------------------------------------------------------------------------------


FAKE_PYTHON = """#!/bin/sh
# Records each call; runs the recipe's own Python helpers for real; `-m venv DIR` makes a fake DIR.
printf '%s: %s\\n' "$0" "$*" >> {log}
case "$1" in
  *.py) exec {python} "$@" ;;
  -c) exit ${{FAKE_PYTHON_TOO_OLD:-0}} ;;
esac
if [ "$1 $2" = "-m venv" ]; then
  for dir; do :; done
  mkdir -p "$dir/bin" && cp "$0" "$dir/bin/python" && touch "$dir/pyvenv.cfg"
fi
"""


def install(tmp_path: Path, spec: str, *, cwd: Path | None = None, **env: str):
    """install.sh with a fake Python that records what it was asked to do; the calls, one string each."""
    log = tmp_path / "python-calls"
    fake = tmp_path / "python"
    fake.write_text(FAKE_PYTHON.format(log=log, python=sys.executable))
    fake.chmod(0o755)
    result = subprocess.run(
        [str(CI / "install.sh")],
        cwd=cwd or tmp_path,
        env={
            "PATH": "/usr/bin:/bin",
            "RECONCILER_PACKAGE": spec,
            "RECONCILER_PYTHON": str(fake),
            "RECONCILER_VENV": str(tmp_path / "venv"),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=30,
    )
    calls = log.read_text().splitlines() if log.exists() else []
    return result, [c for c in calls if "hashed_requirements.py" not in c]


def sha(text: str) -> str:
    return "--hash=sha256:" + hashlib.sha256(text.encode()).hexdigest()


def requirements(tmp_path: Path, text: str) -> str:
    (tmp_path / "reconciler-requirements.txt").write_text(text)
    return HASHED


GOOD = (
    "# generated by pip-compile, then the wheel added\n"
    f"./ci/wheels/nhncloud_image_reconciler-0.1.0-py3-none-any.whl {sha('wheel')}\n"
    f"pyyaml==6.0.2 \\\n    {sha('a')} \\\n    {sha('b')}\n"
    "    # via nhncloud-image-reconciler\n"
    f"requests==2.32.3 {sha('c')}  # via nhncloud-image-reconciler\n"
)


def test_a_job_cannot_run_with_the_recipes_template(tmp_path):
    """The recipes name reconciler-requirements.txt, which they ship as a template to fill in."""
    result, calls = install(tmp_path, HASHED, cwd=GITOPS)
    assert result.returncode == 1 and "still the template (FILL-IN)" in result.stderr
    assert "reconciler-requirements.txt:1" in result.stderr and calls == []


@pytest.mark.parametrize(
    "spec",
    [
        "",
        "FILL-IN: something",
        "reconciler",
        "reconciler==0.1.0",
        "nhncloud-image-reconciler==0.1.0",
        "git+https://example.com/o/reconciler@main",
        f"{DISTRIBUTION} @ git+https://example.com/o/reconciler.git@{'a' * 40}",
        f"git+https://example.com/o/reconciler@{'0' * 40}",
        "-r requirements.txt",
        "--require-hashes -r missing.txt",
    ],
)
def test_install_refuses_anything_not_hash_checked(tmp_path, spec):
    result, calls = install(tmp_path, spec)
    assert result.returncode == 1 and ("RECONCILER_PACKAGE" in result.stderr or "missing.txt" in result.stderr)
    assert calls == []


def test_a_git_url_is_refused_for_what_it_leaves_unpinned(tmp_path):
    result, _ = install(tmp_path, f"{DISTRIBUTION} @ git+https://example.com/o/reconciler.git@{'a' * 40}")
    assert "pins reconciler's code, not its dependencies" in result.stderr


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("# FILL-IN: generate me\n", "reconciler-requirements.txt:1: still the template (FILL-IN)"),
        (GOOD + "deepdiff==8.0.1\n", "reconciler-requirements.txt:8: no --hash=sha256"),
        (f"{DISTRIBUTION} @ git+https://example.com/o/r.git@{'a' * 40} {sha('x')}\n", "cannot be hash-checked"),
        (f"requests==2.32.3 {sha('c')}\n", "nhncloud-image-reconciler is not listed"),
    ],
)
def test_install_refuses_requirements_pip_would_not_hash_check_whole(tmp_path, text, problem):
    result, calls = install(tmp_path, requirements(tmp_path, text))
    assert result.returncode == 1 and problem in result.stderr, result.stderr
    assert calls == []


def test_install_takes_hashed_requirements_into_a_virtual_environment_of_its_own(tmp_path):
    """Never the runner's own Python (a GitLab shell executor shares it between jobs); wheels only, since
    building a source distribution fetches build tools no hash covers; once per job."""
    venv, runner_python = tmp_path / "venv", tmp_path / "python"
    result, calls = install(tmp_path, requirements(tmp_path, GOOD))
    assert result.returncode == 0, result.stderr
    pip = f"{venv}/bin/python: -m pip install --disable-pip-version-check --no-input --only-binary :all: {HASHED}"
    assert calls[1:] == [f"{runner_python}: -m venv --clear {venv}", pip]
    assert calls[0].startswith(f"{runner_python}: -c") and "sys.version_info < (3, 11)" in calls[0]

    again, calls_again = install(tmp_path, HASHED)
    assert again.returncode == 0 and calls_again == [*calls, calls[0]]  # the log goes on: only the check ran


def test_install_refuses_a_python_older_than_3_11(tmp_path):
    result, calls = install(tmp_path, requirements(tmp_path, GOOD), FAKE_PYTHON_TOO_OLD="1")
    assert result.returncode == 1 and "older than Python 3.11" in result.stderr
    assert not any("pip install" in c or "venv" in c for c in calls)


def test_install_needs_a_virtual_environment_and_never_reuses_another_folder(tmp_path):
    spec = requirements(tmp_path, GOOD)
    result, _ = install(tmp_path, spec, RECONCILER_VENV="")
    assert result.returncode == 1 and "RECONCILER_VENV is not set" in result.stderr
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "precious").write_text("keep")
    result, calls = install(tmp_path, spec, RECONCILER_VENV=str(tmp_path / "taken"))
    assert result.returncode == 1 and "is not a virtual environment" in result.stderr
    assert (tmp_path / "taken" / "precious").exists() and not any("venv" in c for c in calls)


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
