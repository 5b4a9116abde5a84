"""Matching the fresh plan against a saved one, as pure data: each case edits a saved plan (or the cloud
under the fresh one) in one way and says whether apply may run the fresh plan."""

from __future__ import annotations

import copy
from types import MappingProxyType

import pytest

from reconciler.cloud.records import Image
from reconciler.plan import Action, Change, Dependency, Reason
from reconciler.plan_match import match

SET = "web-platform"
HOME = "00000000-0000-4000-8000-000000000011"
MADE = "00000000-0000-4000-8000-0000000000aa"
PARTNER = "8989447062e04a818baf9e073fd04fa7"


def action(id_, *, image_id=HOME, reason="field_changed", changes=None, expects=None, depends=(), **details):
    kind, key, region = id_.split(":")[:3]
    return Action(
        id=id_,
        kind=kind,
        key=key,
        region=region,
        reason=Reason(reason, "words for humans", "images/web.yaml:3"),
        image_id=image_id,
        changes=MappingProxyType({k: Change(*v) for k, v in (changes or {}).items()}),
        expects=MappingProxyType(expects if expects is not None else ({f"{region}/{image_id}": {"status": "active"}} if image_id else {})),
        depends_on=tuple(Dependency(d, "because") for d in depends),
        details=MappingProxyType(details),
    )  # fmt: skip


RENAME = action("update:web:KR1", changes={"name": ("web", "web-base")})
SHARE = action("share:web:KR1:" + PARTNER, member=PARTNER, changes={"visibility": ("private", "shared")})
PROTECT = action("protect:web:KR1", changes={"protected": (False, True)}, depends=["update:web:KR1"])
FRESH = (RENAME, SHARE, PROTECT)


def saved_of(actions):
    return [a.to_json() for a in actions]


def image(id_, region="KR1", name="web-base", **props):
    return Image(region, id_, name, "active", "private", False, "p", 0, 0, 1, 1, None, None, "qcow2", "bare", (),
                 None, None, MappingProxyType(props))  # fmt: skip


def edit(actions, index, **changes):
    docs = saved_of(actions)
    docs[index].update(copy.deepcopy(changes))
    return docs


CASES = [
    ("the unedited plan matches", saved_of(FRESH), FRESH, False, []),
    (
        "an added delete is not planned now",
        saved_of(FRESH) + [action("delete:web:KR1").to_json()],
        FRESH,
        False,
        ["delete:web:KR1"],
    ),
    ("an action the file lost is planned now", saved_of(FRESH[:2]), FRESH, False, ["protect:web:KR1"]),
    (
        "another image id",
        edit(FRESH, 0, image_id="00000000-0000-4000-8000-0000000000ff"),
        FRESH,
        False,
        ["update:web:KR1"],
    ),
    (
        "another member",
        edit(FRESH, 1, member="0aa1bb22cc33dd44ee55ff6600112233"),
        FRESH,
        False,
        ["share:web:KR1:" + PARTNER],
    ),
    ("emptied expects", edit(FRESH, 0, expects={}), FRESH, False, ["update:web:KR1"]),
    (
        "redirected expects",
        edit(FRESH, 0, expects={"KR1/00000000-0000-4000-8000-0000000000ff": {"status": "active"}}),
        FRESH,
        False,
        ["update:web:KR1"],
    ),
    (
        "another change",
        edit(FRESH, 0, changes={"name": {"before": "web", "after": "evil"}}),
        FRESH,
        False,
        ["update:web:KR1"],
    ),
    (
        "depends_on reordered or reworded is the same set",
        edit(FRESH, 2, depends_on=[{"id": "update:web:KR1", "reason": "x"}]),
        FRESH,
        False,
        [],
    ),
    ("a dependency removed", edit(FRESH, 2, depends_on=[]), FRESH, False, ["protect:web:KR1"]),
    (
        "display-only fields and reasons may differ",
        edit(FRESH, 0, bytes=7, server_name="x", reason={"code": "c", "message": "m", "source": None}),
        FRESH,
        False,
        [],
    ),
]


