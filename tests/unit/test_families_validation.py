"""`families:` in manifests (docs/manifest.md, "Families"): each validation rule reports its located message,
and a valid family desugars into ordinary declared images (keys, names, protection per version, overrides
replacing whole fields, moved_from), as pure loads of a root in a temporary folder."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from roots_on_disk import problems_loading, write_root

from reconciler.desired import Family
from reconciler.location import Location
from reconciler.validate import load_desired_state

PROJECT = "3f0c9d2e6b7a4f0e9a1b2c3d4e5f6a7b"
PARTNER = "8989447062e04a818baf9e073fd04fa7"
UUID_A = "00000000-0000-4000-8000-00000000000a"
UUID_B = "00000000-0000-4000-8000-00000000000b"
ROOT_CONFIG = f"""\
version: 1
set: web-platform
cloud: {{kind: nhn, project: {PROJECT}}}
defaults: {{region: KR1}}
"""


def make_root(tmp_path: Path, files: dict[str, str]) -> Path:
    return write_root(tmp_path, ROOT_CONFIG, {name: textwrap.dedent(text) for name, text in files.items()})


def problems_of(tmp_path: Path, files: dict[str, str]) -> list[str]:
    return problems_loading(make_root(tmp_path, files))


def families(body: str) -> str:
    """A manifest holding only `families:`, `body` indented under it."""
    return "version: 1\nfamilies:\n" + textwrap.indent(textwrap.dedent(body), "  ")


WEB = families("""\
web-base:
  versions: ["2026-09", "2026-10", "2026-11", "2026-12"]
  keep: 3
  protect_newest: 2
  image:
    source: {instance: web-golden-01, running: stop}
    name: "web-base-{version}"
    description: "Golden {family} image, {version}"
    copies: [JP1]
    share: [8989447062e04a818baf9e073fd04fa7]
    properties: {login_username: ubuntu}
