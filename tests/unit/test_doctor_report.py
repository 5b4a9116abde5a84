"""doctor's verdicts without a server: each observation's class and status, what to set, differences from
NHN, and the exit code (1 only for a fatal check or an undeletable scratch image)."""

from __future__ import annotations

import pytest

from reconciler.doctor.report import Cleanup, DoctorReport, Observation, Undeletable
from reconciler.doctor.verdicts import CHECKS, ORDER, classify, region_report

TARGET = {"kind": "nhn", "project": "p", "identity": "https://id.example/v2.0", "regions": ["KR1"]}

PASSING = {
    "read_after_write": {"probes": 20, "stale": 0, "missing": 0},
    "name_filter": {"strangers": [], "found_own": True},
    "patch_moves_updated_at": {"before": "2026-11-30T05:00:41Z", "after": "2026-11-30T05:00:42Z"},
    "server_date": {"date": "2026-11-30T05:00:42Z", "updated_at": "2026-11-30T05:00:41Z", "skew_s": 1.0},
    "unprotect": {"protected_after": False},
    "upload_keeps_bytes": {
        "sent": {"size": 3, "checksum": "a", "os_hash_value": "b"},
        "stored": {"size": 3, "checksum": "a", "os_hash_value": "b"},
    },
    "protected_patch": {"mode": "permissive"},
    "download_gating": {"gated": True, "status": 403},
    "download_refused_status": {"gated": True, "status": 403},
    "client_image_id": {"accepted": True},
    "deleted_id_reuse": {"reusable": False, "status": 409},
    "property_filters": {"honoured": False},
    "os_type_required": {"required": True, "status": 400},
    "unknown_member": {"accepted": True},
}

# A failing observation of each check: (facts, status, words of `seen`).
FAILING = {
    "read_after_write": (
        {"probes": 20, "stale": 3, "missing": 1},
        "failed",
        "3 of 20 lists showed an older value; 1 of 20 lacked the image",
    ),
    "name_filter": (
        {"strangers": ["web-base"], "found_own": True},
        "failed",
        "ignored: the list also held 1 image(s) of other names ('web-base')",
    ),
    "patch_moves_updated_at": (
        {"before": "2026-11-30T05:00:41Z", "after": "2026-11-30T05:00:41Z"},
        "failed",
        "stayed 2026-11-30T05:00:41Z",
    ),
    "server_date": (
        {"date": "x", "updated_at": "y", "skew_s": -12.0},
        "failed",
        "Date 12 s before the image's updated_at",
    ),
    "unprotect": ({"refused": 403, "message": "no"}, "failed", "refused: 403 no"),
    "upload_keeps_bytes": (
        {
            "sent": {"size": 3, "checksum": "a", "os_hash_value": "b"},
            "stored": {"size": 4, "checksum": "c", "os_hash_value": "b"},
        },
        "failed",
        "differ: size sent 3, stored 4; checksum sent a, stored c",
    ),
    "protected_patch": (
        {"mode": "strict", "status": 403, "message": "protected"},
        "set",
        "strict: refused with 403 protected",
    ),
    "download_gating": ({"gated": False}, "noted", "not gated: downloaded without the property"),
    "download_refused_status": ({"gated": True, "status": 404}, "noted", "refused with 404"),
    "client_image_id": ({"accepted": False, "status": 403, "message": "no ids"}, "noted", "refused with 403 no ids"),
    "deleted_id_reuse": ({"reusable": True}, "noted", "reusable: an image was created with a deleted image's id"),
    "property_filters": ({"honoured": True}, "ok", "honoured"),
    "os_type_required": ({"required": False}, "noted", "not required: an image was created without it"),
    "unknown_member": ({"accepted": False, "status": 404}, "ok", "refused with 404"),
}


NO_CLEANUP = Cleanup()


def report_of(observations, cleanup=NO_CLEANUP, protected_patch="permissive"):
    region = region_report("KR1", observations, cleanup, protected_patch=protected_patch)
    return DoctorReport("abc123", TARGET, (region,))


def passing(**replaced):
    return [Observation(check, replaced.get(check, facts)) for check, facts in PASSING.items()]


def test_every_check_has_a_passing_and_a_failing_case():
    assert set(PASSING) == set(FAILING) == set(CHECKS) and ORDER == tuple(CHECKS)


