"""The acceptance concern, as pure planner tests: a consumer root's accept: and reject: rules against the
images other projects share with it (Snapshot.shared), built by hand: which status each image wants (reject
wins), the warnings (overlap, a rule that matches nothing), a status set by hand overridden, the info count,
the keyless actions' ids, and a partial plan leaving them out."""

from __future__ import annotations

import json
from pathlib import Path
from types import MappingProxyType

import jsonschema
import pytest

from reconciler.cloud.records import Image
from reconciler.desired import CloudConfig, DesiredState, RootConfig, Settings, ShareRule
from reconciler.live import SharedImage, Snapshot
from reconciler.location import Location
from reconciler.plan import ActionId, Target
from reconciler.plan_codec import plan_from_json, plan_to_json
from reconciler.planner import build_plan

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "schemas" / "plan.schema.json").read_text(encoding="utf-8"))
CONSUMER = "c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0"
OWNER = "3f0c9d2e6b7a4f0e9a1b2c3d4e5f6a7b"
OTHER = "0aa1bb22cc33dd44ee55ff6600112233"
TARGET = Target("simulator", CONSUMER, "loopback", ("JP1", "KR1"), ".reconciler/sim-state.json")
WEB_1 = "00000000-0000-4000-8000-000000000a01"
WEB_2 = "00000000-0000-4000-8000-000000000a02"
UBUNTU = "00000000-0000-4000-8000-000000000b01"
JUNK = "00000000-0000-4000-8000-000000000c01"


def root() -> RootConfig:
    return RootConfig(Path("/root"), "consumer", CloudConfig("nhn", CONSUMER, ("JP1", "KR1")), None, Settings())


def rule(wants: str, line: int, owner: str = OWNER, **match: str) -> ShareRule:
    return ShareRule(wants, owner, "rules.yaml", **match, location=Location("rules.yaml", line, 5))


def accept(line: int, owner: str = OWNER, **match: str) -> ShareRule:
    return rule("accepted", line, owner, **match)


def reject(line: int, owner: str = OWNER, **match: str) -> ShareRule:
    return rule("rejected", line, owner, **match)


def shared(image_id: str, name: str, status: str = "pending", *, owner: str = OWNER, region: str = "KR1", **props):
    image = Image(region, image_id, name, "active", "shared", False, owner, 0, 0, 1, 1, None, None, "qcow2", "bare",
                  (), None, None, MappingProxyType(props))  # fmt: skip
    return SharedImage(image, status)


def plan(rules: tuple[ShareRule, ...], *images: SharedImage, targets: frozenset[str] = frozenset()):
    by_region: dict[str, list[SharedImage]] = {"JP1": [], "KR1": []}
    for each in images:
        by_region[each.image.region].append(each)
    snapshot = Snapshot(
        CONSUMER, ("JP1", "KR1"), ("JP1", "KR1"),
        images=MappingProxyType({"JP1": (), "KR1": ()}),
        shared=MappingProxyType({r: tuple(sorted(v, key=lambda s: s.image.id)) for r, v in by_region.items()}),
    )  # fmt: skip
    desired = DesiredState(root(), (), ("rules.yaml",), rules=rules)
    return build_plan(desired, snapshot, TARGET, targets=targets)


def statuses(result) -> dict[str, tuple[str, str]]:
    """What the plan does to each image: (kind, the status after)."""
    return {a.image_id: (a.kind, a.changes["member_status"].after) for a in result.actions}


def codes(result) -> list[str]:
    return [w.code for w in result.warnings]


FAMILY = {"reconciler_family": "web-base", "reconciler_set": "platform"}