""")


# -- one test per rule ----------------------------------------------------------------------------

RULES = [
    (
        "an empty versions list",
        {"a.yaml": families("web: {versions: [], image: {source: {instance: x}}}\n")},
        ["a.yaml:3:19: families.web.versions: must not be empty"],
    ),
    (
        "a version listed twice",
        {"a.yaml": families("web: {versions: [a, b, a], image: {source: {instance: x}}}\n")},
        ["a.yaml:3:26: families.web.versions[2]: version a is listed twice (first as versions[0])"],
    ),
    (
        "a version that gives no valid key",
        {"a.yaml": families("web: {versions: ['2026 12'], image: {source: {instance: x}}}\n")},
        [
            "a.yaml:3:20: families.web.versions[0]: version '2026 12' gives the key 'web-2026 12', which is not a "
            "key: a version holds only letters, digits, '.', '_' or '-'"
        ],
    ),
    (
        "a version whose key is too long",
        {"a.yaml": families(f"web: {{versions: [{'v' * 125}], image: {{source: {{instance: x}}}}}}\n")},
        [
            "a.yaml:3:20: families.web.versions[0]: version 'vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv...' gives a key "
            "of 129 characters, at most 128 allowed (the family's name, '-' and the version)"
        ],
    ),
    (
        "an unknown placeholder, in the template and in a version's entry",
        {
            "a.yaml": families("""\
                web:
                  versions: [a, {version: b, description: "built {date}"}]
                  image: {source: {instance: x}, name: "web-{month}"}
                """)
        },
        [
            "a.yaml:4:45: families.web.versions[1].description: unknown placeholder '{date}': only {version} and "
            "{family} are replaced",
            "a.yaml:5:42: families.web.image.name: unknown placeholder '{month}': only {version} and {family} are "
            "replaced",
        ],
    ),
    (
        "protected in the template",
        {"a.yaml": families("web: {versions: [a], image: {source: {instance: x}, protected: true}}\n")},
        [
            "a.yaml:3:55: families.web.image.protected: not allowed here: the family protects its newest "
            "protect_newest versions (a version's own entry may say protected: true)"
        ],
    ),
    (
        "a per-copy protected: true in the template",
        {
            "a.yaml": families(
                "web: {versions: [a], image: {source: {instance: x}, copies: [{region: JP1, protected: true}]}}\n"
            )
        },
        [
            "a.yaml:3:89: families.web.image.copies[0].protected: a family's copy is never protected: true: the "
            "family owns protection (protect_newest, or a version's own protected: true, which covers its copies)"
        ],
    ),
    (
        "source.image in the template",
        {"a.yaml": families(f"web: {{versions: [a], image: {{source: {{image: {UUID_A}}}}}}}\n")},
        [
            "a.yaml:3:41: families.web.image.source.image: not allowed here: an image id is one version's image: "
            "adopt it in that version's entry, {version: ..., source: {image: ...}}"
        ],
    ),
    (
        "a copy's image in the template",
        {
            "a.yaml": families(
                f"web: {{versions: [a], image: {{source: {{instance: x}}, copies: [{{region: JP1, image: {UUID_A}}}]}}}}\n"
            )
        },
        [
            "a.yaml:3:78: families.web.image.copies[0].image: not allowed here: an image id is one version's copy: "
            "adopt it in that version's entry"
        ],
    ),
    (
        "moved_from in the template and in a version's entry",
        {
            "a.yaml": families(
                "web: {versions: [{version: a, moved_from: x}], image: {source: {instance: x}, moved_from: y}}\n"
            )
        },
        [
            "a.yaml:3:33: families.web.versions[0].moved_from: not allowed here: the family's own moved_from "
            "re-keys every version",
            "a.yaml:3:81: families.web.image.moved_from: not allowed here: it names one image; the family's own "
            "moved_from re-keys every version",
        ],
    ),
    (
        "a version's entry protects with true only",
        {"a.yaml": families("web: {versions: [{version: a, protected: false}], image: {source: {instance: x}}}\n")},
        ["a.yaml:3:44: families.web.versions[0].protected: must be true, not false"],
    ),
    (
        "keep below 1",
        {"a.yaml": families("web: {versions: [a], keep: 0, image: {source: {instance: x}}}\n")},
        ["a.yaml:3:30: families.web.keep: 0 is less than the minimum of 1"],
    ),
    (
        "protect_newest below 0",
        {"a.yaml": families("web: {versions: [a], protect_newest: -1, image: {source: {instance: x}}}\n")},
        ["a.yaml:3:40: families.web.protect_newest: -1 is less than the minimum of 0"],
    ),
    (
        "protect_newest not below keep",
        {
            "a.yaml": families(
                "web: {versions: [a, b, c], keep: 2, protect_newest: 2, image: {source: {instance: x}}}\n"
            )
        },
        [
            "a.yaml:3:55: families.web.protect_newest: 2 is not less than keep (2): a version is unprotected one "
            "apply before it is retired, so at most 1 of the 2 kept versions can be protected"
        ],
    ),
    (
        "keep: 1 never protects its only version",
        {"a.yaml": families("web: {versions: [a], keep: 1, protect_newest: 1, image: {source: {instance: x}}}\n")},
        [
            "a.yaml:3:49: families.web.protect_newest: 1 is not less than keep (1): a version is unprotected one "
            "apply before it is retired, so at most 0 of the 1 kept versions can be protected (keep: 1 never "
            "protects its only version)"
        ],
    ),
    (
        "protect_newest over the number of versions when keep is not given",
        {"a.yaml": families("web: {versions: [a, b], protect_newest: 3, image: {source: {instance: x}}}\n")},
        [
            "a.yaml:3:43: families.web.protect_newest: 3 is more than the 2 listed versions (keep is not given: "
            "every version is kept)"
        ],
    ),
    (
        "a kept version without a source",
        {"a.yaml": families("web: {versions: [a, b], keep: 1, image: {name: web}}\n")},
        [
            "a.yaml:3:23: families.web.versions[1]: version b has no source: give source: in the family's image: "
            "(instance:, for the newest version) or in this version's entry (image:, to adopt one)"
        ],
    ),
    (
        "a version key that is also an image key, in another file: both places named",
        {
            "a.yaml": "version: 1\nimages:\n  web-b: {source: {instance: x}}\n",
            "b.yaml": families("web: {versions: [a, b], image: {source: {instance: x}}}\n"),
        },
        [
            "b.yaml:3:23: families.web.versions[1]: key web-b is already declared at a.yaml:3:3 (under images:); "
            "keys are unique across images: and the versions of every family"
        ],
    ),
    (
        "an image key that a family's version already declares",
        {
            "a.yaml": families("web: {versions: [a, b], image: {source: {instance: x}}}\n"),
            "b.yaml": "version: 1\nimages:\n  web-a: {source: {instance: x}}\n",
        },
        [
            "b.yaml:3:3: images.web-a: key web-a is already declared at a.yaml:3:20 (version a of family web); keys "
            "are unique across images: and the versions of every family"
        ],
    ),
    (
        "two families giving one key",
        {
            "a.yaml": families("""\
            web: {versions: [base-1], image: {source: {instance: x}}}
            web-base: {versions: ['1'], image: {source: {instance: x}}}
            """)
        },
        [
            "a.yaml:4:25: families.web-base.versions[0]: key web-base-1 is already declared at a.yaml:3:20 (version "
            "base-1 of family web); keys are unique across images: and the versions of every family"
        ],
    ),
    (
        "a retired version's key counts too",
        {
            "a.yaml": families("web: {versions: [a, b], keep: 1, image: {source: {instance: x}}}\n"),
            "b.yaml": "version: 1\nimages:\n  web-a: {source: {instance: x}}\n",
        },
        [
            "b.yaml:3:3: images.web-a: key web-a is already declared at a.yaml:3:20 (version a of family web); keys "
            "are unique across images: and the versions of every family"
        ],
    ),
    (
        "a family's name equal to an image key",
        {
            "a.yaml": "version: 1\nimages:\n  web: {source: {instance: x}}\nfamilies:\n  web: {versions: [a], image: {source: {instance: x}}}\n"
        },
        [
            "a.yaml:5:3: families.web: web is also a key, declared at a.yaml:3:3 (under images:); a family's name is "
            "not a key (its versions' keys are web-<version>): rename one of them"
        ],
    ),
    (
        "a family's name equal to another family's version key",
        {
            "a.yaml": families("""\
            web: {versions: [base], image: {source: {instance: x}}}
            web-base: {versions: ['1'], image: {source: {instance: x}}}
            """)
        },
        [
            "a.yaml:4:3: families.web-base: web-base is also a key, declared at a.yaml:3:20 (version base of family "
            "web); a family's name is not a key (its versions' keys are web-base-<version>): rename one of them"
        ],
    ),
    (
        "a family declared in two files",
        {
            "a.yaml": families("web: {versions: [a], image: {source: {instance: x}}}\n"),
            "b.yaml": families("web: {versions: [b], image: {source: {instance: x}}}\n"),
        },
        ["b.yaml:3:3: families.web: family web is already declared at a.yaml:3:3"],
    ),
    (
        "a family both declared and under removed:",
        {
            "a.yaml": families("web: {versions: [a], image: {source: {instance: x}}}\n"),
            "b.yaml": "version: 1\nremoved:\n  - {key: web, destroy: false}\n",
        },
        [
            "b.yaml:3:11: removed[0].key: web is a family, declared at a.yaml:3:3; removed: takes image keys: to stop "
            "managing the family, take it out of families: and list its versions' keys here"
        ],
    ),
    (
        "a family's version under removed:",
        {
            "a.yaml": families("web: {versions: [a, b], keep: 1, image: {source: {instance: x}}}\n"),
            "b.yaml": "version: 1\nremoved:\n  - {key: web-a, destroy: true}\n",
        },
        [
            "b.yaml:3:11: removed[0].key: web-a is version a of family web (at a.yaml:3:20), which manages it (and "
            "deletes it once it is retired): a key is either managed or removed: delete one of the two"
        ],
    ),
    (
        "moved_from naming a declared family",
        {
            "a.yaml": families("""\
            web: {versions: [a], image: {source: {instance: x}}}
            app: {versions: [a], moved_from: web, image: {source: {instance: x}}}
            """)
        },
        [
            "a.yaml:4:36: families.app.moved_from: web is still declared (at a.yaml:3:3); moved_from names the "
            "family this one was called before, which must be gone"
        ],
    ),
    (
        "a family's moved_from re-keying a key that is still declared",
        {
            "a.yaml": families("web: {versions: [a], moved_from: old, image: {source: {instance: x}}}\n"),
            "b.yaml": "version: 1\nimages:\n  old-a: {source: {instance: x}}\n",
        },
        [
            "a.yaml:3:36: families.web.moved_from: re-keys old-a to web-a, but old-a is still declared (at "
            "b.yaml:3:3, under images:); moved_from names the family this one was called before, whose keys must be "
            "gone"
        ],
    ),
    (
        "an image and a family's version moving from the same key",
        {
            "a.yaml": families("web: {versions: [a], moved_from: old, image: {source: {instance: x}}}\n"),
            "b.yaml": "version: 1\nimages:\n  new: {source: {instance: x}, moved_from: old-a}\n",
        },
        ["b.yaml:3:44: images.new.moved_from: old-a already moves to another key (at a.yaml:3:36)"],
    ),
    (
        "an image id adopted by a version and by an image",
        {
            "a.yaml": families(
                f"web: {{versions: [{{version: a, source: {{image: {UUID_A}}}}}], image: {{source: {{instance: x}}}}}}\n"
            ),
            "b.yaml": f"version: 1\nimages:\n  other: {{source: {{image: {UUID_A}}}}}\n",
        },
        [
            f"b.yaml:3:27: images.other.source.image: image {UUID_A} is already adopted by "
            "families.web.versions[0].source.image (at a.yaml:3:49); an image belongs to one key: declare it once"
        ],
    ),
    (
        "the image checks run on each kept version, at the template's line",
        {
            "a.yaml": families(
                f"web: {{versions: [a, b], image: {{source: {{instance: x}}, copies: [KR1], share: [{PROJECT}]}}}}\n"
            )
        },
        [
            "a.yaml:3:67: families.web.image.copies[0]: KR1 is the home region; copies go to other regions",
            "a.yaml:3:81: families.web.image.share[0]: that is the set's own project; share with other projects",
        ],
    ),
    (
        "a name the tool makes is checked once the version is in it",
        {
            "a.yaml": families(
                f"web: {{versions: ['{'1' * 30}'], image: {{source: {{instance: x}}, name: '{'n' * 220}-{{version}}'}}}}\n"
            )
        },
        [
            "a.yaml:3:92: families.web.image.name: 251 characters; the name of an image the tool makes is at most 235 "
            "(it is created under the name plus a 20-character temporary token)"
        ],
    ),
    (
        "a description with a line break in a family is told how to write it",
        {"a.yaml": families('web: {versions: [a], image: {source: {instance: x}, description: "one\\ntwo"}}\n')},
        [
            "a.yaml:3:68: families.web.image.description: a description is one line, and this one has a line break "
            "(a `|` or `>` block scalar keeps them): write it on one line, as a plain scalar or a folded `>-` scalar "
            "without blank lines"
        ],
    ),
]


@pytest.mark.parametrize(("rule", "files", "expected"), RULES, ids=[r[0] for r in RULES])
def test_each_family_rule_reports_its_located_message(tmp_path, rule, files, expected):
    assert problems_of(tmp_path, files) == expected


def test_a_file_may_hold_only_families(tmp_path):
    state = load_desired_state(make_root(tmp_path, {"web.yaml": WEB}))
    assert [family.name for family in state.families] == ["web-base"]


def test_a_file_without_any_of_its_keys_names_them_all(tmp_path):
    assert problems_of(tmp_path, {"a.yaml": "version: 1\n"}) == [
        "a.yaml:1:1: document: give images:, families:, removed:, accept: or reject: (or several)"
    ]


def test_a_wrong_version_entry_is_described_inside_it(tmp_path):
    """A mapping among the versions is the entry form: what is wrong inside it, not 'matches no form'."""
    files = {"a.yaml": families("web: {versions: [{version: a, protectd: true}], image: {source: {instance: x}}}\n")}
    assert problems_of(tmp_path, files) == [
        "a.yaml:3:33: families.web.versions[0].protectd: unknown key (did you mean 'protected'?)"
    ]


# -- desugaring -----------------------------------------------------------------------------------


def test_the_newest_keep_versions_become_images_keyed_family_dash_version(tmp_path):
    state = load_desired_state(make_root(tmp_path, {"web.yaml": WEB}))
    assert [spec.key for spec in state.images] == ["web-base-2026-10", "web-base-2026-11", "web-base-2026-12"]
    assert [(spec.family, spec.version) for spec in state.images] == [
        ("web-base", "2026-10"),
        ("web-base", "2026-11"),
        ("web-base", "2026-12"),
    ]
    (family,) = state.families
    assert family == state.family("web-base")
    assert (family.versions, family.keep, family.protect_newest) == (("2026-09", "2026-10", "2026-11", "2026-12"), 3, 2)
    assert family.retired == ("2026-09",) and family.moved_from is None
    assert family.location == Location("web.yaml", 3, 3)
    assert family.version_locations["2026-09"] == Location("web.yaml", 4, 16)
    assert family.version_locations["2026-12"] == Location("web.yaml", 4, 49)


def test_each_version_gets_the_template_with_its_placeholders_replaced(tmp_path):
    state = load_desired_state(make_root(tmp_path, {"web.yaml": WEB}))
    spec = state.image("web-base-2026-11")
    assert spec.name == "web-base-2026-11"
    assert spec.description == "Golden web-base image, 2026-11"
    assert (spec.source.instance, spec.source.running, spec.region) == ("web-golden-01", "stop", "KR1")
    assert [c.region for c in spec.copies] == ["JP1"] and spec.share == (PARTNER,)
    assert dict(spec.properties) == {"login_username": "ubuntu"}
    # Every field points at the family's lines: the template's, the image itself at its version.
    assert spec.location("name") == Location("web.yaml", 9, 13)
    assert spec.location("copies.JP1") == Location("web.yaml", 11, 16)
    assert spec.location() == Location("web.yaml", 4, 38)


def test_the_name_defaults_to_the_key(tmp_path):
    files = {"a.yaml": families("web: {versions: [a], image: {source: {instance: x}}}\n")}
    (spec,) = load_desired_state(make_root(tmp_path, files)).images
    assert spec.name is None and spec.display_name == "web-a"


def test_the_newest_protect_newest_versions_are_protected_the_other_kept_ones_unprotected(tmp_path):
    state = load_desired_state(make_root(tmp_path, {"web.yaml": WEB}))
    assert [(spec.version, spec.protected) for spec in state.images] == [
        ("2026-10", False),
        ("2026-11", True),
        ("2026-12", True),
    ]
    assert state.image("web-base-2026-10").location("protected") == Location("web.yaml", 6, 21)


def test_without_protect_newest_no_version_is_protected_and_without_keep_every_version_is_kept(tmp_path):
    files = {"a.yaml": families("web: {versions: [a, b, c], image: {source: {instance: x}}}\n")}
    state = load_desired_state(make_root(tmp_path, files))
    assert [(spec.key, spec.protected) for spec in state.images] == [
        ("web-a", False),
        ("web-b", False),
        ("web-c", False),
    ]
    assert state.families[0].keep == 3 and state.families[0].retired == ()


def test_keep_above_the_number_of_versions_keeps_them_all(tmp_path):
    """The first month of a family that keeps three: one version, kept."""
    files = {"a.yaml": families("web: {versions: [a], keep: 3, protect_newest: 2, image: {source: {instance: x}}}\n")}
    (spec,) = load_desired_state(make_root(tmp_path, files)).images
    assert (spec.key, spec.protected) == ("web-a", True)


@pytest.mark.parametrize(("versions", "keep", "protect"), [(2, 3, 2), (2, 4, 3), (3, 5, 4), (1, 2, 1)])
def test_fewer_versions_than_keep_are_all_kept_and_protected_from_the_newest(tmp_path, versions, keep, protect):
    """The first months of a family: every listed version is declared (a slice from a negative start once
    declared only the newest), the newest `protect_newest` of them protected."""
    listed = ", ".join(f"v{i}" for i in range(versions))
    family = (
        f"web: {{versions: [{listed}], keep: {keep}, protect_newest: {protect}, image: {{source: {{instance: x}}}}}}\n"
    )
    state = load_desired_state(make_root(tmp_path, {"a.yaml": families(family)}))
    got = [(spec.key, spec.protected) for spec in state.images]
    assert got == [(f"web-v{i}", i >= versions - protect) for i in range(versions)]
    assert state.families[0].kept == tuple(f"v{i}" for i in range(versions)) and state.families[0].retired == ()
    assert state.families[0].protected == tuple(f"v{i}" for i in range(max(0, versions - protect), versions))


def test_an_override_replaces_each_field_it_names_whole(tmp_path):
    files = {
        "a.yaml": families(f"""\
            web:
              versions:
                - a
                - version: b
                  source: {{image: {UUID_B}}}
                  copies: [{{region: KR2, image: {UUID_A}}}]
                  properties: {{os: linux}}
                  description: "adopted {{version}}"
              image:
                source: {{instance: web-golden-01, running: stop}}
                copies: [JP1, {{region: KR2, protected: false}}]
                properties: {{login_username: ubuntu}}
                min_disk: 20
            """)
    }
    state = load_desired_state(make_root(tmp_path, files))
    adopted = state.image("web-b")
    assert adopted.source.image == UUID_B and adopted.source.instance is None and adopted.source.running == "allow"
    assert [(c.region, c.image, c.protected) for c in adopted.copies] == [("KR2", UUID_A, None)]
    assert dict(adopted.properties) == {"os": "linux"}  # no deep merge: login_username is gone
    assert adopted.description == "adopted b" and adopted.min_disk == 20
    assert adopted.location("source") == Location("a.yaml", 7, 17)
    assert adopted.location("min_disk") == Location("a.yaml", 15, 17)
    built = state.image("web-a")
    assert [(c.region, c.protected) for c in built.copies] == [("JP1", None), ("KR2", False)]
    assert dict(built.properties) == {"login_username": "ubuntu"} and built.description is None


def test_a_protected_override_wins_and_is_recorded(tmp_path):
    files = {
        "a.yaml": families("""\
            web:
              versions: [{version: a, protected: true}, b, c, d]
              keep: 3
              protect_newest: 1
              image: {source: {instance: x}}
            """)
    }
    state = load_desired_state(make_root(tmp_path, files))
    (family,) = state.families
    assert dict(family.protected_overrides) == {"a": Location("a.yaml", 4, 40)}
    assert [(spec.version, spec.protected) for spec in state.images] == [("b", False), ("c", False), ("d", True)]
    assert family.retired == ("a",)


def test_a_protected_override_inside_the_kept_versions_protects_it(tmp_path):
    files = {
        "a.yaml": families("""\
            web:
              versions: [a, {version: b, protected: true}, c]
              image: {source: {instance: x}}
            """)
    }
    state = load_desired_state(make_root(tmp_path, files))
    assert [(spec.version, spec.protected) for spec in state.images] == [("a", False), ("b", True), ("c", False)]
    assert state.image("web-b").location("protected") == Location("a.yaml", 4, 43)


def test_a_family_moved_from_gives_each_kept_version_its_old_key(tmp_path):
    files = {
        "a.yaml": families("web: {versions: [a, b, c], keep: 2, moved_from: app, image: {source: {instance: x}}}\n")
    }
    state = load_desired_state(make_root(tmp_path, files))
    assert [(spec.key, spec.moved_from) for spec in state.images] == [("web-b", "app-b"), ("web-c", "app-c")]
    assert state.families[0].moved_from == "app"
    assert state.image("web-b").location("moved_from") == Location("a.yaml", 3, 51)


def test_families_and_images_merge_across_files_sorted(tmp_path):
    files = {
        "a.yaml": families("zeta: {versions: ['1'], image: {source: {instance: x}}}\n"),
        "b.yaml": "version: 1\nimages:\n  solo: {source: {instance: x}}\nfamilies:\n"
        "  alpha: {versions: ['1', '2'], keep: 1, image: {source: {instance: x}}}\n",
    }
    state = load_desired_state(make_root(tmp_path, files))
    assert [f.name for f in state.families] == ["alpha", "zeta"]
    assert [spec.key for spec in state.images] == ["alpha-2", "solo", "zeta-1"]
    assert state.image("alpha-2").file == "b.yaml" and isinstance(state.family("zeta"), Family)


@pytest.mark.parametrize(("field", "value"), [("keep", "2.0"), ("protect_newest", "1.0"), ("keep", "2.5")])
def test_keep_and_protect_newest_are_whole_numbers(tmp_path, field, value):
    """JSON Schema's integer takes 2.0: a decimal keep was ignored (nothing retired) and a decimal
    protect_newest crashed the desugaring."""
    numbers = {"keep": "3", "protect_newest": "0", field: value}
    family = (
        f"web: {{versions: ['1', '2', '3', '4'], keep: {numbers['keep']}, "
        f"protect_newest: {numbers['protect_newest']}, image: {{source: {{instance: x}}}}}}\n"
    )
    found = problems_of(tmp_path, {"a.yaml": families(family)})
    assert any(f"families.web.{field}: {value} is not a whole number" in p for p in found), found


def test_a_copys_name_gets_the_placeholders_and_an_unknown_one_is_refused(tmp_path):
    family = "web: {versions: ['1', '2'], image: {source: {instance: x}, copies: [{region: JP1, name: 'jp-{family}-{version}'}]}}\n"
    state = load_desired_state(make_root(tmp_path, {"a.yaml": families(family)}))
    assert [spec.copies[0].name for spec in state.images] == ["jp-web-1", "jp-web-2"]
    bad = "web: {versions: ['1'], image: {source: {instance: x}, copies: [{region: JP1, name: 'jp-{versoin}'}]}}\n"
    (tmp_path / "bad").mkdir()
    found = problems_of(tmp_path / "bad", {"a.yaml": families(bad)})
    assert any("unknown placeholder" in p and "copies[0].name" in p for p in found), found
