"""`cloud.credentials: PARTNER` over real HTTP: a root that names an environment prefix authenticates as
PARTNER_USERNAME with PARTNER_API_PASSWORD, never as the NHN_CLOUD_* user set beside it; a missing variable
is named and ends the run (exit 1) before any request; NHN_CLOUD_* alone is no fallback; PARTNER_TENANT_ID
is checked against the root's project (and NHN_CLOUD_TENANT_ID is not); `doctor` and `--sim-state` honour
the prefix; the password never shows.

The simulator serves the identity API on loopback and stands for NHN Cloud: the root is `kind: nhn` and
NHN_CLOUD_IDENTITY_URL points at the simulator. Its project has two users, one per set of variables, so
either could authenticate: which one did is read from the tokens the simulator issued."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import requests
from support import OWNER, OWNER_USER, PARTNER, PARTNER_USER, standard_seed

from reconciler.cli import main
from reconciler.simulator.seed import state_from_seed
from reconciler.simulator.state import write_state_file
from reconciler.simulator.tokens import TokenStore

PARTNER_BOT = ("partner-bot@example.com", "partner-bot-secret-9Z")
VARIABLES = (
    "NHN_CLOUD_USERNAME",
    "NHN_CLOUD_API_PASSWORD",
    "NHN_CLOUD_TENANT_ID",
    "NHN_CLOUD_IDENTITY_URL",
    "OS_USERNAME",
    "OS_PASSWORD",
    "OS_TENANT_ID",
    "OS_PROJECT_ID",
    "OS_AUTH_URL",
    "PARTNER_USERNAME",
    "PARTNER_API_PASSWORD",
    "PARTNER_TENANT_ID",
)
STATS_ROUTE = "GET /_simulator/stats"


def two_user_seed() -> dict:
    """The standard seed, whose owner project has a second user: the one PARTNER_* names."""
    seed = standard_seed()
    (owner,) = [p for p in seed["projects"] if p["id"] == OWNER]
    owner["users"].append({"username": PARTNER_BOT[0], "api_password": PARTNER_BOT[1]})
    return seed


@pytest.fixture
def authenticated(monkeypatch) -> list[str]:
    """The username of every token the simulator issues during the test: who the server saw."""
    seen: list[str] = []
    original = TokenStore.issue

    def recording(self, project, user_id, username, *args, **kwargs):
        seen.append(username)
        return original(self, project, user_id, username, *args, **kwargs)

    monkeypatch.setattr(TokenStore, "issue", recording)
    return seen


@pytest.fixture
def sim(make_sim, monkeypatch):
    """A simulator on loopback standing for NHN Cloud, and an environment that names no user yet."""
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    server = make_sim(two_user_seed())
    monkeypatch.setenv("NHN_CLOUD_IDENTITY_URL", server.identity_url)
    return server


def requests_served(sim) -> int:
    """Every request the simulator answered, but the ones reading this count."""
    routes = requests.get(f"{sim.base_url}/_simulator/stats", timeout=10).json()["routes"]
    return sum(count for route, count in routes.items() if route != STATS_ROUTE)


def nhn_root(tmp_path: Path, credentials: str | None = "PARTNER", name: str = "root") -> Path:
    root = tmp_path / name
    root.mkdir()
    prefix = f", credentials: {credentials}" if credentials else ""
    (root / "reconciler.yaml").write_text(
        f"version: 1\nset: partner-images\ncloud: {{kind: nhn, project: {OWNER}, regions: [KR1]{prefix}}}\n"
        "defaults: {region: KR1}\n"
    )
    return root


def both_users(monkeypatch) -> None:
    """NHN_CLOUD_* and PARTNER_* both set, to different users of the same project."""
    monkeypatch.setenv("NHN_CLOUD_USERNAME", OWNER_USER[0])
    monkeypatch.setenv("NHN_CLOUD_API_PASSWORD", OWNER_USER[1])
    monkeypatch.setenv("PARTNER_USERNAME", PARTNER_BOT[0])
    monkeypatch.setenv("PARTNER_API_PASSWORD", PARTNER_BOT[1])


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# -- which user the server saw ------------------------------------------------------------------------


def test_a_prefixed_root_authenticates_as_its_own_user_not_the_default_one(
    sim, tmp_path, monkeypatch, capsys, authenticated
):
    both_users(monkeypatch)
    # The control first: the same environment, a root that names no prefix, the NHN_CLOUD_* user.
    code, _, err = run(capsys, "plan", str(nhn_root(tmp_path, credentials=None, name="default")), "--format", "json")
    assert code == 0, err
    assert authenticated and set(authenticated) == {OWNER_USER[0]}
    authenticated.clear()
    code, out, err = run(capsys, "plan", str(nhn_root(tmp_path)), "--format", "json")
    assert code == 0, err
    assert authenticated and set(authenticated) == {PARTNER_BOT[0]}
    assert json.loads(out)["target"]["project"] == OWNER


def test_the_target_line_names_the_prefix_user_variable(sim, tmp_path, monkeypatch, capsys):
    both_users(monkeypatch)
    code, out, err = run(capsys, "plan", str(nhn_root(tmp_path)))
    assert code == 0, err
    heading = out.splitlines()[0]
    assert "as PARTNER_USERNAME" in heading, heading
    assert PARTNER_BOT[0] not in out + err  # the variable is named, not its value


# -- missing variables: named, exit 1, nothing sent --------------------------------------------------------


def test_a_missing_partner_password_is_named_and_nothing_is_sent(sim, tmp_path, monkeypatch, capsys, authenticated):
    both_users(monkeypatch)
    monkeypatch.delenv("PARTNER_API_PASSWORD")
    before = requests_served(sim)
    code, out, err = run(capsys, "plan", str(nhn_root(tmp_path)))
    assert code == 1
    assert "error: no credentials for cloud.credentials PARTNER: PARTNER_API_PASSWORD not set" in err, err
    assert requests_served(sim) == before and authenticated == []


def test_an_empty_partner_password_counts_as_missing(sim, tmp_path, monkeypatch, capsys, authenticated):
    both_users(monkeypatch)
    monkeypatch.setenv("PARTNER_API_PASSWORD", "")
    code, _, err = run(capsys, "plan", str(nhn_root(tmp_path)))
    assert code == 1 and "PARTNER_API_PASSWORD not set" in err, err
    assert authenticated == []


@pytest.mark.parametrize(
    "defaults",
    [
        {"NHN_CLOUD_USERNAME": OWNER_USER[0], "NHN_CLOUD_API_PASSWORD": OWNER_USER[1]},
        {"OS_USERNAME": OWNER_USER[0], "OS_PASSWORD": OWNER_USER[1]},
    ],
    ids=["NHN_CLOUD", "OS"],
)
def test_no_fallback_to_the_default_variables(sim, tmp_path, monkeypatch, capsys, authenticated, defaults):
    for name, value in defaults.items():
        monkeypatch.setenv(name, value)
    before = requests_served(sim)
    code, _, err = run(capsys, "plan", str(nhn_root(tmp_path)))
    assert code == 1
    assert "PARTNER_USERNAME and PARTNER_API_PASSWORD not set" in err, err
    assert "never NHN_CLOUD_* or OS_*" in err
    assert requests_served(sim) == before and authenticated == []


# -- the tenant id -----------------------------------------------------------------------------------------


def test_a_partner_tenant_id_that_is_not_the_project_is_refused(sim, tmp_path, monkeypatch, capsys, authenticated):
    both_users(monkeypatch)
    monkeypatch.setenv("PARTNER_TENANT_ID", PARTNER)
    before = requests_served(sim)
    code, _, err = run(capsys, "plan", str(nhn_root(tmp_path)))
    assert code == 1
    assert f"PARTNER_TENANT_ID {PARTNER} is not cloud.project {OWNER}" in err, err
    assert requests_served(sim) == before and authenticated == []


def test_each_tenant_id_is_checked_only_for_the_roots_of_its_prefix(sim, tmp_path, monkeypatch, capsys, authenticated):
    # NHN_CLOUD_TENANT_ID belongs to the default user: a prefixed root neither reads nor checks it.
    both_users(monkeypatch)
    monkeypatch.setenv("NHN_CLOUD_TENANT_ID", PARTNER)
    monkeypatch.setenv("PARTNER_TENANT_ID", OWNER)
    code, _, err = run(capsys, "plan", str(nhn_root(tmp_path)))
    assert code == 0, err
    assert set(authenticated) == {PARTNER_BOT[0]}


# -- doctor and --sim-state --------------------------------------------------------------------------------


def test_doctor_reads_the_prefix_and_names_a_missing_variable(sim, tmp_path, monkeypatch, capsys, authenticated):
    monkeypatch.setenv("NHN_CLOUD_USERNAME", OWNER_USER[0])
    monkeypatch.setenv("NHN_CLOUD_API_PASSWORD", OWNER_USER[1])
    monkeypatch.setenv("PARTNER_USERNAME", PARTNER_BOT[0])
    code, _, err = run(capsys, "doctor", str(nhn_root(tmp_path)))
    assert code == 1 and "PARTNER_API_PASSWORD not set" in err, err
    assert authenticated == []


def test_doctor_authenticates_as_the_prefix_user(sim, tmp_path, monkeypatch, capsys, authenticated):
    both_users(monkeypatch)
    code, out, err = run(capsys, "doctor", str(nhn_root(tmp_path)), "--format", "json")
    assert code == 0, err
    assert json.loads(out)["target"]["project"] == OWNER
    assert authenticated and set(authenticated) == {PARTNER_BOT[0]}


@pytest.fixture
def sim_state(tmp_path) -> Path:
    """A state file for --sim-state whose owner project's first user is OWNER_USER, then PARTNER_BOT."""
    path = tmp_path / "state.json"
    write_state_file(path, state_from_seed(two_user_seed()))
    return path