@pytest.mark.parametrize(
    ("reason", "rules", "wanted"),
    [
        ("a family rule matches the family marker", (accept(2, family="web-base"),), {WEB_1, WEB_2}),
        ("a family rule narrowed to the set", (accept(2, family="web-base", set="platform"),), {WEB_1, WEB_2}),
        ("a family rule narrowed to another set", (accept(2, family="web-base", set="other"),), set()),
        ("an image rule matches one id", (accept(2, image=WEB_2),), {WEB_2}),
        ("a whole-name glob", (accept(2, name="ubuntu-*"),), {UBUNTU}),
        ("a glob matches the whole name only", (accept(2, name="ubuntu"),), set()),
        ("a glob is case-sensitive", (accept(2, name="Ubuntu-*"),), set()),
        ("the owner must be the rule's", (accept(2, OTHER, name="*"),), {JUNK}),
    ],
)
def test_accept_rules_match_by_owner_and_family_image_or_name(reason, rules, wanted):
    result = plan(
        rules,
        shared(WEB_1, "web-base-2026-11", **FAMILY),
        shared(WEB_2, "web-base-2026-12", **FAMILY),
        shared(UBUNTU, "ubuntu-24.04"),
        shared(JUNK, "ubuntu-junk", owner=OTHER),
    )
    assert {i for i, (kind, after) in statuses(result).items() if (kind, after) == ("accept", "accepted")} == wanted
    assert ("rule_matched_nothing" in codes(result)) == (not wanted)  # the owner may not have shared it yet


def test_reject_wins_over_accept_and_the_overlap_is_warned_naming_both_rules():
    result = plan((accept(2, name="ubuntu-*"), reject(7, name="*-24.04")), shared(UBUNTU, "ubuntu-24.04"))
    assert statuses(result) == {UBUNTU: ("reject", "rejected")}
    (overlap,) = [w for w in result.warnings if w.code == "rule_overlap"]
    assert "rules.yaml:2" in overlap.message and "rules.yaml:7" in overlap.message
    assert overlap.region == "KR1" and overlap.key is None


def test_an_image_no_rule_names_is_left_alone_and_an_accepted_one_is_counted():
    result = plan(
        (accept(2, name="ubuntu-*"),),
        shared(UBUNTU, "ubuntu-24.04", "accepted"),
        shared(WEB_1, "web-base", "accepted"),
        shared(WEB_2, "web-other", "pending"),
    )
    assert result.actions == ()
    assert result.info["accepted_unnamed"] == 1  # web-base: accepted by hand, no rule names it


def test_a_status_already_wanted_plans_nothing():
    result = plan((accept(2, image=UBUNTU), reject(3, image=WEB_1)), shared(UBUNTU, "u", "accepted"),
                  shared(WEB_1, "w", "rejected"))  # fmt: skip
    assert result.actions == () and result.warnings == ()
    assert result.info["accepted_unnamed"] == 0  # the accepted image is named by a rule


@pytest.mark.parametrize(("before", "rules", "kind"), [("rejected", (accept(4, image=UBUNTU),), "accept"),
                                                       ("accepted", (reject(4, image=UBUNTU),), "reject")])  # fmt: skip
def test_a_rule_overrides_a_status_set_by_hand_and_the_reason_says_so(before, rules, kind):
    (action,) = plan(rules, shared(UBUNTU, "ubuntu-24.04", before)).actions
    assert action.kind == kind
    assert action.reason.code == "status_overridden"
    assert "set by hand" in action.reason.message and before in action.reason.message
    assert action.reason.source == "rules.yaml:4"


def test_a_pending_image_is_accepted_with_the_rules_line_as_its_source():
    (action,) = plan((accept(3, name="ubuntu-*"),), shared(UBUNTU, "ubuntu-24.04")).actions
    assert action.reason.code == "accept_rule" and action.reason.source == "rules.yaml:3"
    assert action.changes["member_status"].before == "pending"
    assert action.details["owner"] == OWNER and action.details["name"] == "ubuntu-24.04"
    assert dict(action.expects) == {f"KR1/{UBUNTU}": {"owner": OWNER}}


