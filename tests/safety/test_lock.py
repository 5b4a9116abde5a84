"""The apply lock against a simulator served over loopback HTTP: claims with random ids (a deleted id can
never be created again on Glance), liveness on the server's clock, renewal and loss, and each way the
protocol can be attacked by timing: a same-second race, a lost answer, a renewal after expiry, a loser
whose cleanup fails, a legacy v1 lock. The simulator's clock is moved forward instead of waiting."""

from __future__ import annotations

import random
import threading
import time

import pytest
from support import OWNER, OWNER_USER

from reconciler import lock
from reconciler.cloud.auth import Credentials
from reconciler.cloud.errors import CloudError
from reconciler.cloud.nhn import connect
from reconciler.cloud.records import PatchOp
from reconciler.lock import LockedError, LockLostError, apply_lock, renew_once
from reconciler.lock_claims import CLAIM, HELD, HOLDER, LEGACY, LEGACY_EXPIRES, STATE, claim_name, iso, legacy_lock_id
from reconciler.lock_guard import LockGuardedClient

SET = "platform"
CLAIMS = "JP1"  # the first image region of the catalog in sorted order (KR1, KR2, JP1)
POST_IMAGES = "POST /image/{region}/v2/images"
DELETE_IMAGE = "DELETE /image/{region}/v2/images/{image_id}"


def no_sleep(seconds: float) -> None:
    pass


@pytest.fixture(autouse=True)
def brisk(monkeypatch):
    """Back-off and waiting polls in milliseconds, not seconds: the protocol, not the pauses, is tested."""
    monkeypatch.setattr(lock, "BACKOFF_S", (0.001, 0.01))
    monkeypatch.setattr(lock, "WAIT_POLL_S", 0.05)


def client_for(sim):
    return connect(Credentials(*OWNER_USER, identity_url=sim.identity_url), OWNER, sleep=no_sleep)


def claims(client, region: str = CLAIMS):
    return [i for i in client.list_images(region, owner=OWNER) if i.name == claim_name(SET)]


def test_claims_live_in_the_first_catalog_region_and_ten_acquisitions_in_a_row_work(make_sim):
    """v1's fixed-id lock failed from the second apply on against Glance (soft delete): every claim
    now has a fresh random id, and is deleted when done."""
    sim = make_sim()
    client = client_for(sim)
    ids = []
    for _ in range(10):
        with apply_lock(client, SET) as session:
            assert session.region == CLAIMS
            (held,) = claims(client)
            assert held.id == session.claim_id and held.properties[STATE] == HELD
            assert held.properties[HOLDER] == session.holder and session.token in session.holder
            ids.append(session.claim_id)
        assert claims(client) == []
    assert len(set(ids)) == 10


def test_a_held_lock_turns_another_apply_away_naming_holder_claim_and_lease(make_sim):
    sim = make_sim()
    client, other = client_for(sim), client_for(sim)
    with apply_lock(client, SET) as session:
        with pytest.raises(LockedError) as refused:
            with apply_lock(other, SET):
                pytest.fail("two applies held the lock")
        message = refused.value.message
        assert session.holder in message and session.claim_id in message and "lease until 20" in message
        assert [c.id for c in claims(client)] == [session.claim_id], "the loser's claim was left behind"


def test_an_apply_waits_with_lock_timeout_and_proceeds_once_the_holder_is_done(make_sim):
    sim = make_sim()
    client, other = client_for(sim), client_for(sim)
    acquired = threading.Event()
    released_at: list[float] = []

    def holder() -> None:
        with apply_lock(client, SET):
            acquired.set()
            time.sleep(0.5)
            released_at.append(time.monotonic())

    thread = threading.Thread(target=holder)
    thread.start()
    assert acquired.wait(10)
    with apply_lock(other, SET, timeout_s=30):
        assert released_at, "the waiter held the lock before the holder released it"
    thread.join()


def test_an_expired_claim_is_taken_over_and_deleted_by_the_winner(make_sim):
    """A killed apply cannot release its claim: it blocks until lease + 5 s by the server's clock."""
    sim = make_sim()
    client = client_for(sim)
    killed = client.create_image(
        CLAIMS,
        {"name": claim_name(SET), "os_type": "linux", "disk_format": "raw", "container_format": "bare",
         "visibility": "private", CLAIM: SET, HOLDER: "gone:1:dead", STATE: HELD, lock.LEASE: "30"},
    )  # fmt: skip
    with pytest.raises(LockedError, match="gone:1:dead"):
        with apply_lock(client, SET):
            pass
    sim.advance_clock(36)
    with apply_lock(client, SET) as session:
        assert [c.id for c in claims(client)] == [session.claim_id], "the expired claim was not deleted"
    assert client.find_image(CLAIMS, killed.id) is None