def test_under_sim_state_a_prefixed_root_acts_as_its_prefix_user(
    sim, tmp_path, sim_state, monkeypatch, capsys, authenticated
):
    both_users(monkeypatch)
    code, _, err = run(capsys, "plan", str(nhn_root(tmp_path)), "--sim-state", str(sim_state), "--format", "json")
    assert code == 0, err
    assert set(authenticated) == {PARTNER_BOT[0]}


def test_under_sim_state_nhn_cloud_variables_are_no_fallback_either(
    sim, tmp_path, sim_state, monkeypatch, capsys, authenticated
):
    # A simulator target acts as its project's first seeded user unless the environment names one; for a
    # prefixed root only PARTNER_* can name it. NHN_CLOUD_* here is a user the simulator does not know.
    monkeypatch.setenv("NHN_CLOUD_USERNAME", "nobody@example.com")
    monkeypatch.setenv("NHN_CLOUD_API_PASSWORD", "not-a-password")
    code, _, err = run(capsys, "plan", str(nhn_root(tmp_path)), "--sim-state", str(sim_state), "--format", "json")
    assert code == 0, err
    assert set(authenticated) == {OWNER_USER[0]}


# -- secrets -----------------------------------------------------------------------------------------------


def test_the_prefix_password_never_shows(sim, tmp_path, monkeypatch, capsys, caplog):
    both_users(monkeypatch)
    caplog.set_level(logging.DEBUG)
    root = nhn_root(tmp_path)
    outputs: list[str] = []
    for args in (
        ("-vv", "plan", str(root)),
        ("plan", str(root), "--format", "json"),
        ("plan", str(root), "--format", "markdown"),
    ):
        code, out, err = run(capsys, *args)
        assert code == 0, err
        outputs += [out, err]
    monkeypatch.setenv("PARTNER_API_PASSWORD", PARTNER_BOT[1] + "-wrong")
    code, out, err = run(capsys, "-vv", "plan", str(root))
    assert code == 1 and "refused the credentials" in err, err
    outputs += [out, err, caplog.text]
    haystack = "\n".join(outputs)
    assert PARTNER_BOT[1] not in haystack


