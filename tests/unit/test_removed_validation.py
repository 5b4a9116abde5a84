"""`removed:` entries in manifests (docs/manifest.md, "Stopping management without deleting"): each rule
reports a located message at the entry, through the library and through `reconciler validate`; valid
entries become Removal records in the model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from roots_on_disk import problems_loading, write_root

from reconciler.desired import Removal
from reconciler.validate import load_desired_state

ROOT_CONFIG = """\
version: 1
set: web-platform
cloud: {kind: nhn, project: 3f0c9d2e6b7a4f0e9a1b2c3d4e5f6a7b}
defaults: {region: KR1}
"""
WEB = "version: 1\nimages:\n  web:\n    source: {instance: x}\n"


def make_root(tmp_path: Path, files: dict[str, str]) -> Path:
    return write_root(tmp_path, ROOT_CONFIG, files)


def problems_of(tmp_path: Path, files: dict[str, str]) -> list[str]:
    return problems_loading(make_root(tmp_path, files))


def removed(*entries: str) -> str:
    """A manifest holding only `removed:`, one entry per argument (YAML flow mappings)."""
    return "version: 1\nremoved:\n" + "".join(f"  - {entry}\n" for entry in entries)


RULES = [
    (
        "a removed key also declared in another file names both places",
        {"a.yaml": WEB, "b.yaml": "version: 1\nremoved:\n  - key: web\n    destroy: false\n"},
        [
            "b.yaml:3:10: removed[0].key: web is also declared under images: (at a.yaml:3:3); a key is either "
            "managed or removed: delete one of the two"
        ],
    ),
    (
        "a removed key also declared in the same file",
        {"a.yaml": WEB + "removed:\n  - {key: web, destroy: true}\n"},
        [
            "a.yaml:6:11: removed[0].key: web is also declared under images: (at a.yaml:3:3); a key is either "
            "managed or removed: delete one of the two"
        ],
    ),
    (
        "a key removed twice in one file, the second saying the opposite",
        {"a.yaml": "version: 1\nremoved:\n  - key: old\n    destroy: false\n  - key: old\n    destroy: true\n"},
        ["a.yaml:5:10: removed[1].key: old is already removed at a.yaml:3:10: list it once"],
    ),
    (
        "a key removed in two files, reported at the second in file order",
        {"a.yaml": removed("{key: old, destroy: false}"), "b/c.yaml": removed("{key: old, destroy: false}")},
        ["b/c.yaml:3:11: removed[0].key: old is already removed at a.yaml:3:11: list it once"],
    ),
    (
        "a removed key that a moved_from re-keys",
        {
            "a.yaml": "version: 1\nimages:\n  new:\n    source: {instance: x}\n    moved_from: old\n",
            "b.yaml": removed("{key: old, destroy: false}"),
        },
        [
            "b.yaml:3:11: removed[0].key: old is re-keyed to new by moved_from (at a.yaml:5:17): its images become "
            "new's, so it cannot also be removed"
        ],
    ),
    (
        "a manifest with neither images: nor removed:",
        {"a.yaml": "version: 1\n"},
        ["a.yaml:1:1: document: give images:, families:, removed:, accept: or reject: (or several)"],
    ),
    (
        "a misspelt removed: is neither, and the unknown key says which was meant",
        {"a.yaml": "version: 1\nremove:\n  - {key: old, destroy: false}\n"},
        [
            "a.yaml:1:1: document: give images:, families:, removed:, accept: or reject: (or several)",
            "a.yaml:2:1: remove: unknown key (did you mean 'removed'?)",
        ],
    ),
    (
        "an entry without destroy: the choice must be written down",
        {"a.yaml": "version: 1\nremoved:\n  - key: old\n"},
        ["a.yaml:3:5: removed[0]: 'destroy' is required"],
    ),
    (
        "destroy that is not a boolean",
        {"a.yaml": "version: 1\nremoved:\n  - key: old\n    destroy: 'no'\n"},
        ["a.yaml:4:14: removed[0].destroy: expected true or false, got a string"],
    ),
    (
        "an entry with an unknown field",
        {"a.yaml": "version: 1\nremoved:\n  - key: old\n    destroy: false\n    destory: true\n"},
        ["a.yaml:5:5: removed[0].destory: unknown key (did you mean 'destroy'?)"],
    ),
    (
        "a key that breaks the key pattern",
        {"a.yaml": "version: 1\nremoved:\n  - key: Old Web!\n    destroy: false\n"},
        [
            "a.yaml:3:10: removed[0].key: 'Old Web!' is not a key: letters, digits, '.', '_' or '-', starting with "
            "a letter or digit, at most 128 characters"
        ],
    ),
    (
        "removed: as a mapping of keys",
        {"a.yaml": "version: 1\nremoved:\n  old: {destroy: false}\n"},
        ["a.yaml:3:3: removed: expected a list, got a mapping"],
    ),
    (
        "removed: as one key",
        {"a.yaml": "version: 1\nremoved: old\n"},
        ["a.yaml:2:10: removed: expected a list, got a string"],
    ),
    (
        "an entry that is a bare key",
        {"a.yaml": "version: 1\nremoved:\n  - old\n"},
        ["a.yaml:3:5: removed[0]: expected a mapping, got a string"],
    ),
]


@pytest.mark.parametrize(("rule", "files", "expected"), RULES, ids=[r[0] for r in RULES])
def test_each_removed_rule_reports_its_located_message(tmp_path, rule, files, expected):
    assert problems_of(tmp_path, files) == expected


def test_valid_entries_become_removals_sorted_by_key_located_at_the_entry(tmp_path):
    root = make_root(
        tmp_path,
        {
            "a.yaml": WEB,
            "b.yaml": removed("{key: zeta, destroy: true}", "{key: alpha, destroy: false}"),
            "c/d.yaml": WEB.replace("web:", "api:") + "removed:\n  - key: mid\n    destroy: false\n",
        },
    )
    desired = load_desired_state(root)
    assert [spec.key for spec in desired.images] == ["api", "web"]
    assert [(r.key, r.destroy, r.file) for r in desired.removed] == [
        ("alpha", False, "b.yaml"),
        ("mid", False, "c/d.yaml"),
        ("zeta", True, "b.yaml"),
    ]
    assert all(isinstance(r, Removal) for r in desired.removed)
    locations = {r.key: (r.location.file, r.location.line, r.location.column) for r in desired.removed}
    assert locations == {"alpha": ("b.yaml", 4, 5), "mid": ("c/d.yaml", 6, 5), "zeta": ("b.yaml", 3, 5)}


def test_a_root_of_only_removed_entries_is_valid_and_declares_no_image(tmp_path):
    desired = load_desired_state(make_root(tmp_path, {"a.yaml": removed("{key: old, destroy: false}")}))
    assert desired.images == ()
    assert [(r.key, r.destroy) for r in desired.removed] == [("old", False)]


def test_removed_problems_are_collected_with_the_others_in_file_order(tmp_path):
    files = {
        "a.yaml": WEB + "    protectd: true\n",
        "b.yaml": removed("{key: web, destroy: false}", "{key: gone}"),
    }
    assert problems_of(tmp_path, files) == [
        "a.yaml:5:5: images.web.protectd: unknown key (did you mean 'protected'?)",
        "b.yaml:3:11: removed[0].key: web is also declared under images: (at a.yaml:3:3); a key is either managed "
        "or removed: delete one of the two",
        "b.yaml:4:5: removed[1]: 'destroy' is required",
    ]


def run_validate(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reconciler", "validate", str(root)], capture_output=True, text=True, check=False
    )


def test_validate_exits_1_on_a_key_both_declared_and_removed(tmp_path):
    root = make_root(tmp_path, {"images/web.yaml": WEB, "images/retired.yaml": removed("{key: web, destroy: false}")})
    result = run_validate(root)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "images/retired.yaml:3:11: removed[0].key: web is also declared under images: (at images/web.yaml:3:3); a "
        "key is either managed or removed: delete one of the two",
        "error: 1 problem found; nothing was read from or changed in the cloud",
    ]


def test_validate_exits_1_on_a_manifest_with_neither_images_nor_removed(tmp_path):
    result = run_validate(make_root(tmp_path, {"images/web.yaml": WEB, "images/empty.yaml": "version: 1\n"}))
    assert result.returncode == 1
    assert (
        result.stderr.splitlines()[0]
        == "images/empty.yaml:1:1: document: give images:, families:, removed:, accept: or reject: (or several)"
    )


def test_validate_accepts_removed_entries_next_to_images(tmp_path):
    root = make_root(tmp_path, {"images/web.yaml": WEB, "images/retired.yaml": removed("{key: old, destroy: false}")})
    result = run_validate(root)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1] == "OK: 1 image, 1 removed key in 2 files"