def fault_hits(sim) -> dict:
    with sim.app.store.transaction() as txn:
        return dict(txn.doc.get("fault_hits", {}))


def test_two_acquisitions_in_the_same_second_never_both_hold(make_sim):
    """The simulator holds both claim POSTs and answers them together (the `hold` fault): both claims
    exist before either apply lists. Ten rounds: whoever holds does so alone, the other backs off and
    then takes the lock after it, or is turned away; never both at once."""
    overlaps: list[tuple[str, str]] = []
    for round_ in range(10):
        sim = make_sim(faults=[{"route": POST_IMAGES, "on_call": [1, 2], "hold": 2}])
        inside: list[str] = []
        outcomes: list[str] = []
        guard = threading.Lock()

        def contender(name: str, seed: int, sim=sim, inside=inside, outcomes=outcomes, guard=guard) -> None:
            try:
                with apply_lock(client_for(sim), SET, rng=random.Random(seed)):
                    with guard:
                        overlaps.extend((name, other) for other in inside)
                        inside.append(name)
                    time.sleep(0.05)
                    with guard:
                        inside.remove(name)
                outcomes.append("held")
            except LockedError:
                outcomes.append("refused")

        threads = [threading.Thread(target=contender, args=(n, round_ * 2 + i)) for i, n in enumerate("AB")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert sum(fault_hits(sim).values()) == 2, "the two creates were not answered together"
        assert "held" in outcomes, f"round {round_}: nobody got the lock: {outcomes}"
        assert claims(client_for(sim)) == []
    assert overlaps == [], "two applies held the lock at once"


def test_a_lost_create_answer_is_re_observed_by_its_id_never_duplicated(make_sim):
    sim = make_sim(faults=[{"route": POST_IMAGES, "on_call": 1, "lose_answer": True}])
    client = client_for(sim)
    with apply_lock(client, SET) as session:
        assert [c.id for c in claims(client)] == [session.claim_id]
    assert claims(client) == []


def test_a_server_that_refuses_client_ids_gets_claims_found_by_holder(make_sim):
    sim = make_sim(client_image_ids="refuse")
    client = client_for(sim)
    with apply_lock(client, SET) as session:
        assert [c.id for c in claims(client)] == [session.claim_id]
    with apply_lock(client, SET):
        pass
    assert claims(client) == []


def test_a_renewal_after_expiry_finds_the_claim_taken_over_and_the_lock_is_lost(make_sim):
    sim = make_sim()
    client, other = client_for(sim), client_for(sim)
    with apply_lock(client, SET, lease_s=30) as first:
        sim.advance_clock(36)  # the renewals stalled: by the server's clock the lease ran out
        with apply_lock(other, SET, lease_s=30) as second:
            assert client.find_image(CLAIMS, first.claim_id) is None, "the winner keeps an expired claim"
            assert renew_once(client, first, 2) is False
            assert first.lost and not second.lost
            guarded = LockGuardedClient(client, first)
            with pytest.raises(LockLostError, match="lock lost"):
                guarded.update_image("KR1", "any", [PatchOp("replace", "name", "x")])


def test_the_lock_is_lost_when_no_renewal_succeeds_within_lease_minus_10_s(make_sim):
    sim = make_sim()
    client = client_for(sim)
    now = [1000.0]
    with apply_lock(client, SET, lease_s=30, monotonic=lambda: now[0]) as session:
        now[0] += 19.9
        assert not session.lost
        assert renew_once(client, session, 2) and not session.lost
        now[0] += 19.9
        assert not session.lost, "a renewal sent 19.9 s ago keeps the lock"
        now[0] += 0.2
        assert session.lost and "20 s" in session.lost_reason
        assert renew_once(client, session, 3) and session.lost, "a late success does not bring a lost lock back"


def test_after_a_loss_only_compensations_and_cleanup_of_this_runs_images_go_through(make_sim):
    sim = make_sim()
    client = client_for(sim)
    now = [0.0]
    with apply_lock(client, SET, lease_s=30, monotonic=lambda: now[0]) as session:
        guarded = LockGuardedClient(client, session)
        made = guarded.create_image(
            "KR1", {"name": "target", "os_type": "linux", "disk_format": "raw", "container_format": "bare"}
        )
        now[0] += 21
        for call in (
            lambda: guarded.create_image("KR1", {"name": "x", "os_type": "linux"}),
            lambda: guarded.update_image("KR1", made.id, [PatchOp("replace", "name", "y")]),
            lambda: guarded.add_member("KR1", made.id, "8989447062e04a818baf9e073fd04fa7"),
            lambda: guarded.upload_image_data("KR1", made.id, iter([b"x"])),
        ):
            with pytest.raises(LockLostError):
                call()
        with session.compensation():
            guarded.update_image("KR1", made.id, [PatchOp("replace", "name", "restored")])
        assert guarded.delete_image("KR1", made.id), "an image this run made is its own to clean up"


def test_a_loser_whose_delete_fails_blocks_until_expiry_then_the_next_winner_deletes_its_claim(make_sim):
    sim = make_sim(faults=[{"route": DELETE_IMAGE, "on_call": [1, 2, 3], "status": 500}])
    holder, loser, waiter = client_for(sim), client_for(sim), client_for(sim)
    with apply_lock(holder, SET, sleep=no_sleep):
        # The loser sees the held claim and deletes its own: that delete fails, and so do its two retries.
        with pytest.raises(LockedError):
            with apply_lock(loser, SET, sleep=no_sleep):
                pass
        assert len(claims(holder)) == 2, "the loser's claim should be left behind by the failed delete"
    left = claims(holder)
    assert len(left) == 1
    with pytest.raises(LockedError, match="kept trying"):
        with apply_lock(waiter, SET):  # a probing claim blocks for 5 rounds, then gives up
            pass
    done = threading.Event()
    errors: list[BaseException] = []

    def wait() -> None:
        try:
            with apply_lock(waiter, SET, timeout_s=60) as session:
                assert [c.id for c in claims(waiter)] == [session.claim_id]
        except BaseException as err:  # reported below
            errors.append(err)
        done.set()

    thread = threading.Thread(target=wait)
    thread.start()
    time.sleep(0.3)
    assert not done.is_set(), "the waiter did not wait for the left-behind claim to expire"
    sim.advance_clock(126)
    assert done.wait(30) and not errors, errors
    thread.join()
    assert claims(holder) == []


def test_a_legacy_lock_blocks_until_it_expires_and_is_then_deleted(make_sim):
    sim = make_sim()
    client = client_for(sim)
    legacy_id = legacy_lock_id(OWNER, SET)
    attributes = {"name": claim_name(SET), "os_type": "linux", "disk_format": "raw", "container_format": "bare",
                  "visibility": "private", LEGACY: SET, HOLDER: "old-host:42"}  # fmt: skip
    client.create_image("KR1", {"id": legacy_id, **attributes, LEGACY_EXPIRES: iso(sim.now() + 300)})
    with pytest.raises(LockedError, match=f"legacy lock {legacy_id} of holder old-host:42"):
        with apply_lock(client, SET, legacy_region="KR1"):
            pass
    sim.advance_clock(301)
    with apply_lock(client, SET, legacy_region="KR1"):
        pass
    assert client.find_image("KR1", legacy_id) is None


def test_release_is_retried_and_a_claim_it_cannot_delete_is_left_to_expire(make_sim, caplog):
    sim = make_sim(faults=[{"route": DELETE_IMAGE, "on_call": [1, 2, 3, 4, 5, 6, 7, 8, 9], "status": 500}])
    client = client_for(sim)
    with apply_lock(client, SET, sleep=no_sleep) as session:
        pass
    assert [c.id for c in claims(client)] == [session.claim_id]
    assert "could not delete the apply lock's claim on release" in caplog.text


def test_claims_errors_are_cloud_errors_not_tracebacks(make_sim):
    sim = make_sim(faults=[{"route": POST_IMAGES, "on_call": [1, 2, 3, 4, 5, 6, 7, 8], "status": 500}])
    with pytest.raises(CloudError):
        with apply_lock(client_for(sim), SET):
            pass


def _stop_create_start(tmp_path, *, overwrite_mark: str | None):
    """Apply `running-u2-stop` (stop -> create -> start) holding a lock whose renewals stop succeeding right
    after the stop: what starts next, and what the compensating restart does."""
    import shutil
    from pathlib import Path

    from reconciler.apply import Applier
    from reconciler.connect import open_cloud
    from reconciler.planner import build_plan
    from reconciler.snapshot import read_snapshot
    from reconciler.validate import load_desired_state

    root = tmp_path / "root"
    shutil.copytree(Path(__file__).resolve().parents[1] / "cases" / "running-u2-stop" / "root", root)
    desired = load_desired_state(root)
    now = [0.0]
    with open_cloud(desired.root, desired.root.cloud, {}) as (client, target):
        plan = build_plan(desired, read_snapshot(client, desired), target)
        server_id = next(a.details["server"] for a in plan.actions if a.kind == "stop_instance")
        with apply_lock(client, desired.root.set, lease_s=30, monotonic=lambda: now[0]) as session:

            def progress(event, action, payload):
                if event == "end" and action.kind == "stop_instance":
                    if overwrite_mark is not None:
                        client.set_server_metadata("KR1", server_id, {"reconciler_stopped_by": overwrite_mark})
                    now[0] += 25  # no renewal within lease - 10 s: lost

            report = Applier(LockGuardedClient(client, session), plan, lock=session, progress=progress).run()
        server = client.get_server("KR1", server_id)
        images = [
            i for i in client.list_images("KR1", owner=client.project_id) if not i.name.startswith("reconciler-lock")
        ]
    return {r.action.kind: (r.status, r.message) for r in report.results}, server, images


def test_after_losing_the_lock_nothing_new_starts_and_the_run_restarts_the_server_it_stopped(tmp_path):
    results, server, images = _stop_create_start(tmp_path, overwrite_mark=None)
    assert results["stop_instance"][0] == "done"
    assert results["create"] == ("skipped", "the apply lock was lost")
    assert results["start_instance"][0] == "done", results
    assert server.status == "ACTIVE" and "reconciler_stopped_by" not in server.metadata
    assert images == [], "nothing may be created after the lock is lost"


def test_after_losing_the_lock_a_server_marked_by_another_run_is_left_alone(tmp_path):
    """Another apply may hold the lock now and have stopped the server itself: its mark carries its own
    token, so this run's restart must not touch it."""
    results, server, _ = _stop_create_start(tmp_path, overwrite_mark="web-platform:othertoken")
    assert results["start_instance"][0] == "stale" and "left for the next run" in results["start_instance"][1]
    assert server.status == "SHUTOFF" and server.metadata["reconciler_stopped_by"] == "web-platform:othertoken"


def test_a_stop_marks_the_server_with_the_runs_token(tmp_path, capsys):
    """`reconciler_stopped_by: <set>:<run token>`; the next plan still reads it as this set's mark."""
    import json
    import shutil
    from pathlib import Path

    from reconciler.cli import main

    root = tmp_path / "root"
    shutil.copytree(Path(__file__).resolve().parents[1] / "cases" / "running-u2-stop" / "root", root)
    fault = {"route": "POST /compute/{region}/v2/{tenant_id}/servers/{server_id}/action", "on_call": 3, "status": 500}
    import yaml

    seed = yaml.safe_load((root / "seed.yaml").read_text())
    seed.setdefault("behaviour", {})["faults"] = [fault]  # the restart fails: the mark stays
    (root / "seed.yaml").write_text(yaml.safe_dump(seed))
    assert main(["apply", str(root), "--auto-approve"]) == 1
    capsys.readouterr()
    state = json.loads((root / ".reconciler" / "sim-state.json").read_text())
    (stopped,) = state["servers"].values()
    set_name, _, token = stopped["metadata"]["reconciler_stopped_by"].partition(":")
    assert set_name == "web-platform" and len(token) == 12
    assert main(["plan", str(root), "--format", "json"]) == 0
    kinds = [a["kind"] for a in json.loads(capsys.readouterr().out)["actions"]]
    assert "start_instance" in kinds


def test_a_losers_failed_delete_is_tried_again(make_sim):
    """One failed delete must not leave a claim that blocks the set for a whole lease."""
    sim = make_sim(faults=[{"route": DELETE_IMAGE, "on_call": [1], "status": 500}])
    holder, loser = client_for(sim), client_for(sim)
    with apply_lock(holder, SET, sleep=no_sleep) as session:
        with pytest.raises(LockedError):
            with apply_lock(loser, SET, sleep=no_sleep):
                pass
        assert [c.id for c in claims(holder)] == [session.claim_id]


@pytest.mark.parametrize(
    ("route", "status"),
    [(POST_IMAGES, 500), (POST_IMAGES, 502), ("GET /image/{region}/v2/images", 500)],
)
def test_one_server_error_on_the_locks_own_calls_does_not_turn_the_apply_away(make_sim, route, status):
    """A flaky cloud: the claim's create (same id: never a duplicate) and the claims' listing are tried
    again after a server error."""
    sim = make_sim(faults=[{"route": route, "on_call": 1, "status": status}])
    client = client_for(sim)
    with apply_lock(client, SET, sleep=no_sleep) as session:
        assert [c.id for c in claims(client)] == [session.claim_id]
    assert claims(client) == []