@pytest.mark.parametrize(("reason", "saved", "fresh", "resume", "differing"), CASES, ids=[c[0] for c in CASES])
def test_match(reason, saved, fresh, resume, differing):
    result = match(saved, fresh, [], SET, resume=resume)
    got = sorted({d.action_id for d in result.differences})
    assert got == sorted(differing), f"{reason}: want {differing}, got {got}: {[d.line() for d in result.differences]}"


def test_a_removed_compensates_refuses():
    stop = action("stop_instance:web:KR1", image_id=None, expects={"KR1/server/s1": {"status": "ACTIVE"}}, server="s1")
    start = action("start_instance:web:KR1", image_id=None, expects={"KR1/server/s1": {"status": "SHUTOFF"}},
                   depends=["stop_instance:web:KR1"], server="s1", compensates="stop_instance:web:KR1")  # fmt: skip
    saved = saved_of([stop, start])
    del saved[1]["compensates"]
    assert [d.action_id for d in match(saved, [stop, start], [], SET, resume=False).differences] == [
        "start_instance:web:KR1"
    ]


def test_with_resume_what_ran_is_already_done_but_nothing_new_may_appear():
    result = match(saved_of(FRESH), FRESH[1:], [], SET, resume=True)
    assert result.ok and result.already_done == ("update:web:KR1",)
    extra = action("delete:web:KR1")
    assert not match(saved_of(FRESH), (*FRESH[1:], extra), [], SET, resume=True).ok


def test_an_image_an_earlier_run_made_stands_for_the_saved_placeholder():
    """Rule (a): S creates web in KR1 and shares it; the create ran; F shares the live image."""
    create = action("create:web:KR1", image_id=None, reason="image_missing", expects={},
                    changes={"reconciler_set": (None, SET), "reconciler_key": (None, "web")})  # fmt: skip
    share_made = action("share:web:KR1:" + PARTNER, image_id=None, member=PARTNER,
                        expects={"KR1/<create:web:KR1>": {"status": "active"}}, depends=["create:web:KR1"])  # fmt: skip
    share_live = action("share:web:KR1:" + PARTNER, image_id=MADE, member=PARTNER,
                        expects={f"KR1/{MADE}": {"status": "active"}})  # fmt: skip
    live = [image(MADE, reconciler_set=SET, reconciler_key="web")]
    result = match(saved_of([create, share_made]), [share_live], live, SET, resume=True)
    assert result.ok, [d.line() for d in result.differences]
    assert result.already_done == ("create:web:KR1",)
    # Another set's image, or an image of another key, stands for nothing.
    for props in (
        {"reconciler_set": "other", "reconciler_key": "web"},
        {"reconciler_set": SET, "reconciler_key": "api"},
    ):
        assert not match(saved_of([create, share_made]), [share_live], [image(MADE, **props)], SET, resume=True).ok


def test_an_interrupted_create_matches_the_saved_create_on_what_both_set():
    """Rule (b)."""
    changes = {"name": ("web~rc-a0648d40", "web"), "reconciler_set": (None, SET), "reconciler_key": (None, "web")}
    create = action("create:web:KR1", image_id=None, reason="image_missing", expects={}, changes=changes)
    adopt = action("adopt:web:KR1", image_id=MADE, reason="interrupted_create", changes=changes)
    assert match(saved_of([create]), [adopt], [], SET, resume=True).ok
    wrong = action("adopt:web:KR1", image_id=MADE, reason="interrupted_create",
                   changes={**changes, "name": ("web~rc-a0648d40", "evil")})  # fmt: skip
    assert not match(saved_of([create]), [wrong], [], SET, resume=True).ok
    plain = action("adopt:web:KR1", image_id=MADE, reason="adopt", changes=changes)
    assert not match(saved_of([create]), [plain], [], SET, resume=True).ok, "only an interrupted create"


def test_a_strict_brackets_closing_protect_matches_once_its_unprotect_ran():
    """Rule (c)."""
    unprotect = action("unprotect:web:KR1:update", changes={"protected": (True, False)})
    update = action("update:web:KR1", changes={"name": ("web", "web-base")}, depends=["unprotect:web:KR1:update"])
    close = action("protect:web:KR1:update", changes={"protected": (False, True)}, depends=["update:web:KR1"],
                   compensates="unprotect:web:KR1:update")  # fmt: skip
    plain = action("protect:web:KR1", changes={"protected": (False, True)})
    saved = saved_of([unprotect, update, close])
    assert match(saved, [plain], [], SET, resume=True).ok
    assert not match(saved, [unprotect, plain], [], SET, resume=True).ok, "the bracket has not opened yet"


