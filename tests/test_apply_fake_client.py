"""Applier end to end with a cloud client made of functions (Crossplane's fake-client style): each test
gives only the calls it expects, any other call fails the action, and no simulator, network or patching
is involved. The scheduling rules themselves are tested as data in tests/unit/test_apply_schedule.py."""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from reconciler.apply import DONE, FAILED, INTERRUPTED, SKIPPED, STALE, Applier
from reconciler.cancel import Cancellation
from reconciler.cloud.errors import CloudCancelled, CloudError
from reconciler.cloud.records import Image, PatchOp, Server
from reconciler.plan import Action, Change, Dependency, Plan, Reason, Ref, Target

SET = "web-platform"
IMAGE = "00000000-0000-4000-8000-0000000000a1"
SERVER = "00000000-0000-4000-8000-000000000001"
MADE = "00000000-0000-4000-8000-0000000000b2"


def _unexpected(name: str) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"unexpected call: {name}{args}")

    return call


def _fake(name: str) -> Any:
    return field(default_factory=lambda: _unexpected(name))


@dataclass
class FakeClient:
    """The CloudClient calls apply makes, each a function a test may replace; the rest fail when called."""

    project_id: str = "project"
    get_image: Callable[..., Image] = _fake("get_image")
    find_image: Callable[..., Image | None] = _fake("find_image")
    update_image: Callable[..., Any] = _fake("update_image")
    delete_image: Callable[..., bool] = _fake("delete_image")
    list_images: Callable[..., list[Image]] = _fake("list_images")
    wait_for_image: Callable[..., Image] = _fake("wait_for_image")
    create_image_from_server: Callable[..., str] = _fake("create_image_from_server")
    get_server: Callable[..., Server] = _fake("get_server")
    set_server_metadata: Callable[..., None] = _fake("set_server_metadata")
    delete_server_metadata: Callable[..., bool] = _fake("delete_server_metadata")
    stop_server: Callable[..., None] = _fake("stop_server")
    start_server: Callable[..., None] = _fake("start_server")
    wait_for_server: Callable[..., Server] = _fake("wait_for_server")
    add_member: Callable[..., Any] = _fake("add_member")
    remove_member: Callable[..., bool] = _fake("remove_member")


def image(id_: str = IMAGE, region: str = "KR1", *, name: str = "web-base", protected: bool = False) -> Image:
    return Image(region, id_, name, "active", "private", protected, "project", 0, 0, 1, 1, None, None, "qcow2",
                 "bare", (), None, None, MappingProxyType({"reconciler_set": SET, "reconciler_key": "web"}))  # fmt: skip


def server(status: str) -> Server:
    return Server("KR1", SERVER, "web-golden-01", status, None, "f", "u2.c2m4", "local", None, MappingProxyType({}))


def action(kind: str, region: str = "KR1", *, needs: tuple[str, ...] = (), **fields: Any) -> Action:
    return Action(
        f"{kind}:web:{region}",
        kind,
        "web",
        region,
        Reason("test", "test"),
        depends_on=tuple(Dependency(n, "test") for n in needs),
        **fields,
    )


def plan_of(*actions: Action) -> Plan:
    return Plan(SET, Target("simulator", "project", "http://127.0.0.1", ("KR1", "JP1")), actions)


