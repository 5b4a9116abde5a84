"""A retirement at apply (issue 23): the delete of a declared family's old version (its `family` field) whose
image gained a user since the plan is reported deferred, not failed: the image stays, the rest of the run goes
on, and the report still counts as a success (the exit code does not change). Any other delete whose image
gained a user stays stale (tests/test_apply_in_use.py)."""

from __future__ import annotations

from test_apply_fake_client import SET, plan_of
from test_apply_in_use import IMAGE, OTHER, booted_from, delete_of, deleting

from reconciler.apply import DEFERRED, DONE, STALE, Applier, failures, summarise
from reconciler.apply_guard import GuardContext
from reconciler.plan import Action, Reason


def retirement_of(image_id: str, region: str = "KR1") -> Action:
    plain = delete_of(image_id, region)
    return Action(
        plain.id.replace("delete:", "delete:r", 1), "delete", "web", region,
        Reason("retired", "version 2026-09 of web-base is older than the newest 3: retired"),
        image_id=image_id, details={"family": "web-base"},
    )  # fmt: skip


def test_a_retirement_whose_image_gained_a_user_is_deferred_and_the_run_succeeds():
    client = deleting([booted_from(IMAGE)], [])
    plan = plan_of(retirement_of(IMAGE), retirement_of(OTHER))  # OTHER: nobody uses it
    report = Applier(client, plan, guard=GuardContext(SET)).run()

    assert [r.status for r in report.results] == [DEFERRED, DONE], [r.message for r in report.results]
    assert "booted-later" in report.results[0].message and "deferred" in report.results[0].message
    assert client.deleted == [("KR1", OTHER)]
    assert report.succeeded and list(failures(report)) == []
    assert report.to_json()["outcome"] == "applied" and report.to_json()["summary"][DEFERRED] == 1
    assert "1 deferred" in summarise(report)


def test_a_retirement_is_deferred_even_when_deletes_in_use_are_allowed_and_another_delete_stays_stale():
    client = deleting([booted_from(IMAGE), booted_from(OTHER, server_id=OTHER)], [])
    allowed = Applier(client, plan_of(retirement_of(IMAGE)), guard=GuardContext(SET, delete_in_use="allow")).run()
    assert [r.status for r in allowed.results] == [DEFERRED]
    refused = Applier(client, plan_of(delete_of(OTHER)), guard=GuardContext(SET)).run()
    assert [r.status for r in refused.results] == [STALE] and not refused.succeeded
    assert client.deleted == []