def test_housekeeping_may_be_added_and_nothing_else():
    restart = action("start_instance:web:KR1", image_id=None, reason="left_stopped",
                     expects={"KR1/server/s1": {"status": "SHUTOFF"}}, server="s1")  # fmt: skip
    restore = action("update:web:KR1:download-restore", reason="download_left_enabled",
                     changes={"nhncloud_allow_download": ("true", None)})  # fmt: skip
    result = match(saved_of(FRESH), (*FRESH, restart, restore), [], SET, resume=False)
    assert result.ok and set(result.housekeeping) == {restart.id, restore.id}
    replace = action("delete:web:JP1:replace", reason="incomplete_copy")
    assert not match(saved_of(FRESH), (*FRESH, replace), [], SET, resume=False).ok, "S copies nothing to JP1"
    copy_ = action("copy:web:JP1", image_id=None, reason="copy_missing", source_region="KR1",
                   expects={f"KR1/{HOME}": {"status": "active"}})  # fmt: skip
    replacing = action("copy:web:JP1", image_id=None, reason="incomplete_copy", source_region="KR1",
                       expects={f"KR1/{HOME}": {"status": "active"}}, depends=["delete:web:JP1:replace"])  # fmt: skip
    assert match(saved_of([copy_]), (replace, replacing), [], SET, resume=False).ok


def test_with_resume_a_change_the_interrupted_run_made_is_not_asked_again():
    # The share's visibility change ran, adding the member failed: the fresh share only adds the member.
    member_only = action("share:web:KR1:" + PARTNER, member=PARTNER)
    assert match(saved_of([SHARE]), [member_only], [], SET, resume=True).ok
    assert not match(saved_of([SHARE]), [member_only], [], SET, resume=False).ok


def test_with_resume_a_change_that_was_not_reviewed_still_refuses():
    more = action("share:web:KR1:" + PARTNER, member=PARTNER, changes={"visibility": ("private", "shared"),
                  "protected": (False, True)})  # fmt: skip
    other = action("share:web:KR1:" + PARTNER, member=PARTNER, changes={"visibility": ("private", "public")})
    member_only = action("share:web:KR1:" + PARTNER, member=PARTNER)
    assert not match(saved_of([SHARE]), [more], [], SET, resume=True).ok
    assert not match(saved_of([SHARE]), [other], [], SET, resume=True).ok
    # Rule (e) forgives what F lacks, never another member.
    assert not match(edit([SHARE], 0, member="0aa1bb22cc33dd44ee55ff6600112233"), [member_only], [], SET,
                     resume=True).ok  # fmt: skip


OLD_VERSION = "00000000-0000-4000-8000-000000000009"
RETIREMENT = action("delete:web-base-2026-09:KR1", image_id=OLD_VERSION, reason="retired", name="web-base-2026-09",
                    family="web-base", expects={f"KR1/{OLD_VERSION}": {"protected": False}})  # fmt: skip


def test_a_retirement_the_fresh_plan_defers_still_matches_and_is_reported():
    """S retires an old version; F defers it (its image is in use now, so F does not plan it): matched,
    reported as deferred, with or without resume."""
    still_live = [image(OLD_VERSION, name="web-base-2026-09")]
    for resume in (False, True):
        result = match(saved_of([*FRESH, RETIREMENT]), FRESH, still_live, SET, resume=resume)
        assert result.ok and result.deferred == (RETIREMENT.id,) and result.already_done == ()
    # A plain delete F no longer plans is a difference; so is a retirement F planned that S did not.
    plain = action("delete:web-base-2026-09:KR1", image_id=OLD_VERSION, reason="undeclared")
    assert not match(saved_of([*FRESH, plain]), FRESH, still_live, SET, resume=False).ok
    assert not match(saved_of(FRESH), (*FRESH, RETIREMENT), still_live, SET, resume=False).ok
    # Its image gone (deleted by hand): nothing was deferred; with resume it is already done.
    gone = match(saved_of([*FRESH, RETIREMENT]), FRESH, [], SET, resume=True)
    assert gone.deferred == () and gone.already_done == (RETIREMENT.id,)


