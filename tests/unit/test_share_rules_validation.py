"""`accept:` and `reject:` in manifests (a consumer root's rules for the images other projects share with it):
the schema completes them, each malformed or identical rule is reported where it is written, rules that only
overlap are no problem, and valid rules become `DesiredState.rules` in the order written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from roots_on_disk import problems_loading, write_root

from reconciler.desired import ShareRule
from reconciler.location import Location
from reconciler.schemas import load_schema
from reconciler.validate import InvalidRootError, load_desired_state

CONSUMER = "0123456789abcdef0123456789abcdef"  # the root's own project
OWNER = "3f0c9d2e6b7a4f0e9a1b2c3d4e5f6a7b"
OTHER = "0aa1bb22cc33dd44ee55ff6600112233"
IMAGE = "6f1c0d2e-0000-4000-8000-000000000001"
ROOT_CONFIG = f"version: 1\nset: consumer\ncloud: {{kind: nhn, project: {CONSUMER}}}\n"


def make_root(tmp_path: Path, files: dict[str, str], config: str = ROOT_CONFIG) -> Path:
    return write_root(tmp_path, config, files)


def problems_of(tmp_path: Path, files: dict[str, str]) -> list[str]:
    return problems_loading(make_root(tmp_path, files))


def rules(list_name: str, *entries: str) -> str:
    """A manifest holding one list of rules, one entry per argument (YAML flow mappings)."""
    return f"version: 1\n{list_name}:\n" + "".join(f"  - {entry}\n" for entry in entries)


SET_WITHOUT_FAMILY = "set narrows a family rule to the images of one set: add family:, or take set: out"

MALFORMED = [
    (
        "a rule with neither family, image nor name",
        rules("accept", f"{{owner: {OWNER}}}"),
        ["a.yaml:3:5: accept[0]: give exactly one of: family, image, name"],
    ),
    (
        "a rule with two kinds names both",
        rules("reject", f"{{owner: {OWNER}, family: web, image: {IMAGE}}}"),
        ["a.yaml:3:5: reject[0]: family and image are both given: give exactly one of: family, image, name"],
    ),
    (
        "a rule with all three kinds",
        rules("accept", f"{{owner: {OWNER}, family: web, image: {IMAGE}, name: web}}"),
        ["a.yaml:3:5: accept[0]: family, image and name are all given: give exactly one of: family, image, name"],
    ),
    (
        "set without family, next to a name, is reported at set",
        rules("accept", f"{{owner: {OWNER}, set: platform, name: 'web-*'}}"),
        [f"a.yaml:3:47: accept[0].set: given without family; {SET_WITHOUT_FAMILY}"],
    ),
    (
        "set without family, next to an image",
        rules("reject", f"{{owner: {OWNER}, image: {IMAGE}, set: platform}}"),
        [f"a.yaml:3:92: reject[0].set: given without family; {SET_WITHOUT_FAMILY}"],
    ),
    (
        "set alone is both: no kind, and set without family",
        rules("accept", f"{{owner: {OWNER}, set: platform}}"),
        [
            "a.yaml:3:5: accept[0]: give exactly one of: family, image, name",
            f"a.yaml:3:47: accept[0].set: given without family; {SET_WITHOUT_FAMILY}",
        ],
    ),
    (
        "a rule without owner",
        rules("accept", "{family: web}"),
        ["a.yaml:3:5: accept[0]: 'owner' is required"],
    ),
    (
        "an owner that is no project id",
        rules("accept", f"{{owner: {OWNER.upper()}, family: web}}"),
        [f"a.yaml:3:13: accept[0].owner: '{OWNER.upper()}' is not a project id (32 lowercase hexadecimal characters)"],
    ),
    (
        "an image that is no image id",
        rules("accept", f"{{owner: {OWNER}, image: web-base}}"),
        ["a.yaml:3:54: accept[0].image: 'web-base' is not an image id (a UUID)"],
    ),
    (
        "a family that is no family name",
        rules("accept", f"{{owner: {OWNER}, family: 'web base'}}"),
        [
            "a.yaml:3:55: accept[0].family: 'web base' is not a key: letters, digits, '.', '_' or '-', starting "
            "with a letter or digit, at most 128 characters"
        ],
    ),
    (
        "a set that is no set name",
        rules("accept", f"{{owner: {OWNER}, family: web, set: '-x'}}"),
        ["a.yaml:3:65: accept[0].set: '-x' is not a set name: letters, digits, '.', '_' or '-', at most 63 characters"],
    ),
    (
        "an empty glob",
        rules("reject", f"{{owner: {OWNER}, name: ''}}"),
        ["a.yaml:3:53: reject[0].name: must not be empty"],
    ),
    (
        "a misspelt field",
        f"version: 1\naccept:\n  - owner: {OWNER}\n    family: web\n    sett: platform\n",
        ["a.yaml:5:5: accept[0].sett: unknown key (did you mean 'set'?)"],
    ),
    (
        "a rule that is no mapping is told so once (no keys are asked of it)",
        rules("accept", "web-base"),
        ["a.yaml:3:5: accept[0]: expected a mapping, got a string"],
    ),
    (
        "reject: that is no list",
        f"version: 1\nreject: {{owner: {OWNER}, name: '*'}}\n",
        ["a.yaml:2:9: reject: expected a list, got a mapping"],
    ),
    (
        "a misspelt accept: is neither list, and the unknown key says which was meant",
        f"version: 1\naccpet:\n  - {{owner: {OWNER}, family: web}}\n",
        [
            "a.yaml:1:1: document: give images:, families:, removed:, accept: or reject: (or several)",
            "a.yaml:2:1: accpet: unknown key (did you mean 'accept'?)",
        ],
    ),
    (
        "an owner that is the root's own project: a project never shares with itself",
        rules("accept", f"{{owner: {CONSUMER}, family: web}}"),
        [
            f"a.yaml:3:13: accept[0].owner: {CONSUMER} is this root's own project (cloud.project); a rule matches "
            "images other projects share with it: name the project that owns them"
        ],
    ),
    (
        "a glob with a hidden character",
        rules("accept", f'{{owner: {OWNER}, name: "web-\\u200b*"}}'),
        [
            "a.yaml:3:53: accept[0].name: the value contains \\u200b (invisible format): control and format "
            "characters (Unicode Cc and Cf, tab and line breaks included) and letters that show as nothing are "
            "refused in every string, since they can hide or rewrite what a reviewer reads"
        ],
    ),
]


@pytest.mark.parametrize(("case", "manifest", "expected"), MALFORMED, ids=[case for case, _, _ in MALFORMED])
def test_a_malformed_rule_is_reported_where_it_is_written(tmp_path, case, manifest, expected):
    assert problems_of(tmp_path, {"a.yaml": manifest}) == expected


SAME_TWICE = "write it once"
NEVER_MEANS = (
    "a rule in both accept: and reject: can never mean anything (reject wins, so the accept: rule never applies): "
    "delete one of them"
)

IDENTICAL = [
    (
        "the same rule twice in one list",
        {"a.yaml": rules("accept", f"{{owner: {OWNER}, family: web}}", f"{{family: web, owner: {OWNER}}}")},
        [f"a.yaml:4:5: accept[1]: the same rule as accept[0] (at a.yaml:3:5): {SAME_TWICE}"],
    ),
    (
        "the same rule in two files: reported at the second file, naming the first",
        {
            "a.yaml": rules("reject", f"{{owner: {OWNER}, name: 'web-*'}}"),
            "b/c.yaml": rules("reject", f"{{owner: {OTHER}, name: '*'}}", f"{{owner: {OWNER}, name: 'web-*'}}"),
        },
        [f"b/c.yaml:4:5: reject[1]: the same rule as reject[0] (at a.yaml:3:5): {SAME_TWICE}"],
    ),
    (
        "an image id is the same in any case",
        {
            "a.yaml": rules(
                "accept", f"{{owner: {OWNER}, image: {IMAGE}}}", f"{{owner: {OWNER}, image: {IMAGE.upper()}}}"
            )
        },
        [f"a.yaml:4:5: accept[1]: the same rule as accept[0] (at a.yaml:3:5): {SAME_TWICE}"],
    ),
    (
        "the same family rule narrowed to the same set",
        {
            "a.yaml": rules(
                "accept",
                f"{{owner: {OWNER}, family: web, set: platform}}",
                f"{{owner: {OWNER}, set: platform, family: web}}",
            )
        },
        [f"a.yaml:4:5: accept[1]: the same rule as accept[0] (at a.yaml:3:5): {SAME_TWICE}"],
    ),
    (
        "a rule in accept: and the same in reject: of one file",
        {
            "a.yaml": f"version: 1\naccept:\n  - {{owner: {OWNER}, family: web}}\n"
            f"reject:\n  - {{owner: {OWNER}, family: web}}\n"
        },
        [f"a.yaml:5:5: reject[0]: the same rule as accept[0] (at a.yaml:3:5): {NEVER_MEANS}"],
    ),
    (
        "a rule in reject: and the same in accept: of a later file",
        {
            "a.yaml": rules("reject", f"{{owner: {OWNER}, image: {IMAGE}}}"),
            "b.yaml": rules("accept", f"{{owner: {OWNER}, image: {IMAGE}}}"),
        },
        [f"b.yaml:3:5: accept[0]: the same rule as reject[0] (at a.yaml:3:5): {NEVER_MEANS}"],
    ),
]


@pytest.mark.parametrize(("case", "files", "expected"), IDENTICAL, ids=[case for case, _, _ in IDENTICAL])
def test_an_identical_rule_is_reported_at_the_second_naming_the_first(tmp_path, case, files, expected):
    assert problems_of(tmp_path, files) == expected


def test_rules_that_only_overlap_are_valid(tmp_path):
    """Whether two different rules match one image depends on the live images: the plan warns, not validation."""
    manifest = (
        f"version: 1\naccept:\n  - {{owner: {OWNER}, family: web}}\n  - {{owner: {OWNER}, family: web, set: platform}}\n"
        f"  - {{owner: {OWNER}, name: 'web-*'}}\n  - {{owner: {OTHER}, family: web}}\n"
        f"reject:\n  - {{owner: {OWNER}, name: '*'}}\n  - {{owner: {OWNER}, name: 'Web-*'}}\n"
    )
    state = load_desired_state(make_root(tmp_path, {"a.yaml": manifest}))
    assert len(state.rules) == 6


def test_rules_become_the_model_merged_across_files_in_the_order_written(tmp_path):
    """Files sorted, then entries as written: accept: and reject: of one file interleave by line."""
    files = {
        "b.yaml": rules("accept", f"{{owner: {OWNER}, image: {IMAGE}}}"),
        "a.yaml": (
            f"version: 1\nreject:\n  - {{owner: {OTHER}, name: '*'}}\n"
            f"accept:\n  - owner: {OWNER}\n    set: platform\n    family: web-base\n  - {{owner: {OWNER}, name: 'ubuntu-?[0-9]*'}}\n"
        ),
    }
    state = load_desired_state(make_root(tmp_path, files))
    assert state.rules == (
        ShareRule("rejected", OTHER, "a.yaml", name="*", location=Location("a.yaml", 3, 5)),
        ShareRule("accepted", OWNER, "a.yaml", family="web-base", set="platform", location=Location("a.yaml", 5, 5)),
        ShareRule("accepted", OWNER, "a.yaml", name="ubuntu-?[0-9]*", location=Location("a.yaml", 8, 5)),
        ShareRule("accepted", OWNER, "b.yaml", image=IMAGE, location=Location("b.yaml", 3, 5)),
    )


def test_a_root_of_rules_only_loads_and_still_needs_its_set(tmp_path):
    """A consumer root declares no image of its own; reconciler.yaml's set: stays required all the same."""
    files = {
        "shared.yaml": rules("accept", f"{{owner: {OWNER}, family: web-base}}"),
        "no.yaml": rules("reject", f"{{owner: {OTHER}, name: '*'}}"),
    }
    state = load_desired_state(make_root(tmp_path, files))
    assert (state.images, state.families, state.removed) == ((), (), ())
    assert [rule.wants for rule in state.rules] == ["rejected", "accepted"]

    without_set = f"version: 1\ncloud: {{kind: nhn, project: {CONSUMER}}}\n"
    with pytest.raises(InvalidRootError) as caught:
        load_desired_state(make_root(tmp_path, files, without_set))
    assert [str(p) for p in caught.value.problems] == ["reconciler.yaml:1:1: document: 'set' is required"]


