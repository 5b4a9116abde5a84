"""Seed files: every problem reported together with file:line:column; defaults filled on success."""

from __future__ import annotations

import textwrap

import pytest

from reconciler.errors import SeedError
from reconciler.simulator.qcow2 import generated_digests
from reconciler.simulator.seed import load_seed, state_from_seed

P1 = "3f0c9d2e6b7a4f0e9a1b2c3d4e5f6a7b"
P2 = "8989447062e04a818baf9e073fd04fa7"


def write(tmp_path, text: str):
    path = tmp_path / "seed.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def problems(tmp_path, text: str) -> list[str]:
    with pytest.raises(SeedError) as caught:
        load_seed(write(tmp_path, text))
    # Messages name the file as it was given; strip the test's temporary folder for readability.
    return [line.strip().replace(f"{tmp_path}/", "") for line in str(caught.value).splitlines()[1:]]


VALID = f"""\
regions: [KR1, JP1]
projects:
  - id: {P1}
    users: [{{username: dev@example.com, api_password: local-only}}]
servers:
  - {{project: {P1}, region: KR1, name: web-01, flavor: m2.c4m8, os_type: linux}}
  - {{project: {P1}, region: KR1, name: batch-01, flavor: u2.c2m4, os_type: linux, status: SHUTOFF}}
images:
  - {{project: {P1}, region: KR1, name: base, size_mb: 2, content: base-v1, properties: {{os_type: linux}}}}
  - {{project: {P1}, region: JP1, name: base, size_mb: 2, content: base-v1}}
"""


def test_valid_seed_builds_a_state_with_defaults(tmp_path):
    state = state_from_seed(load_seed(write(tmp_path, VALID)))
    assert state["regions"] == ["KR1", "JP1"]
    servers = {s["name"]: s for s in state["servers"].values()}
    assert servers["web-01"]["root"] == "volume" and servers["web-01"]["root_volume_id"] in state["volumes"]
    assert servers["batch-01"]["root"] == "local" and servers["batch-01"]["root_volume_id"] is None
    assert servers["web-01"]["status"] == "ACTIVE" and servers["web-01"]["disk_mb"] == 16
    images = list(state["images"].values())
    assert all(i["fields"]["status"] == "active" and i["fields"]["visibility"] == "private" for i in images)
    # Same (size_mb, content): the home image and its copy verify against each other.
    assert images[0]["fields"]["checksum"] == images[1]["fields"]["checksum"] == generated_digests(2, "base-v1")[0]
    assert images[0]["fields"]["os_type"] == "linux" and "os_type" not in images[1]["fields"]


def test_ids_are_stable_across_inits(tmp_path):
    path = write(tmp_path, VALID)
    assert state_from_seed(load_seed(path))["images"].keys() == state_from_seed(load_seed(path))["images"].keys()


def test_unknown_keys_and_bad_values_are_all_reported_with_locations(tmp_path):
    found = problems(
        tmp_path,
        f"""\
        regions: [KR1, kr2]
        projects:
          - id: {P1}
            users: [{{username: a, api_password: b}}]
        servers:
          - project: {P1}
            region: KR1
            name: web
            flavour: m2.c4m8
            os_type: linux
        images:
          - {{project: {P1}, region: KR1, name: x, protected: "yes"}}
        """,
    )
    assert found == [
        "seed.yaml:1:16: regions[1]: 'kr2' does not match the expected form '^[A-Z]{2,3}[0-9]+$'",
        "seed.yaml:6:5: servers[0]: 'flavor' is a required property",
        "seed.yaml:9:5: servers[0].flavour: unknown key (did you mean 'flavor'?)",
        "seed.yaml:12:82: images[0].protected: 'yes' is not of type 'boolean'",
    ]


def test_cross_references_are_checked(tmp_path):
    found = problems(
        tmp_path,
        f"""\
        regions: [KR1]
        projects:
          - id: {P1}
        servers:
          - {{project: {P2}, region: KR1, name: web, flavor: m2.c4m8, os_type: linux}}
          - {{project: {P1}, region: JP1, name: web, flavor: m2.c4m8, os_type: linux}}
        images:
          - {{project: {P1}, region: KR1, name: x, members: [{{project: {P2}}}]}}
        """,
    )
    assert found == [
        f"seed.yaml:5:15: servers[0].project: project {P2} is not in projects",
        "seed.yaml:6:57: servers[1].region: region JP1 is not in regions",
        "seed.yaml:8:80: images[0].members: only images with visibility: shared have members",
    ]


def test_property_values_must_be_strings(tmp_path):
    found = problems(
        tmp_path,
        f"""\
        regions: [KR1]
        projects: [{{id: {P1}}}]
        images:
          - project: {P1}
            region: KR1
            name: x
            properties:
              min_version: 1.0
        """,
    )
    assert found == ["seed.yaml:8:20: images[0].properties.min_version: 1.0 is not of type 'string'"]


def test_duplicate_keys_and_syntax_errors(tmp_path):
    assert problems(tmp_path, "regions: [KR1]\nregions: [JP1]\nprojects: []\n") == [
        "seed.yaml:2:1: duplicate key 'regions' (first defined at line 1)"
    ]
    assert problems(tmp_path, "regions: [KR1\n")[0].startswith("seed.yaml:2:1: YAML syntax error")


def test_behaviour_is_validated(tmp_path):
    found = problems(
        tmp_path,
        f"""\
        regions: [KR1]
        projects: [{{id: {P1}}}]
        behaviour:
          protected_patch: sometimes
          faults: [{{route: "GET /x", status: 503, drop: true}}]
        """,
    )
    assert len(found) == 2
    assert found[0].startswith("seed.yaml:4:20: behaviour.protected_patch: 'sometimes' is not one of")
    assert found[1].startswith("seed.yaml:5:12: behaviour.faults[0]:")
