"""The keys `--target` and `--exclude` may name (reconciler.scope), as plain data: manifest keys and the
live images of a set, no command line and no simulator."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from reconciler import markers
from reconciler.cloud.records import Image
from reconciler.errors import UsageError
from reconciler.scope import check_named_keys, known_keys

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