def test_a_rule_that_matches_nothing_is_warned():
    result = plan((accept(2, name="ubuntu-*"), reject(5, OTHER, family="x")), shared(UBUNTU, "ubuntu-24.04"))
    (nothing,) = [w for w in result.warnings if w.code == "rule_matched_nothing"]
    assert nothing.source == "rules.yaml:5" and OTHER in nothing.message
    assert result.applicable


def test_the_actions_have_no_key_and_an_id_of_image_and_region():
    (action,) = plan((accept(2, image=UBUNTU),), shared(UBUNTU, "u", region="JP1")).actions
    assert action.key == "" and action.region == "JP1" and action.image_id == UBUNTU
    assert action.id == f"accept:{UBUNTU}:JP1"
    assert ActionId.parse(action.id) == ActionId("accept", "", "JP1", UBUNTU)
    assert str(ActionId.parse(action.id)) == action.id


def test_a_partial_plan_leaves_accept_and_reject_out():
    assert [a.kind for a in plan((accept(2, image=UBUNTU),), shared(UBUNTU, "u")).actions] == ["accept"]
    result = plan((accept(2, image=UBUNTU),), shared(UBUNTU, "u"), targets=frozenset({"web"}))
    assert not [a for a in result.actions if a.kind in ("accept", "reject")]


def test_a_plan_with_an_accept_is_format_1_1_valid_and_reads_back():
    result = plan((accept(2, image=UBUNTU), reject(3, image=WEB_1)), shared(UBUNTU, "u"), shared(WEB_1, "w"))
    document = plan_to_json(result)
    assert document["format_version"] == "1.1"
    assert document["summary"]["actions"] == {"accept": 1, "reject": 1}
    jsonschema.validate(document, SCHEMA)
    assert plan_to_json(plan_from_json(document)) == document


def test_a_plan_without_accept_or_reject_stays_format_1_and_a_1_1_document_must_hold_one():
    document = plan_to_json(plan((accept(2, image=UBUNTU),), shared(UBUNTU, "u", "accepted")))
    assert document["format_version"] == "1"
    jsonschema.validate(document, SCHEMA)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**document, "format_version": "2"}, SCHEMA)
    accepting = plan_to_json(plan((accept(2, image=UBUNTU),), shared(UBUNTU, "u")))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**accepting, "format_version": "1"}, SCHEMA)


def test_a_root_without_rules_reads_no_shared_image_and_says_nothing_of_them():
    assert plan((accept(2, image=WEB_1),), shared(UBUNTU, "u", "accepted")).info["accepted_unnamed"] == 1
    result = plan((), shared(UBUNTU, "u", "accepted"))
    assert result.actions == () and result.warnings == ()
    assert "accepted_unnamed" not in result.info  # a plan without rules is what it was before rules existed


def test_text_and_markdown_show_the_image_its_owner_and_the_status_change_with_no_key():
    from reconciler.render.markdown import render_markdown
    from reconciler.render.text import render_text

    document = plan_to_json(plan((accept(2, image=WEB_1), reject(3, image=UBUNTU)), shared(WEB_1, "web", "rejected"),
                                 shared(UBUNTU, "ubuntu-24.04")))  # fmt: skip
    text = render_text(document)
    assert '  + accept         -         KR1   "web" 0000…0a01 of project 3f0c…6a7b: rejected -> accepted' in text
    assert (
        '  ~ reject         -         KR1   "ubuntu-24.04" 0000…0b01 of project 3f0c…6a7b: pending -> rejected' in text
    )
    assert "Plan: 1 to accept, 1 to reject (2 actions)." in text
    markdown = render_markdown(document)
    assert "**Safe to apply**: 2 actions" in markdown  # no risk: a consumer's own status
    assert "<details><summary><b>shared with this project</b>: accept, reject</summary>" in markdown
    assert "- `+ accept` KR1: `web` `0000…0a01` of project `3f0c…6a7b`: `rejected` -> `accepted`" in markdown