def test_rules_sit_next_to_images_in_one_file(tmp_path):
    manifest = (
        "version: 1\nimages:\n  web:\n    region: KR1\n    source: {instance: x}\n"
        f"accept:\n  - {{owner: {OWNER}, family: base}}\n"
    )
    state = load_desired_state(make_root(tmp_path, {"a.yaml": manifest}))
    assert [spec.key for spec in state.images] == ["web"]
    assert [rule.family for rule in state.rules] == ["base"]


def run_validate(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reconciler", "validate", str(root)], capture_output=True, text=True, check=False
    )


def test_validate_exits_0_on_a_consumer_root_and_1_on_an_identical_rule(tmp_path):
    good = make_root(tmp_path / "good", {"a.yaml": rules("accept", f"{{owner: {OWNER}, family: web-base}}")})
    assert run_validate(good).returncode == 0
    bad = make_root(
        tmp_path / "bad",
        {
            "a.yaml": rules("accept", f"{{owner: {OWNER}, name: '*'}}"),
            "b.yaml": rules("reject", f"{{owner: {OWNER}, name: '*'}}"),
        },
    )
    result = run_validate(bad)
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == (
        f"b.yaml:3:5: reject[0]: the same rule as accept[0] (at a.yaml:3:5): {NEVER_MEANS}"
    )


# -- the schema, for editors ----------------------------------------------------------------------


def test_the_schema_describes_every_rule_field_and_its_examples_are_valid():
    schema = load_schema("manifest")
    validator = jsonschema.Draft202012Validator(schema)
    for list_name in ("accept", "reject"):
        declared = schema["properties"][list_name]
        assert declared["description"] and declared["items"] == {"$ref": "#/$defs/share_rule"}
        for example in declared["examples"]:
            assert validator.is_valid({"version": 1, list_name: example}), example
    rule = schema["$defs"]["share_rule"]
    assert sorted(rule["properties"]) == ["family", "image", "name", "owner", "set"]
    assert all(field.get("description") for field in rule["properties"].values())
    rule_validator = jsonschema.Draft202012Validator({**rule, "$defs": schema["$defs"]})
    assert rule["examples"] and all(rule_validator.is_valid(example) for example in rule["examples"])


def test_the_rule_set_pattern_is_the_root_configs():
    """A rule's set: names a set as reconciler.yaml's set: does."""
    manifest, root = load_schema("manifest"), load_schema("root")
    assert manifest["$defs"]["set_name"]["pattern"] == root["properties"]["set"]["pattern"]