def test_a_retirement_the_review_deferred_is_left_for_the_next_plan_not_run_and_not_a_difference():
    """S deferred the retirement (a `retirement_deferred` warning for its key and region); its users are gone
    now and F plans it: not run (nobody reviewed it), not a difference (the rest of the plan applies)."""
    live = [image(OLD_VERSION, name="web-base-2026-09")]
    deferred_then = {("web-base-2026-09", "KR1")}
    result = match(saved_of(FRESH), (*FRESH, RETIREMENT), live, SET, resume=False, saved_deferred=deferred_then)
    assert result.ok and result.left == (RETIREMENT.id,)
    # Deferred for another region, or a plain delete of that key: still a difference.
    elsewhere = {("web-base-2026-09", "JP1")}
    assert not match(saved_of(FRESH), (*FRESH, RETIREMENT), live, SET, resume=False, saved_deferred=elsewhere).ok
    plain = action("delete:web-base-2026-09:KR1", image_id=OLD_VERSION, reason="undeclared")
    assert not match(saved_of(FRESH), (*FRESH, plain), live, SET, resume=False, saved_deferred=deferred_then).ok


def test_a_plan_without_some_actions_drops_every_dependency_on_them():
    from reconciler.plan import Plan, Target

    plan = Plan(SET, Target("simulator", "p", "loopback", ("KR1",)), (RENAME, SHARE, PROTECT, RETIREMENT))
    kept = plan.without({RENAME.id, RETIREMENT.id})
    assert [a.id for a in kept.actions] == [SHARE.id, PROTECT.id]
    assert all(not a.depends_on for a in kept.actions)
    assert plan.without(()) is plan


SHARED = "00000000-0000-4000-8000-0000000000f1"
OWNER = "3f0c9d2e6b7a4f0e9a1b2c3d4e5f6a7b"


def member_status(kind, before="pending"):
    """A consumer's accept or reject: no key, id `kind:<image id>:<region>`."""
    after = {"accept": "accepted", "reject": "rejected"}[kind]
    return Action(
        id=f"{kind}:{SHARED}:KR1", kind=kind, key="", region="KR1", reason=Reason(f"{kind}_rule", "a rule", "r.yaml:2"),
        image_id=SHARED, changes=MappingProxyType({"member_status": Change(before, after)}),
        expects=MappingProxyType({f"KR1/{SHARED}": {"owner": OWNER}}),
        details=MappingProxyType({"owner": OWNER, "name": "ubuntu-24.04"}),
    )  # fmt: skip


def test_an_accept_or_reject_the_saved_plan_lacks_is_left_for_the_next_plan_not_a_difference():
    """The owner shared in between: F's accept (or reject) was never reviewed, so it does not run, and the
    rest of the saved plan still applies (design rule (g))."""
    for kind in ("accept", "reject"):
        result = match(saved_of(FRESH), (*FRESH, member_status(kind)), [], SET, resume=False)
        assert result.ok, result.differences
        assert result.acceptances_left == (f"{kind}:{SHARED}:KR1",) and result.left == ()


def test_an_accept_the_saved_plan_has_is_matched_and_compared():
    accept = member_status("accept")
    result = match(saved_of([*FRESH, accept]), (*FRESH, accept), [], SET, resume=False)
    assert result.ok and result.acceptances_left == () and result.matched[accept.id] == accept.id
    # What it sets changed since the review (the status was set by hand in between): a difference.
    overridden = member_status("accept", before="rejected")
    assert not match(saved_of([*FRESH, accept]), (*FRESH, overridden), [], SET, resume=False).ok
    # S accepts, F now rejects the same image (a reject rule matches since): S's accept is unmatched.
    rejected = match(saved_of([*FRESH, accept]), (*FRESH, member_status("reject")), [], SET, resume=False)
    assert [d.action_id for d in rejected.differences] == [accept.id]
    assert rejected.differences[0].saved == f"accept in KR1 ({SHARED[:8]}…)"
