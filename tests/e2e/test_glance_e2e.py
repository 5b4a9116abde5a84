"""The installed CLI against two real Glance servers behind an identity front (issue 14, point 3).

Every check reads Glance's own API (the `e2e` fixture's direct clients, or a partner's token through the
front), never the tool's output; only exit codes, and the lock holder named by a losing apply, are taken
from the tool. After every run the fixture checks that the owner's unmanaged images did not change.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e


def adopt(image_id: str, **fields: object) -> dict[str, object]:
    return {"source": {"image": image_id}, **fields}


def ok(done) -> None:
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


def test_adopt_rename_protect_refuse_then_retire(e2e):
    kr1 = e2e.glance("KR1")
    web = kr1.create("legacy-web", os_type="linux")
    db = kr1.create("legacy-db", os_type="linux")

    # Adopt: markers set, nothing else about the images changes.
    e2e.write({"web": adopt(web["id"]), "db": adopt(db["id"])})
    ok(e2e.apply())
    for before in (web, db):
        after = kr1.get(before["id"])
        assert after["reconciler_set"] == e2e.set_name
        assert after["reconciler_key"] == ("web" if before is web else "db")
        assert (after["name"], after["protected"], after["checksum"]) == (
            before["name"],
            before["protected"],
            before["checksum"],
        )

    # Rename and protect in one apply.
    e2e.write({"web": adopt(web["id"], name="web-base", protected=True), "db": adopt(db["id"])})
    ok(e2e.apply())
    after = kr1.get(web["id"])
    assert (after["name"], after["protected"]) == ("web-base", True)

    # Removing a protected image from the manifests: refused, exit 3, nothing changed in either region.
    before = e2e.everything()
    e2e.write({"db": adopt(db["id"])})
    refused = e2e.apply()
    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert e2e.everything() == before

    # Unprotect (still declared), then remove: deleted; the other image stays.
    e2e.write({"web": adopt(web["id"], name="web-base", protected=False), "db": adopt(db["id"])})
    ok(e2e.apply())
    assert kr1.get(web["id"])["protected"] is False
    e2e.write({"db": adopt(db["id"])})
    ok(e2e.apply())
    assert kr1.get(web["id"]) is None
    assert kr1.get(db["id"])["reconciler_key"] == "db"


def test_share_then_unshare(e2e):
    kr1 = e2e.glance("KR1")
    web = kr1.create("legacy-web", os_type="linux")
    assert not e2e.reads_as(e2e.partner, "KR1", web["id"])

    e2e.write({"web": adopt(web["id"], share=[e2e.partner])})
    ok(e2e.apply())
    assert kr1.get(web["id"])["visibility"] == "shared"
    assert kr1.members(web["id"]) == {e2e.partner: "pending"}
    assert e2e.reads_as(e2e.partner, "KR1", web["id"])
    assert not e2e.reads_as(e2e.outsider, "KR1", web["id"])

    e2e.write({"web": adopt(web["id"], share=[])})
    ok(e2e.apply())
    assert kr1.members(web["id"]) == {}
    assert kr1.get(web["id"])["visibility"] == "private"
    assert not e2e.reads_as(e2e.partner, "KR1", web["id"])


def test_copy_to_the_second_region(e2e):
    kr1 = e2e.glance("KR1")
    web = kr1.create("legacy-web", os_type="linux", size_mb=24)

    e2e.write({"web": adopt(web["id"], copies=["JP1"])})
    ok(e2e.apply())
    copies = e2e.managed("JP1")
    assert list(copies) == ["web"], copies
    copy, home = copies["web"], kr1.get(web["id"])
    assert copy["id"] != web["id"] and copy["status"] == "active"
    for field in ("checksum", "os_hash_algo", "os_hash_value", "size", "disk_format", "container_format"):
        assert copy[field] == home[field] == web[field], field
    # Converged: the next plan has nothing to do.
    again = e2e.run("plan", e2e.root, "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr


def test_max_deletions(e2e):
    kr1 = e2e.glance("KR1")
    images = {key: kr1.create(f"legacy-{key}", os_type="linux")["id"] for key in ("a", "b", "c")}
    e2e.write({key: adopt(image_id) for key, image_id in images.items()}, max_deletions=1)
    ok(e2e.apply())

    before = e2e.everything()
    e2e.write({"a": adopt(images["a"])}, max_deletions=1)
    refused = e2e.apply()
    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert e2e.everything() == before

    ok(e2e.apply("--max-deletions", "2"))
    assert [kr1.get(images[key]) is not None for key in "abc"] == [True, False, False]


def test_a_saved_plan_made_stale_in_glance_is_refused(e2e):
    """The plan renames an image; someone renames it by hand in Glance after the review: the fresh plan's
    rename differs from the reviewed one, so nothing runs. A hand change that alters no action does not
    refuse (the fresh plan is what runs)."""
    kr1 = e2e.glance("KR1")
    web = kr1.create("legacy-web", os_type="linux")
    e2e.write({"web": adopt(web["id"])})
    ok(e2e.apply())

    e2e.write({"web": adopt(web["id"], name="web-base")})
    plan_file = e2e.root.parent / "plan.json"
    ok(e2e.run("plan", e2e.root, "--out", plan_file))
    kr1.patch(web["id"], [{"op": "replace", "path": "/name", "value": "renamed-by-hand"}])
    before = e2e.everything()
    stale = e2e.run("apply", e2e.root, "--plan", plan_file, "--auto-approve", "--format", "json")
    assert stale.returncode == 1, stale.stdout + stale.stderr
    assert '"outcome": "plan_mismatch"' in stale.stdout
    assert e2e.everything() == before
    assert kr1.get(web["id"])["name"] == "renamed-by-hand"

    # Back as reviewed, plus a change no action touches: the saved plan applies.
    kr1.patch(web["id"], [{"op": "replace", "path": "/name", "value": "legacy-web"}])
    kr1.patch(web["id"], [{"op": "add", "path": "/min_ram", "value": 512}])
    ok(e2e.run("apply", e2e.root, "--plan", plan_file, "--auto-approve"))
    assert kr1.get(web["id"])["name"] == "web-base"


def test_ten_applies_in_a_row_on_one_set(e2e):
    kr1 = e2e.glance("KR1")
    web = kr1.create("legacy-web", os_type="linux")
    for run in range(10):
        claims = set(e2e.front.lock_claims)
        e2e.write({"web": adopt(web["id"], description=f"build {run}")})
        ok(e2e.apply())
        assert kr1.get(web["id"])["description"] == f"build {run}", f"apply {run + 1} of 10"
        # Each apply claimed the lock in JP1 (the catalog's first image region, sorted) and released it.
        made = {e2e.front.lock_claims[c] for c in set(e2e.front.lock_claims) - claims}
        assert made == {"JP1"}, f"apply {run + 1}: claims made in {made}"
        assert e2e.claims() == [], f"apply {run + 1} left a claim"


def test_two_applies_at_once_exactly_one_proceeds(e2e):
    kr1 = e2e.glance("KR1")
    web = kr1.create("legacy-web", os_type="linux")
    e2e.write({"web": adopt(web["id"])})
    ok(e2e.apply())
    for race in range(10):
        e2e.write({"web": adopt(web["id"], description=f"race {race}")})
        patches = len(e2e.front.patches)
        e2e.front.delay_next_image_patch(5.0)
        command = ("apply", e2e.root, "--auto-approve")
        started = [e2e.popen(*command), e2e.popen(*command)]
        outcomes = [(p, p.wait(timeout=120), *p.communicate()) for p in started]
        codes = sorted(code for _, code, _, _ in outcomes)
        detail = "\n".join(f"pid {p.pid} exit {code}\n{out[-1500:]}\n{err[-1500:]}" for p, code, out, err in outcomes)
        assert codes == [0, 1], f"race {race + 1} of 10: {detail}"
        winner = next(p for p, code, _, _ in outcomes if code == 0)
        loser_err = next(err for _, code, _, err in outcomes if code == 1)
        assert str(winner.pid) in loser_err, f"race {race + 1}: the loser does not name the holder: {detail}"
        # Glance saw the change made once, by the winner's token only.
        assert kr1.get(web["id"])["description"] == f"race {race}"
        changes = [p for p in e2e.front.patches[patches:] if p.image_id == web["id"]]
        assert len(changes) == 1 and changes[0].status == 200, changes
        assert e2e.front.delayed[-1].image_id == web["id"]
        # Neither apply left a claim behind: the next apply is not blocked.
        assert e2e.claims() == [], f"race {race + 1}: {detail}"
        e2e.assert_bystanders_untouched(f"after race {race + 1}")