class Events:
    """The progress callback's events, as (event, action id)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def __call__(self, event: str, act: Action, payload: Any) -> None:
        self.seen.append((event, act.id))


def test_an_update_reads_the_image_once_and_patches_only_what_differs():
    calls: list[Any] = []
    client = FakeClient(
        get_image=lambda region, image_id: calls.append(("get", image_id)) or image(),
        update_image=lambda region, image_id, ops: calls.append(("patch", image_id, list(ops))),
    )
    update = action(
        "update",
        image_id=IMAGE,
        changes={"name": Change("web-base", "web-base-2"), "os_version": Change(None, "24.04")},
        expects={str(Ref.image("KR1", IMAGE)): {"name": "web-base"}},
    )
    report = Applier(client, plan_of(update)).run()
    assert [(r.status, r.image_id) for r in report.results] == [(DONE, IMAGE)]
    assert calls == [
        ("get", IMAGE),  # the expects read is the observation the patch is made from
        ("patch", IMAGE, [PatchOp("replace", "name", "web-base-2"), PatchOp("add", "os_version", "24.04")]),
    ]


def test_a_stale_expectation_touches_nothing_and_stops_what_follows():
    client = FakeClient(get_image=lambda region, image_id: image(name="renamed-by-hand"))
    update = action("update", image_id=IMAGE, changes={"name": Change("web-base", "web-base-2")},
                    expects={str(Ref.image("KR1", IMAGE)): {"name": "web-base"}})  # fmt: skip
    protect = action("protect", image_id=IMAGE, needs=(update.id,))
    report = Applier(client, plan_of(update, protect)).run()
    assert [r.status for r in report.results] == [STALE, SKIPPED]
    assert "the plan expected 'web-base'" in report.results[0].message
    assert report.results[1].message == "an earlier action failed"


def test_a_protected_image_is_never_deleted():
    client = FakeClient(find_image=lambda region, image_id: image(protected=True))
    report = Applier(client, plan_of(action("delete", image_id=IMAGE))).run()
    assert [(r.status, r.message) for r in report.results] == [
        (STALE, f"image {IMAGE} is protected now: it was not deleted")
    ]


class Instance:
    """One server's power state behind the fake's functions, and the calls that changed it."""

    def __init__(self) -> None:
        self.status = "ACTIVE"
        self.calls: list[str] = []

    def client(self, **overrides: Callable[..., Any]) -> FakeClient:
        def set_status(status: str, call: str) -> None:
            self.calls.append(call)
            self.status = status

        functions: dict[str, Callable[..., Any]] = {
            "get_server": lambda region, server_id: server(self.status),
            "set_server_metadata": lambda region, server_id, metadata: self.calls.append("mark"),
            "delete_server_metadata": lambda region, server_id, key: self.calls.append("unmark") or True,
            "stop_server": lambda region, server_id: set_status("SHUTOFF", "stop"),
            "start_server": lambda region, server_id: set_status("ACTIVE", "start"),
            "wait_for_server": lambda region, server_id, status, timeout: server(self.status),
        }
        return FakeClient(**{**functions, **overrides})


def bracket() -> tuple[Action, Action, Action]:
    """Stop the instance, image it, start it again (the start compensates the stop)."""
    on_server = {"server": SERVER}
    shutoff = {str(Ref.server("KR1", SERVER)): {"status": "SHUTOFF"}}
    stop = action("stop_instance", details=on_server, expects={str(Ref.server("KR1", SERVER)): {"status": "ACTIVE"}})
    create = action("create", needs=(stop.id,), details={**on_server, "temporary_name": "web~rc-1"}, expects=shutoff)
    start = action("start_instance", needs=(create.id,), details={**on_server, "compensates": stop.id}, expects=shutoff)
    return stop, create, start


def test_a_failed_create_still_restarts_the_instance_it_stopped():
    instance = Instance()

    def create_fails(region, srv, name, metadata):
        raise CloudError("quota exceeded")

    report = Applier(instance.client(create_image_from_server=create_fails), plan_of(*bracket())).run()
    assert [(r.action.kind, r.status) for r in report.results] == [
        ("stop_instance", DONE),
        ("create", FAILED),
        ("start_instance", DONE),
    ]
    assert instance.calls == ["mark", "stop", "start", "unmark"]
    assert instance.status == "ACTIVE"


def test_a_cancellation_interrupts_the_create_runs_the_owed_restart_and_starts_nothing_else():
    instance = Instance()
    cancellation = Cancellation()
    deleted: list[str] = []

    def create_then_cancel(region, srv, name, metadata):
        cancellation.request(signal.SIGINT)  # as the signal handler would, while the image is being made
        return MADE

    def wait_cancelled(region, image_id, status, timeout):
        raise CloudCancelled("cancelled")

    client = instance.client(
        create_image_from_server=create_then_cancel,
        wait_for_image=wait_cancelled,
        delete_image=lambda region, image_id: deleted.append(image_id) or True,
    )
    stop, create, start = bracket()
    later = action("update", "JP1", image_id=IMAGE, needs=(create.id,), changes={"name": Change("a", "b")})
    events = Events()
    report = Applier(client, plan_of(stop, create, start, later), cancellation=cancellation, progress=events).run()
    assert report.outcome == "interrupted"
    assert [(r.action.kind, r.status) for r in report.results] == [
        ("stop_instance", DONE),
        ("create", INTERRUPTED),
        ("start_instance", DONE),
        ("update", SKIPPED),
    ]
    assert report.results[3].message == "cancelled before it started"
    assert deleted == [MADE], "the image being made is deleted, so the snapshot ends sooner"
    assert instance.calls == ["mark", "stop", "start", "unmark"]
    assert events.seen == [
        ("start", stop.id),
        ("end", stop.id),
        ("start", create.id),
        ("end", create.id),
        ("start", start.id),
        ("end", start.id),
        ("skip", later.id),
    ]


def test_region_caps_hold_with_real_threads_and_regions_run_side_by_side():
    lock = threading.Lock()
    busy: Counter[str] = Counter()
    most: Counter[str] = Counter()
    # The first action of each region waits for the other's: it passes only if both regions run at once.
    both_regions = threading.Barrier(2, timeout=10)
    first = {f"update:web-{n}:{region}" for n, region in ((0, "KR1"), (2, "JP1"))}

    def update_image(region, image_id, ops):
        with lock:
            busy[region] += 1
            most[region] = max(most[region], busy[region])
        try:
            if f"update:{image_id}:{region}" in first:
                both_regions.wait()
            time.sleep(0.02)
        finally:
            with lock:
                busy[region] -= 1

    def one(n: int, region: str) -> Action:
        return Action(f"update:web-{n}:{region}", "update", f"web-{n}", region, Reason("t", "t"),
                      image_id=f"web-{n}", changes={"name": Change("a", "b")})  # fmt: skip

    client = FakeClient(
        get_image=lambda region, image_id: image(image_id, region, name="a"),
        update_image=update_image,
    )
    plan = plan_of(one(0, "KR1"), one(1, "KR1"), one(2, "JP1"), one(3, "JP1"))
    report = Applier(client, plan, parallelism=4, region_parallelism=1).run()
    assert [r.status for r in report.results] == [DONE] * 4, [r.message for r in report.results]
    assert most == {"KR1": 1, "JP1": 1}