# -- several roots in one run: each root its own user, each tenant id checked against its own roots ----------


def partner_root(tmp_path: Path, prefix: str = "PARTNER") -> Path:
    """A root of the PARTNER project acting as that project's user, through `prefix`."""
    root = tmp_path / "partner-root"
    root.mkdir()
    (root / "reconciler.yaml").write_text(
        f"version: 1\nset: partner-images\ncloud: {{kind: nhn, project: {PARTNER}, regions: [KR1], "
        f"credentials: {prefix}}}\ndefaults: {{region: KR1}}\n"
    )
    return root


def owner_and_partner_users(monkeypatch) -> None:
    """NHN_CLOUD_* for the owner project's user, PARTNER_* for the partner project's user."""
    monkeypatch.setenv("NHN_CLOUD_USERNAME", OWNER_USER[0])
    monkeypatch.setenv("NHN_CLOUD_API_PASSWORD", OWNER_USER[1])
    monkeypatch.setenv("PARTNER_USERNAME", PARTNER_USER[0])
    monkeypatch.setenv("PARTNER_API_PASSWORD", PARTNER_USER[1])


def test_two_roots_each_authenticate_as_their_own_user(sim, tmp_path, monkeypatch, capsys, authenticated):
    owner_and_partner_users(monkeypatch)
    monkeypatch.setenv("NHN_CLOUD_TENANT_ID", OWNER)
    monkeypatch.setenv("PARTNER_TENANT_ID", PARTNER)
    owner, partner = nhn_root(tmp_path, credentials=None), partner_root(tmp_path)
    code, out, err = run(capsys, "plan", str(owner), str(partner), "--format", "json")
    assert code == 0, err
    assert [r["target"]["project"] for r in json.loads(out)["roots"]] == [OWNER, PARTNER]
    assert set(authenticated) == {OWNER_USER[0], PARTNER_USER[0]}
    lines = err.splitlines()
    assert "as PARTNER_USERNAME" in lines[2] and "as PARTNER_USERNAME" not in lines[1], lines