@pytest.mark.parametrize("check", ORDER)
def test_passing_observations_are_ok(check):
    result = classify(Observation(check, PASSING[check]))
    assert (result.status, result.klass, result.set, result.difference) == ("ok", CHECKS[check].klass, None, None)


@pytest.mark.parametrize("check", ORDER)
def test_failing_observations(check):
    facts, status, seen = FAILING[check]
    result = classify(Observation(check, facts))
    assert (result.status, result.seen) == (status, seen)
    assert result.blocks == (CHECKS[check].klass == "fatal")


def test_the_exit_code_is_1_only_for_a_fatal_check():
    assert report_of(passing()).exit_code == 0
    for check, (facts, _, _) in FAILING.items():
        report = report_of(passing(**{check: facts}))
        assert report.exit_code == (1 if CHECKS[check].klass == "fatal" else 0), check


def test_a_fatal_check_that_could_not_run_fails_the_run_and_others_do_not():
    observations = [o for o in passing() if o.check not in ("unprotect", "unknown_member")]
    observations += [Observation("unprotect", error="500 boom"), Observation("unknown_member", error="500 boom")]
    report = report_of(observations)
    assert report.exit_code == 1
    assert [c.check for _, c in report.failed_checks] == ["unprotect"]
    result = {r.check: r for r in report.regions[0].results}
    assert result["unprotect"].seen == "not checked: 500 boom" and result["unknown_member"].status == "error"


def test_a_check_never_observed_is_an_error():
    report = report_of([o for o in passing() if o.check != "server_date"])
    (region, result), *_ = report.failed_checks
    assert (region, result.check, result.status) == ("KR1", "server_date", "error")


def test_an_undeletable_scratch_image_fails_the_run():
    cleanup = Cleanup(created=2, deleted=("a",), undeletable=(Undeletable("b", "reconciler-doctor-x", "403 no"),))
    document = report_of(passing(), cleanup).to_json()
    assert document["exit_code"] == 1 and document["failed"] == []
    assert document["undeletable"] == [{"region": "KR1", "id": "b", "name": "reconciler-doctor-x", "error": "403 no"}]


def test_protected_patch_asks_to_set_strict_only_when_the_root_is_permissive():
    strict = Observation("protected_patch", {"mode": "strict", "status": 403})
    assert classify(strict, protected_patch="permissive").set == "cloud.protected_patch: strict"
    assert classify(strict, protected_patch="strict").status == "ok"
    relaxed = classify(Observation("protected_patch", {"mode": "permissive"}), protected_patch="strict")
    assert relaxed.status == "ok" and relaxed.set is None and "permissive would save" in relaxed.note
    assert relaxed.assumed == "strict (cloud.protected_patch)"


def test_glance_like_answers_are_listed_as_differences_from_nhn():
    document = report_of(
        passing(
            download_gating={"gated": False},
            download_refused_status={"gated": False},
            os_type_required={"required": False},
            property_filters={"honoured": True},
        )
    ).to_json()
    assert document["exit_code"] == 0
    assert [d["difference"] for d in document["differences_from_nhn"]] == [
        "no download gating",
        "`os_type` not required",
    ]
    checks = {c["check"]: c for c in document["regions"][0]["checks"]}
    assert checks["download_refused_status"]["status"] == "skipped"


def test_the_json_document_names_every_field():
    document = report_of(passing(protected_patch={"mode": "strict", "status": 403})).to_json()
    assert set(document) == {
        "format_version", "command", "target", "run_id", "regions", "settings", "differences_from_nhn", "failed",
        "undeletable", "exit_code",
    }  # fmt: skip
    check = document["regions"][0]["checks"][0]
    assert set(check) == {
        "check", "class", "status", "behaviour", "assumed", "seen", "set", "note", "difference_from_nhn", "details",
    }  # fmt: skip
    assert document["settings"] == [
        {"region": "KR1", "check": "protected_patch", "set": "cloud.protected_patch: strict", "file": "reconciler.yaml"}
    ]
    assert set(document["regions"][0]["scratch_images"]) == {
        "created",
        "deleted",
        "undeletable",
        "earlier_runs",
        "notes",
    }


def test_an_unknown_check_is_a_programming_error():
    with pytest.raises(ValueError):
        classify(Observation("no_such_check"))
