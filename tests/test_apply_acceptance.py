"""Apply's accept and reject with a fake cloud client (the consumer's own): the member status PUT, made only
after the `expects` read and guard (4) pass: the root's rules must want that status for the image as it
reads now."""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType
from typing import Any

from reconciler.apply import DONE, STALE, Applier
from reconciler.apply_guard import GuardContext
from reconciler.cloud.errors import Forbidden, NotFound
from reconciler.cloud.records import Image, Member
from reconciler.desired import CloudConfig, DesiredState, RootConfig, Settings, ShareRule
from reconciler.plan import Action, ActionId, Change, Plan, Reason, Ref, Target

CONSUMER = "c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0"
OWNER = "3f0c9d2e6b7a4f0e9a1b2c3d4e5f6a7b"
SHARED = "00000000-0000-4000-8000-0000000000f1"
RULES = (
    ShareRule("accepted", OWNER, "rules.yaml", name="ubuntu-*"),
    ShareRule("rejected", OWNER, "rules.yaml", name="*-old"),
)


def desired() -> DesiredState:
    root = RootConfig(Path("/root"), "consumer", CloudConfig("nhn", CONSUMER, ("KR1",)), None, Settings())
    return DesiredState(root, (), ("rules.yaml",), rules=RULES)


def live(name: str, owner: str = OWNER) -> Image:
    return Image("KR1", SHARED, name, "active", "shared", False, owner, 0, 0, 1, 1, None, None, "qcow2", "bare", (),
                 None, None, MappingProxyType({}))  # fmt: skip


class Consumer:
    """The consumer's client: the image it reads, and the member-status calls it gets."""

    project_id = CONSUMER

    def __init__(self, image: Image) -> None:
        self.image = image
        self.calls: list[tuple[str, str, str]] = []

    def get_image(self, region: str, image_id: str) -> Image:
        assert (region, image_id) == ("KR1", SHARED)
        return self.image

    def find_image(self, region: str, image_id: str) -> Image | None:
        return self.get_image(region, image_id)

    def set_member_status(self, region: str, image_id: str, status: str) -> Member:
        self.calls.append((region, image_id, status))
        return Member(image_id, CONSUMER, status)

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"unexpected call: {name}")


def status_action(kind: str, before: str, after: str) -> Action:
    return Action(
        str(ActionId.of_image(kind, SHARED, "KR1")),
        kind,
        "",
        "KR1",
        Reason(f"{kind}_rule", "a rule matches", "rules.yaml:2"),
        image_id=SHARED,
        changes=MappingProxyType({"member_status": Change(before, after)}),
        expects=MappingProxyType({str(Ref.image("KR1", SHARED)): {"owner": OWNER}}),
        details=MappingProxyType({"owner": OWNER, "name": "ubuntu-24.04"}),
    )


def run(client: Consumer, action: Action):
    plan = Plan("consumer", Target("nhn", CONSUMER, "https://identity.example", ("KR1",)), (action,))
    return Applier(client, plan, guard=GuardContext.from_desired(desired())).run()  # type: ignore[arg-type]


def test_an_accept_puts_this_projects_member_status():
    client = Consumer(live("ubuntu-24.04"))
    report = run(client, status_action("accept", "pending", "accepted"))
    assert [(r.status, r.image_id) for r in report.results] == [(DONE, SHARED)]
    assert client.calls == [("KR1", SHARED, "accepted")]


def test_a_reject_puts_rejected():
    client = Consumer(live("ubuntu-20.04-old"))
    report = run(client, status_action("reject", "accepted", "rejected"))
    assert [r.status for r in report.results] == [DONE]
    assert client.calls == [("KR1", SHARED, "rejected")]


def test_an_image_no_rule_wants_accepted_now_is_left_alone():
    """Renamed by its owner since the plan: no accept rule matches it now (guard 4)."""
    client = Consumer(live("debian-12"))
    report = run(client, status_action("accept", "pending", "accepted"))
    assert [r.status for r in report.results] == [STALE]
    assert "member status was not changed" in report.results[0].message
    assert client.calls == []


def test_an_image_a_reject_rule_now_matches_is_not_accepted():
    client = Consumer(live("ubuntu-24.04-old"))
    report = run(client, status_action("accept", "pending", "accepted"))
    assert [r.status for r in report.results] == [STALE] and client.calls == []


def test_an_image_of_another_owner_under_that_id_is_stale_before_the_guard():
    client = Consumer(live("ubuntu-24.04", owner="0" * 32))
    report = run(client, status_action("accept", "pending", "accepted"))
    assert [r.status for r in report.results] == [STALE]
    assert "owner" in report.results[0].message and client.calls == []


def test_the_guard_context_takes_the_roots_rules():
    assert GuardContext.from_desired(desired()).rules == RULES


class Unshared(Consumer):
    """The owner unshared the image (404 on read) or made it public (403 on the member PUT) meanwhile."""

    def __init__(self, image: Image, *, on_read: bool) -> None:
        super().__init__(image)
        self.on_read = on_read

    def get_image(self, region: str, image_id: str) -> Image:
        if self.on_read:
            raise NotFound(404, "No image found", service="image", method="GET", path=f"/v2/images/{image_id}")
        return super().get_image(region, image_id)

    def set_member_status(self, region: str, image_id: str, status: str) -> Member:
        raise Forbidden(
            403, "Not allowed to update members", service="image", method="PUT", path=f"/v2/images/{image_id}/members"
        )


def test_an_image_the_owner_stopped_sharing_is_stale_not_a_failure():
    """The owner may unshare or publish at any time: the accept has nothing left to set, which is what a
    stale result says (a failure would read as the tool's or the cloud's fault)."""
    for on_read in (True, False):
        report = run(Unshared(live("ubuntu-24.04"), on_read=on_read), status_action("accept", "pending", "accepted"))
        assert [r.status for r in report.results] == [STALE], report.results
        assert "no longer shared with this project" in report.results[0].message