def test_a_tenant_id_is_checked_against_its_own_roots_only(sim, tmp_path, monkeypatch, capsys, authenticated):
    # PARTNER_TENANT_ID names the owner project: the partner root errors, naming it; the owner root, which
    # reads NHN_CLOUD_*, is still planned.
    owner_and_partner_users(monkeypatch)
    monkeypatch.setenv("NHN_CLOUD_TENANT_ID", OWNER)
    monkeypatch.setenv("PARTNER_TENANT_ID", OWNER)
    owner, partner = nhn_root(tmp_path, credentials=None), partner_root(tmp_path)
    code, out, err = run(capsys, "plan", str(owner), str(partner), "--format", "json")
    assert code == 1, err
    first, second = json.loads(out)["roots"]
    assert first["target"]["project"] == OWNER and "error" not in first
    assert f"PARTNER_TENANT_ID {OWNER} is not cloud.project {PARTNER}" in second["error"]["message"]
    assert set(authenticated) == {OWNER_USER[0]}


def test_a_missing_variable_of_one_root_is_named_and_never_taken_from_another(
    sim, tmp_path, monkeypatch, capsys, authenticated
):
    owner_and_partner_users(monkeypatch)
    monkeypatch.delenv("PARTNER_API_PASSWORD")
    owner, partner = nhn_root(tmp_path, credentials=None), partner_root(tmp_path)
    code, out, err = run(capsys, "plan", str(owner), str(partner))
    assert code == 1, err
    assert "PARTNER_API_PASSWORD not set" in out, out
    assert set(authenticated) == {OWNER_USER[0]}  # NHN_CLOUD_* served the owner root only
    code, _, err = run(capsys, "apply", str(owner), str(partner), "--auto-approve")
    assert code == 1 and "PARTNER_API_PASSWORD not set" in err, err


def test_a_malformed_prefix_is_located_in_its_root(sim, tmp_path, monkeypatch, capsys):
    owner_and_partner_users(monkeypatch)
    owner, partner = nhn_root(tmp_path, credentials=None), partner_root(tmp_path, prefix="partner-bot")
    code, out, err = run(capsys, "plan", str(owner), str(partner), "--format", "json")
    assert code == 1
    second = json.loads(out)["roots"][1]
    assert second["target"] is None and "reconciler.yaml:3" in json.dumps(second["error"]), second
