"""The execution-time guards, as data: which live images and servers an action of one key may touch,
judged from the root, whatever the plan says. Each case says why."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from reconciler.apply_guard import GuardContext, image_refusal, server_refusal
from reconciler.cloud.records import Image, Server
from reconciler.desired import ShareRule
from reconciler.markers import temporary_name

SET = "web-platform"
CTX = GuardContext(
    SET,
    adopted={"web": frozenset({("KR1", "00000000-0000-4000-8000-0000000000ad")})},
    moved_from={"web": "web-old"},
    instances={"web": ("KR1", "web-golden-01")},
)


def image(props=None, *, id_="00000000-0000-4000-8000-000000000011", region="KR1", name="web-base"):
    return Image(region, id_, name, "active", "private", False, "p", 0, 0, 1, 1, None, None, "qcow2", "bare", (),
                 None, None, MappingProxyType(props or {}))  # fmt: skip


MINE = {"reconciler_set": SET, "reconciler_key": "web"}
CASES = [
    ("this set's image of this key", "update", image(MINE), True),
    (
        "this set's copy of this key in its region",
        "protect",
        image({**MINE, "reconciler_copy_of": "x"}, region="JP1"),
        True,
    ),
    ("an unmanaged image", "delete", image({}), False),
    (
        "another set's image of the same key",
        "share",
        image({"reconciler_set": "other", "reconciler_key": "web"}),
        False,
    ),
    ("another key of this set", "unprotect", image({"reconciler_set": SET, "reconciler_key": "api"}), False),
    ("the image the root adopts for this key", "adopt", image({}, id_="00000000-0000-4000-8000-0000000000AD"), True),
    ("the key moved_from names", "adopt", image({"reconciler_set": SET, "reconciler_key": "web-old"}), True),
    (
        "the temporary-name token of this key and region",
        "update",
        image({}, name=temporary_name("web", SET, "web", "KR1")),
        True,
    ),
    ("a token of another region", "update", image({}, name=temporary_name("web", SET, "web", "JP1")), False),
    ("this key's image, but in another region than the action's", "delete", image(MINE, region="KR2"), False),
]


@pytest.mark.parametrize(("reason", "kind", "live", "allowed"), CASES, ids=[c[0] for c in CASES])
def test_images(reason, kind, live, allowed):
    region = "JP1" if "copy" in reason else "KR1"
    why = image_refusal(CTX, kind, "web", region, live)
    assert (why is None) is allowed, f"{reason}: {why}"
    if not allowed:
        assert "was not touched" in why and live.id in why


def test_an_image_this_run_made_or_unprotected():
    foreign = image({})
    assert image_refusal(CTX, "update", "web", "KR1", foreign, created_here={foreign.id}) is None
    assert image_refusal(CTX, "protect", "web", "KR1", foreign, unprotected_here={foreign.id}) is None
    assert image_refusal(CTX, "delete", "web", "KR1", foreign, unprotected_here={foreign.id}) is not None, (
        "only the bracket's closing protect, never a delete"
    )


def server(name="web-golden-01", id_="00000000-0000-4000-8000-000000000001", metadata=None):
    return Server("KR1", id_, name, "ACTIVE", None, "f", None, None, None, MappingProxyType(metadata or {}))


@pytest.mark.parametrize(
    ("reason", "kind", "key", "live", "allowed"),
    [
        ("the declared instance, by name", "stop_instance", "web", server(), True),
        ("an unrelated server", "stop_instance", "web", server(name="db-01"), False),
        ("a key with no instance source", "start_instance", "api", server(), False),
        (
            "marked stopped by another set",
            "stop_instance",
            "web",
            server(metadata={"reconciler_stopped_by": "other:t"}),
            False,
        ),
        (
            "marked by this set: a start still goes",
            "start_instance",
            "web",
            server(metadata={"reconciler_stopped_by": f"{SET}:t"}),
            True,
        ),
    ],
)
def test_servers(reason, kind, key, live, allowed):
    assert (server_refusal(CTX, kind, key, "KR1", live) is None) is allowed, reason


def test_the_declared_instance_by_id_matches_case_blind():
    ctx = GuardContext(SET, instances={"web": ("KR1", "00000000-0000-4000-8000-00000000000A")})
    assert server_refusal(ctx, "create", "web", "KR1", server(id_="00000000-0000-4000-8000-00000000000a")) is None


def test_a_leftover_delete_touches_only_an_image_with_this_sets_token():
    from reconciler.markers import leftover_key, name_token, set_token

    k = name_token(SET, "gone", "KR1")
    key = leftover_key(SET, k)
    mine = image({}, name=f"gone~rc-{set_token(SET)}{k}")
    other_set = image({}, name=f"gone~rc-{set_token('other')}{k}")
    assert image_refusal(CTX, "delete", key, "KR1", mine) is None
    assert image_refusal(CTX, "delete", key, "KR1", other_set) is not None, "another set's leftover"
    assert image_refusal(CTX, "update", key, "KR1", mine) is not None, "a leftover is only ever deleted"
    assert image_refusal(CTX, "delete", key, "JP1", mine) is not None, "the image lies in another region"


# -- guard (4): a consumer's own member status on an image another project shares ------------------

OWNER = "3f0c9d2e6b7a4f0e9a1b2c3d4e5f6a7b"
RULES = (
    ShareRule("accepted", OWNER, "rules.yaml", family="web-base"),
    ShareRule("accepted", OWNER, "rules.yaml", name="ubuntu-*"),
    ShareRule("rejected", OWNER, "rules.yaml", name="ubuntu-*-old"),
)
CONSUMER_CTX = GuardContext("consumer", rules=RULES)


def shared(props=None, *, owner=OWNER, name="web-base-2026-12", region="KR1"):
    return Image(region, "00000000-0000-4000-8000-0000000000f1", name, "active", "shared", False, owner, 0, 0, 1, 1,
                 None, None, "qcow2", "bare", (), None, None, MappingProxyType(props or {}))  # fmt: skip


STATUS_CASES = [
    ("an accept rule's family matches now", "accept", shared({"reconciler_family": "web-base"}), True),
    ("an accept rule's glob matches now", "accept", shared(name="ubuntu-24.04"), True),
    ("no rule names the image now (renamed since the plan)", "accept", shared(name="debian-12"), False),
    ("another owner's image under a matching name", "accept", shared(name="ubuntu-24.04", owner="0" * 32), False),
    ("a reject rule matches too: reject wins, no accept", "accept", shared(name="ubuntu-24.04-old"), False),
    ("a reject rule matches now", "reject", shared(name="ubuntu-24.04-old"), True),
    ("only an accept rule matches: no reject", "reject", shared(name="ubuntu-24.04"), False),
    ("the image lies in another region than the action's", "accept", shared(name="ubuntu-1", region="JP1"), False),
    (
        "this set's markers are no pass for a member status",
        "accept",
        shared({"reconciler_set": SET, "reconciler_key": "web"}, name="x"),
        False,
    ),
]


@pytest.mark.parametrize(("reason", "kind", "live", "allowed"), STATUS_CASES, ids=[c[0] for c in STATUS_CASES])
def test_member_status(reason, kind, live, allowed):
    ctx = CONSUMER_CTX if "markers" not in reason else GuardContext(SET, rules=RULES)
    why = image_refusal(ctx, kind, "", "KR1", live, created_here={live.id} if "markers" in reason else ())
    assert (why is None) is allowed, f"{reason}: {why}"
    if not allowed:
        assert "member status was not changed" in why and live.id in why


def test_a_root_without_rules_never_changes_a_member_status():
    assert image_refusal(GuardContext("consumer"), "accept", "", "KR1", shared(name="ubuntu-1")) is not None
