"""The keys `--target` and `--exclude` may name (reconciler.scope), as plain data: manifest keys and the
live images of a set, no command line and no simulator."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from reconciler import markers
from reconciler.cloud.records import Image
from reconciler.errors import UsageError
from reconciler.planner.context import Scope
from reconciler.scope import check_named_keys, family_keys, known_keys, named_scope

SET = "web-platform"


def image(image_id, **props):
    return Image("KR1", image_id, "web-base", "active", "private", False, "p", 0, 0, 1, 1, None, None, "qcow2",
                 "bare", (), None, None, MappingProxyType(props))  # fmt: skip


LIVE = [
    image("1", **{markers.SET: SET, markers.KEY: "retired"}),  # removed from the manifests, still live
    image("2", **{markers.SET: "other-set", markers.KEY: "theirs"}),  # another set's
    image("3", **{markers.SET: SET, markers.KEY: "bad key!"}),  # a key no run of the tool writes
    image("4"),  # unmanaged
]


def test_known_keys_are_the_manifests_and_this_sets_valid_live_markers():
    assert known_keys(["web", "db"], LIVE, SET) == {"web", "db", "retired"}


@pytest.mark.parametrize("named", [[], ["web"], ["retired"], ["web", "web", "retired"]])
def test_keys_that_name_an_image_pass(named):
    check_named_keys(named, ["web"], LIVE, SET)


@pytest.mark.parametrize(
    ("named", "shown"),
    [
        (["wbe"], "wbe"),
        (["theirs"], "theirs"),  # another set's key is not this set's
        (["bad key!"], "bad key!"),
        (["zeta", "web", "alpha"], "alpha, zeta"),  # each unknown key, sorted
    ],
)
def test_a_key_that_names_nothing_is_refused(named, shown):
    with pytest.raises(UsageError) as raised:
        check_named_keys(named, ["web"], LIVE, SET)
    assert raised.value.message == f"no image of set {SET} has the key {shown}"
    assert "image keys as the manifests write them" in raised.value.hint


# -- family names (issue 23) ----------------------------------------------------------------------

PROJECT = "3f0c9d2e6b7a4f0e9a1b2c3d4e5f6a7b"
FAMILY_ROOT = {
    "reconciler.yaml": f"version: 1\nset: {SET}\ncloud: {{kind: nhn, project: {PROJECT}}}\ndefaults: {{region: KR1}}\n",
    "web.yaml": "version: 1\nimages:\n  solo: {source: {instance: x}}\nfamilies:\n"
    "  web-base: {versions: ['2026-10', '2026-11', '2026-12'], keep: 2, image: {source: {instance: x}}}\n",
}


def family_image(image_id, key, family, set_name=SET):
    return image(image_id, **{markers.SET: set_name, markers.KEY: key, markers.FAMILY: family})


FAMILY_LIVE = [
    family_image("10", "web-base-2026-08", "web-base"),  # a version no longer listed, still live
    family_image("11", "web-base-2026-12", "web-base"),
    family_image("12", "app-1", "app"),  # a family the manifests no longer declare
    family_image("13", "theirs-1", "web-base", set_name="other-set"),  # another set's
    image("14", **{markers.SET: SET, markers.FAMILY: "web-base"}),  # no key: not an image of any key
]


@pytest.fixture
def family_state(tmp_path):
    from reconciler.validate import load_desired_state

    for name, content in FAMILY_ROOT.items():
        (tmp_path / name).write_text(content)
    return load_desired_state(tmp_path)


def test_a_family_stands_for_its_listed_versions_and_its_live_images_retired_ones_included(family_state):
    assert family_keys(family_state.families, FAMILY_LIVE, SET) == {
        "web-base": {"web-base-2026-08", "web-base-2026-10", "web-base-2026-11", "web-base-2026-12"},
        "app": {"app-1"},
    }


def test_target_and_exclude_name_a_family_for_all_its_keys(family_state):
    targets, excludes = named_scope(["web-base"], ["app"], family_state, FAMILY_LIVE)
    assert targets == {"web-base-2026-08", "web-base-2026-10", "web-base-2026-11", "web-base-2026-12"}
    assert excludes == {"app-1"}
    scope = Scope(targets, excludes)
    assert "web-base-2026-10" in scope and "web-base-2026-08" in scope and "solo" not in scope


def test_keys_and_family_names_mix(family_state):
    targets, excludes = named_scope(["solo", "web-base-2026-12"], ["web-base"], family_state, FAMILY_LIVE)
    assert targets == {"solo", "web-base-2026-12"}
    assert "web-base-2026-12" not in Scope(targets, excludes) and "solo" in Scope(targets, excludes)


def test_a_live_key_that_is_also_a_family_name_stays_targeted(family_state):
    live = [*FAMILY_LIVE, image("15", **{markers.SET: SET, markers.KEY: "web-base"})]  # from before the family
    targets, _ = named_scope(["web-base"], [], family_state, live)
    assert "web-base" in targets and "web-base-2026-11" in targets


def test_a_name_that_is_neither_a_key_nor_a_family_is_refused(family_state):
    with pytest.raises(UsageError) as raised:
        named_scope(["web-bsae"], ["theirs-1"], family_state, FAMILY_LIVE)
    assert raised.value.message == f"no image of set {SET} has the key theirs-1, web-bsae"
    assert raised.value.hint == "--target and --exclude take image keys as the manifests write them, or family names"


def test_plan_and_apply_hand_the_planner_a_familys_keys(family_state):
    """plan_options (plan's and apply's): the planner's targets and excludes are keys, never a family's name."""
    from argparse import Namespace

    from reconciler.commands.plan import plan_options

    class Snapshot:
        def all_images(self):
            return FAMILY_LIVE

    args = Namespace(target=["web-base"], exclude=["web-base-2026-08"], max_deletions=None)
    options = plan_options(args, family_state, Snapshot())
    assert options["targets"] == {"web-base-2026-08", "web-base-2026-10", "web-base-2026-11", "web-base-2026-12"}
    assert options["excludes"] == {"web-base-2026-08"}
