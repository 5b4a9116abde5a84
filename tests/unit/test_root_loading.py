"""Loading a root reports the real problem only: a broken reconciler.yaml does not cascade into the seed
being read as a manifest, a nested root is refused by name, and a duplicate key cites its second
occurrence (issue 17)."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from reconciler.validate import InvalidRootError, load_desired_state

SEED = """\
regions: [KR1]
projects:
  - id: 3f0c9d2e6b7a4f0e9a1b2c3d4e5f6a7b
    users: [{username: a, api_password: b}]
"""
CONFIG = "version: 1\nset: web\ncloud: {kind: simulator, seed: seed.yaml}\ndefaults: {region: KR1}\n"
MANIFEST = "version: 1\nimages:\n  web:\n    source: {instance: web-golden-01}\n"


def problems_of(root: Path, files: dict[str, str]) -> list[str]:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(content))
    with pytest.raises(InvalidRootError) as caught:
        load_desired_state(root)
    return [str(p) for p in caught.value.problems]


BROKEN_CONFIGS = [
    (CONFIG + "colour: red\n", "reconciler.yaml:5:1: colour: unknown key"),
    (CONFIG.replace("set: web", "set: 5"), "reconciler.yaml:2:6: set: expected a string"),
    (CONFIG + "settings: {max_deletions: many}\n", "reconciler.yaml:5:27: settings.max_deletions: expected an integer"),
    (CONFIG + "set: other\n", "reconciler.yaml:5:1: duplicate key 'set' (first defined at line 2)"),
    (CONFIG.replace("version: 1", "version: 2"), "reconciler.yaml:1:10: version:"),
    ("version: 1\nset: web\ncloud: [\n", "reconciler.yaml:4:1: YAML syntax error"),
    ("version: 1\nset: web\ncloud: simulator\n", "reconciler.yaml:3:8: cloud: expected a mapping"),
    ("version: 1\nset: web\n", "reconciler.yaml:1:1: document: 'cloud' is required"),
]


@pytest.mark.parametrize(("config", "problem"), BROKEN_CONFIGS)
def test_a_broken_root_config_is_the_only_problem_reported(tmp_path, config, problem):
    """The seed is never read as a manifest: while reconciler.yaml has a problem, no manifest is read."""
    problems = problems_of(tmp_path, {"reconciler.yaml": config, "seed.yaml": SEED, "images/web.yaml": MANIFEST})
    assert len(problems) == 1 and problems[0].startswith(problem), problems


def test_a_broken_root_config_is_reported_alone_with_a_hint(tmp_path):
    """Until reconciler.yaml is valid, which files are the seed and the state is not known: the manifests
    are not checked at all (a real manifest problem waits for the next run), and the hint says so."""
    for name, content in {
        "reconciler.yaml": CONFIG + "colour: red\n",
        "seed.yaml": SEED,
        "images/web.yaml": MANIFEST + "    colour: red\n",
    }.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(content)
    with pytest.raises(InvalidRootError) as caught:
        load_desired_state(tmp_path)
    assert [str(p).split(": ")[0] for p in caught.value.problems] == ["reconciler.yaml:5:1"]
    assert caught.value.hint == "the manifests are checked once reconciler.yaml is valid"


def test_a_nested_root_is_refused_by_name(tmp_path):
    problems = problems_of(
        tmp_path,
        {
            "reconciler.yaml": CONFIG,
            "seed.yaml": SEED,
            "images/web.yaml": MANIFEST,
            "partner/reconciler.yaml": CONFIG.replace("set: web", "set: partner"),
            "partner/seed.yaml": SEED,
            "partner/images.yaml": MANIFEST,
        },
    )
    assert len(problems) == 1, problems
    assert problems[0].startswith("partner/reconciler.yaml:1:1: a nested root: the folder partner/ has its own ")
    assert "Hint: move partner/ out of this root" in problems[0]


def test_a_nested_root_deeper_down_is_refused_too(tmp_path):
    problems = problems_of(
        tmp_path,
        {"reconciler.yaml": CONFIG, "seed.yaml": SEED, "teams/a/reconciler.yaml": CONFIG, "teams/b.yaml": MANIFEST},
    )
    assert [p.split(": ")[0] for p in problems] == ["teams/a/reconciler.yaml:1:1"], problems


def test_a_duplicate_image_key_cites_the_second_occurrence_and_the_first(tmp_path):
    manifest = MANIFEST + "    name: web-a\n    description: d\n    name: web-b\n"
    problems = problems_of(tmp_path, {"reconciler.yaml": CONFIG, "seed.yaml": SEED, "web.yaml": manifest})
    assert problems == ["web.yaml:7:5: duplicate key 'name' (first defined at line 5)"]


def test_a_duplicate_block_key_mentions_the_line_of_the_first_key_not_of_its_value(tmp_path):
    manifest = MANIFEST + "images:\n  other:\n    source: {instance: x}\n"
    problems = problems_of(tmp_path, {"reconciler.yaml": CONFIG, "seed.yaml": SEED, "web.yaml": manifest})
    assert problems == ["web.yaml:5:1: duplicate key 'images' (first defined at line 2)"]


QUICKSTART = Path(__file__).resolve().parents[2] / "examples" / "quickstart"
QUICKSTART_CLOUD = "cloud:\n  kind: simulator\n  seed: seed.yaml\n"


@pytest.mark.parametrize(
    ("cloud", "problem"),
    [
        (
            "cloud:\n  kind: simulator\n  seed: seeds.yaml\n",
            "reconciler.yaml:8:9: cloud.seed: seeds.yaml does not exist",
        ),
        (
            'cloud:\n  kind: simulator\n  seed: "seed\\u200b.yaml"\n',
            "reconciler.yaml:8:9: cloud.seed: the value contains \\u200b (invisible format)",
        ),
        (
            "cloud:\n  kind: simulator\n  seed: reconciler.yaml\n",
            "reconciler.yaml:8:9: cloud.seed: 'reconciler.yaml' is a root config, not a seed file; give the seed's",
        ),
        ("cloud: {}\ncolour: red\n", "reconciler.yaml:6:8: cloud: 'kind' is required"),
    ],
)
def test_a_quickstart_config_problem_is_reported_alone_never_as_seed_problems(tmp_path, cloud, problem):
    """The review's cases: each gave the real problem plus ~6 "seed.yaml: ... unknown key" ones, the real
    seed read as a manifest."""
    root = tmp_path / "root"
    shutil.copytree(QUICKSTART, root)
    config = root / "reconciler.yaml"
    config.write_text(config.read_text().replace(QUICKSTART_CLOUD, cloud))
    with pytest.raises(InvalidRootError) as caught:
        load_desired_state(root)
    problems = [str(p) for p in caught.value.problems]
    assert problems[0].startswith(problem), problems
    assert all(p.startswith("reconciler.yaml:") for p in problems), problems
    assert caught.value.hint == "the manifests are checked once reconciler.yaml is valid"


def test_a_seed_typo_is_an_error_even_once_the_state_exists(tmp_path):
    """After the first run the state holds everything and the seed is not read again, but a name that points
    at nothing is still a typo: the file meant would otherwise be read as a broken manifest."""
    root = tmp_path / "root"
    shutil.copytree(QUICKSTART, root, ignore=shutil.ignore_patterns(".reconciler"))
    load_desired_state(root)  # valid as it is
    (root / ".reconciler").mkdir()
    (root / ".reconciler" / "sim-state.json").write_text("{}")
    config = root / "reconciler.yaml"
    config.write_text(config.read_text().replace("seed: seed.yaml", "seed: seeds.yaml"))
    with pytest.raises(InvalidRootError) as caught:
        load_desired_state(root)
    assert [str(p) for p in caught.value.problems] == ["reconciler.yaml:8:9: cloud.seed: seeds.yaml does not exist"]
