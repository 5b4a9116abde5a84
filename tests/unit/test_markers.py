"""markers.managed_props reads a marker anyone in the project may edit (issue 17): a name no manifest may
declare is never one the tool manages, so no plan removes the tool's own markers or Glance's attributes."""

from __future__ import annotations

import pytest

from reconciler import markers

RESERVED = [
    markers.SET,
    markers.KEY,
    markers.SOURCE,
    markers.PROPS,
    markers.COPY_OF,
    markers.DOWNLOAD_WAS,
    "reconciler_lock_claim",
    "reconciler_doctor",
    "reconciler_anything",
    markers.DOWNLOAD_FLAG,
    "nhncloud_product",
    "os_hash_algo",
    "os_hash_value",
    "os_glance_importing_to_stores",
    "description",
    "name",
    "id",
    "visibility",
    "protected",
    "owner",
    "min_disk",
    "checksum",
    "os_hidden",
]


@pytest.mark.parametrize("name", RESERVED)
def test_a_reserved_name_in_the_marker_is_not_managed(name):
    assert markers.reserved_property(name) is not None
    assert markers.managed_props({markers.PROPS: f"login_username,{name},team"}) == ("login_username", "team")


def test_os_type_is_never_removed_though_a_manifest_may_set_it():
    assert markers.reserved_property("os_type") is None
    assert markers.managed_props({markers.PROPS: "os_type,os_distro"}) == ("os_distro",)


def test_ordinary_names_stay_sorted_and_once():
    assert markers.managed_props({markers.PROPS: "team,,login_username,team"}) == ("login_username", "team")
    assert markers.managed_props({}) == ()
    assert markers.managed_props({markers.PROPS: ["team"]}) == ()


@pytest.mark.parametrize("name", ["reconciler_key", "nhncloud_product", "os_hash_value", "description", "name"])
def test_validation_refuses_by_the_same_rule(tmp_path, name):
    from reconciler.validate import InvalidRootError, load_desired_state

    assert markers.reserved_property(name) is not None
    (tmp_path / "reconciler.yaml").write_text(
        "version: 1\nset: web\ncloud: {kind: nhn, project: 3f0c9d2e6b7a4f0e9a1b2c3d4e5f6a7b}\ndefaults: {region: KR1}\n"
    )
    (tmp_path / "m.yaml").write_text(
        f"version: 1\nimages:\n  web:\n    source: {{instance: x}}\n    properties: {{{name}: v}}\n"
    )
    with pytest.raises(InvalidRootError) as caught:
        load_desired_state(tmp_path)
    assert any(f"properties.{name}" in str(p) for p in caught.value.problems), caught.value.problems
