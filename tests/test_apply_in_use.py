"""Apply's own in-use check (issue 22), with a cloud client made of functions (tests/test_apply_fake_client.py):
before its first delete in a region, apply lists that region's servers and volumes again, once per run,
and a delete whose image gained a user since the plan was made fails as stale, the image untouched.
`settings.delete_in_use: allow` (the guard's `delete_in_use`) deletes it anyway, without listing."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from test_apply_fake_client import SET, FakeClient, _fake, _unexpected, action, image, plan_of

from reconciler.apply import DONE, STALE, Applier
from reconciler.apply_guard import GuardContext
from reconciler.cloud.records import Server, Volume
from reconciler.plan import Action, Change, Dependency, Reason

IMAGE = "00000000-0000-4000-8000-0000000000a1"
OTHER = "00000000-0000-4000-8000-0000000000a2"
BOOTED = "10000000-0000-4000-8000-000000000009"
MADE_VOLUME = "50000000-0000-4000-8000-000000000009"


@dataclass
class UsageClient(FakeClient):
    """The fake client, with the two lists apply's in-use check reads."""

    list_servers: Callable[..., list[Server]] = _fake("list_servers")
    list_volumes: Callable[..., list[Volume]] = _fake("list_volumes")
    deleted: list[tuple[str, str]] = field(default_factory=list)


def booted_from(image_id: str | None, region: str = "KR1", server_id: str = BOOTED) -> Server:
    return Server(region, server_id, "booted-later", "ACTIVE", None, "f", None, None, None, MappingProxyType({}),
                  image_id)  # fmt: skip


def made_from(image_id: str | None, region: str = "KR1") -> Volume:
    return Volume(region, MADE_VOLUME, None, "available", image_id)


def deleting(servers: list[Server], volumes: list[Volume], **overrides: Any) -> UsageClient:
    """A cloud holding IMAGE and OTHER in every region, whose lists show `servers` and `volumes` (by region)."""
    functions: dict[str, Callable[..., Any]] = {
        "find_image": lambda region, image_id: image(image_id, region),
        "list_servers": lambda region: [s for s in servers if s.region == region],
        "list_volumes": lambda region: [v for v in volumes if v.region == region],
    }
    client = UsageClient(**{**functions, **overrides})
    client.delete_image = lambda region, image_id: client.deleted.append((region, image_id)) or True
    return client


def delete_of(image_id: str, region: str = "KR1") -> Action:
    return Action(f"delete:{image_id}:{region}", "delete", "web", region, Reason("test", "test"), image_id=image_id)


def test_a_delete_whose_image_gained_a_server_fails_stale_and_the_image_stays():
    client = deleting([booted_from(IMAGE)], [])
    report = Applier(client, plan_of(delete_of(IMAGE)), guard=GuardContext(SET)).run()

    assert [r.status for r in report.results] == [STALE]
    assert report.results[0].message == (
        f"image {IMAGE} is in use now by server booted-later ({BOOTED}): it was not deleted"
    )
    assert client.deleted == []


def test_a_delete_whose_image_gained_a_volume_fails_stale_without_a_guard_context_too():
    """A plan applied with no root at hand (no guard context) is checked the same: refusing is the default."""
    client = deleting([], [made_from(IMAGE)])
    report = Applier(client, plan_of(delete_of(IMAGE))).run()

    assert [(r.status, r.message) for r in report.results] == [
        (STALE, f"image {IMAGE} is in use now by volume {MADE_VOLUME}: it was not deleted")
    ]
    assert client.deleted == []


def test_with_allow_the_image_is_deleted_and_no_list_is_read():
    client = deleting([booted_from(IMAGE)], [made_from(IMAGE)])
    client.list_servers = _unexpected("list_servers")  # a listing fails the action
    client.list_volumes = _unexpected("list_volumes")
    report = Applier(client, plan_of(delete_of(IMAGE)), guard=GuardContext(SET, delete_in_use="allow")).run()

    assert [r.status for r in report.results] == [DONE], [r.message for r in report.results]
    assert client.deleted == [("KR1", IMAGE)]


def test_users_of_another_image_or_region_do_not_stop_a_delete():
    servers = [booted_from(OTHER), booted_from(IMAGE, "JP1"), booted_from(None, server_id=OTHER)]  # a volume root
    volumes = [made_from(None), made_from(IMAGE, "JP1")]
    listed: list[str] = []
    client = deleting(
        servers,
        volumes,
        list_servers=lambda region: listed.append(region) or [s for s in servers if s.region == region],
    )
    report = Applier(client, plan_of(delete_of(IMAGE)), guard=GuardContext(SET)).run()

    assert [r.status for r in report.results] == [DONE], [r.message for r in report.results]
    assert listed == ["KR1"], "KR1's servers were listed before the delete, and only KR1's"
    assert client.deleted == [("KR1", IMAGE)]


def test_each_region_is_listed_once_per_run_before_its_first_delete_and_only_where_an_image_is_deleted():
    """Four deletes in KR1 on eight threads list KR1 once; JP1's one delete lists JP1 once; KR2 has an update
    and a delete of an image already gone (the goal met): nothing is listed there."""
    listed: Counter[tuple[str, str]] = Counter()
    lock = threading.Lock()

    def counted(kind: str) -> Callable[[str], list]:
        def call(region: str) -> list:
            with lock:
                listed[(kind, region)] += 1
            return []

        return call

    gone = "00000000-0000-4000-8000-0000000000ff"
    client = deleting(
        [],
        [],
        list_servers=counted("servers"),
        list_volumes=counted("volumes"),
        find_image=lambda region, image_id: None if image_id == gone else image(image_id, region),
        get_image=lambda region, image_id: image(image_id, region, name="a"),
        update_image=lambda region, image_id, ops: None,
    )
    deletes = [delete_of(f"00000000-0000-4000-8000-00000000000{n}") for n in range(4)]
    update = action("update", "KR2", image_id=OTHER, changes={"name": Change("a", "b")})
    plan = plan_of(*deletes, delete_of(IMAGE, "JP1"), update, delete_of(gone, "KR2"))
    report = Applier(client, plan, parallelism=8, guard=GuardContext(SET)).run()

    assert [r.status for r in report.results] == [DONE] * 7, [r.message for r in report.results]
    assert listed == {("servers", "KR1"): 1, ("volumes", "KR1"): 1, ("servers", "JP1"): 1, ("volumes", "JP1"): 1}
    assert len(client.deleted) == 5


def test_a_listing_older_than_a_minute_is_made_again_before_the_next_delete():
    """Deletes come last, after creates and copies that may take an hour: a server booted between two
    deletes of one region, more than USAGE_MAX_AGE_S after the first listing, stops the second."""
    from reconciler.apply import USAGE_MAX_AGE_S

    servers: list[Server] = []
    now = [0.0]

    def delete(region: str, image_id: str) -> bool:
        client.deleted.append((region, image_id))
        servers.append(booted_from(OTHER))  # booted from the second image while the first was deleted
        now[0] += USAGE_MAX_AGE_S + 1
        return True

    client = deleting(servers, [], list_servers=lambda region: list(servers))
    client.delete_image = delete
    first, second = delete_of(IMAGE), delete_of(OTHER)
    second = Action(second.id, "delete", "web", "KR1", second.reason, image_id=OTHER,
                    depends_on=(Dependency(first.id, "one after the other"),))  # fmt: skip
    report = Applier(client, plan_of(first, second), guard=GuardContext(SET), clock=lambda: now[0]).run()

    assert [r.status for r in report.results] == [DONE, STALE], [r.message for r in report.results]
    assert client.deleted == [("KR1", IMAGE)]
