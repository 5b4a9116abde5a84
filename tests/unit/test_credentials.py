"""`cloud.credentials`, without a network: which prefixes a root may name (located problems for a malformed
one, the reserved NHN_CLOUD and OS, and any for kind: simulator), the model it becomes, and the exact
variables a prefix reads (no fallback, the missing ones named, the tenant id's variable remembered)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from reconciler.cloud.auth import Credentials
from reconciler.cloud.environment import credential_names
from reconciler.cloud.errors import CloudConfigError
from reconciler.schemas import load_schema
from reconciler.validate import InvalidRootError, load_desired_state

PROJECT = "3f0c9d2e6b7a4f0e9a1b2c3d4e5f6a7b"
OTHER = "8989447062e04a818baf9e073fd04fa7"
SECRET = "prefix-api-secret-4K"


def root_with(tmp_path: Path, cloud: str) -> Path:
    """A root whose `cloud:` holds the given lines (one key a line, from line 4 on)."""
    body = textwrap.indent(cloud, "  ")
    (tmp_path / "reconciler.yaml").write_text(
        f"version: 1\nset: web-platform\ncloud:\n{body}defaults:\n  region: KR1\n"
    )
    return tmp_path


def nhn_cloud(credentials: str) -> str:
    return f"kind: nhn\nproject: {PROJECT}\ncredentials: {credentials}\n"


def problems_of(root: Path) -> list[str]:
    with pytest.raises(InvalidRootError) as caught:
        load_desired_state(root)
    return [str(p) for p in caught.value.problems]


# -- validation --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["PARTNER", "P", "TEAM_B2", "A" + "B" * 30, "NHN_CLOUD_PARTNER", "OSX"])
def test_a_wellformed_prefix_becomes_the_model(tmp_path, prefix):
    desired = load_desired_state(root_with(tmp_path, nhn_cloud(prefix)))
    assert desired.root.cloud.credentials == prefix


def test_without_the_key_a_root_uses_the_default_variables(tmp_path):
    desired = load_desired_state(root_with(tmp_path, f"kind: nhn\nproject: {PROJECT}\n"))
    assert desired.root.cloud.credentials is None


@pytest.mark.parametrize(
    "written",
    ["partner", "Partner", "2PARTNER", "_PARTNER", "PART-NER", "PART NER", "A" + "B" * 31, "''", "'PARTNER\\n'", "7"],
)
def test_a_malformed_prefix_is_a_located_problem(tmp_path, written):
    problems = problems_of(root_with(tmp_path, nhn_cloud(written)))
    assert len(problems) == 1, problems
    # Line 6 holds `credentials:`; the problem is at its value.
    assert problems[0].startswith("reconciler.yaml:6:16: cloud.credentials: "), problems


def test_a_malformed_prefix_is_explained_in_words(tmp_path):
    (problem,) = problems_of(root_with(tmp_path, nhn_cloud("partner")))
    assert problem.endswith("'partner' is not an environment prefix like PARTNER: an uppercase letter, then uppercase "
                            "letters, digits or '_', at most 31 characters")  # fmt: skip
    (tmp_path / "long").mkdir()
    (too_long,) = problems_of(root_with(tmp_path / "long", nhn_cloud("A" * 40)))
    assert "40 characters" in too_long and "31" in too_long, too_long


@pytest.mark.parametrize("reserved", ["NHN_CLOUD", "OS"])
def test_the_default_prefixes_are_reserved(tmp_path, reserved):
    problems = problems_of(root_with(tmp_path, nhn_cloud(reserved)))
    assert problems == [
        f"reconciler.yaml:6:16: cloud.credentials: {reserved} is reserved (the default {reserved}_* variables are "
        "read without it); name a prefix of this root's own, like PARTNER for PARTNER_USERNAME and "
        "PARTNER_API_PASSWORD, or leave cloud.credentials out to use NHN_CLOUD_*"
    ]


def test_a_simulator_root_refuses_the_key(tmp_path):
    # A simulator acts as its seed's users: a prefix there would be ignored, so it is refused instead.
    problems = problems_of(root_with(tmp_path, "kind: simulator\ncredentials: PARTNER\n"))
    assert problems == [
        "reconciler.yaml:5:3: cloud.credentials: not allowed here "
        "(credentials is for kind: nhn only; a simulator root acts as its seed's users)"
    ]


def test_the_schema_states_the_prefix_form_and_describes_it():
    schema = load_schema("root")["properties"]["cloud"]["properties"]["credentials"]
    assert schema["pattern"] == "^[A-Z][A-Z0-9_]{0,30}$"
    assert "PARTNER_API_PASSWORD" in schema["description"] and "never a fallback" in schema["description"]


# -- the variables a prefix reads --------------------------------------------------------------------------


def test_a_prefix_names_exactly_its_three_variables():
    assert credential_names("PARTNER") == {
        "username": ("PARTNER_USERNAME",),
        "password": ("PARTNER_API_PASSWORD",),
        "tenant_id": ("PARTNER_TENANT_ID",),
    }
    assert credential_names(None)["username"] == ("NHN_CLOUD_USERNAME", "OS_USERNAME")


DEFAULTS = {
    "NHN_CLOUD_USERNAME": "default@example.com",
    "NHN_CLOUD_API_PASSWORD": "default-secret",
    "NHN_CLOUD_TENANT_ID": OTHER,
    "OS_USERNAME": "os@example.com",
    "OS_PASSWORD": "os-secret",
    "OS_TENANT_ID": OTHER,
    "NHN_CLOUD_IDENTITY_URL": "https://identity.example.com/v2.0",
}


def test_a_prefix_reads_its_own_variables_and_the_shared_identity_url():
    env = {**DEFAULTS, "PARTNER_USERNAME": "bot@example.com", "PARTNER_API_PASSWORD": SECRET}
    creds = Credentials.from_environment(env, prefix="PARTNER")
    assert creds == Credentials("bot@example.com", SECRET, "https://identity.example.com/v2.0", None)
    assert creds.tenant_variable == "PARTNER_TENANT_ID"


def test_a_prefix_tenant_id_is_read_and_its_variable_remembered():
    env = {"PARTNER_USERNAME": "bot", "PARTNER_API_PASSWORD": SECRET, "PARTNER_TENANT_ID": PROJECT}
    creds = Credentials.from_environment(env, prefix="PARTNER")
    assert (creds.tenant_id, creds.tenant_variable) == (PROJECT, "PARTNER_TENANT_ID")


def test_the_default_tenant_variable_is_the_one_that_gave_it():
    env = {"OS_USERNAME": "os", "OS_PASSWORD": SECRET, "OS_PROJECT_ID": PROJECT}
    assert Credentials.from_environment(env).tenant_variable == "OS_PROJECT_ID"


@pytest.mark.parametrize(
    ("given", "missing"),
    [
        ({}, "PARTNER_USERNAME and PARTNER_API_PASSWORD"),
        ({"PARTNER_USERNAME": "bot"}, "PARTNER_API_PASSWORD"),
        ({"PARTNER_API_PASSWORD": SECRET}, "PARTNER_USERNAME"),
        ({"PARTNER_USERNAME": "bot", "PARTNER_API_PASSWORD": ""}, "PARTNER_API_PASSWORD"),
    ],
)
def test_a_missing_prefix_variable_is_named_and_never_filled_from_the_defaults(given, missing):
    with pytest.raises(CloudConfigError) as caught:
        Credentials.from_environment({**DEFAULTS, **given}, prefix="PARTNER")
    assert str(caught.value) == f"no credentials for cloud.credentials PARTNER: {missing} not set"
    assert "never NHN_CLOUD_* or OS_*" in (caught.value.hint or "")
    for value in (SECRET, "default-secret", "os-secret"):
        assert value not in str(caught.value) + (caught.value.hint or "")
