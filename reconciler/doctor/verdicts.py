"""The verdict on each check: the catalogue of checks (class, behaviour, what the tool assumes, what NHN
documents) and how an observation becomes a `CheckResult`: status, what was seen, what to set. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.cloud.records import parse_server_time
from reconciler.doctor.report import (
    ERROR,
    FAILED,
    FATAL,
    INFO,
    NOTED,
    OK,
    SET,
    SETTING,
    SKIPPED,
    CheckResult,
    Cleanup,
    Observation,
    RegionReport,
)

PROBES = 20  # read-after-write probes per region
MAX_DATE_SKEW_S = 5.0
ASSUMED_REFUSED_STATUS = 403


@dataclass(frozen=True, slots=True)
class CheckInfo:
    klass: str
    behaviour: str
    assumed: str
    # What NHN's documents say, where they settle the behaviour: a differing answer is listed as a
    # difference from NHN (a stock Glance has two).
    nhn: str | None = None


CHECKS: dict[str, CheckInfo] = {
    "read_after_write": CheckInfo(
        FATAL,
        "read-after-write listing",
        f"a name= list right after a PATCH shows the change ({PROBES} probes)",
    ),
    "name_filter": CheckInfo(FATAL, "the name= list filter", "a name= list holds exactly the images of that name"),
    "patch_moves_updated_at": CheckInfo(FATAL, "a PATCH moves updated_at", "a PATCH sets updated_at to a later time"),
    "server_date": CheckInfo(
        FATAL,
        "the answers' Date against updated_at",
        f"an answer's Date is within {MAX_DATE_SKEW_S:.0f} s of a just-created image's updated_at",
    ),
    "unprotect": CheckInfo(FATAL, "unprotecting a protected image", "PATCH protected=false on a protected image works"),
    "upload_keeps_bytes": CheckInfo(
        FATAL,
        "uploaded bytes kept unchanged",
        "size, checksum (md5) and os_hash_value (sha512) describe exactly the bytes sent",
    ),
    "protected_patch": CheckInfo(SETTING, "PATCH on a protected image", "cloud.protected_patch"),
    "download_gating": CheckInfo(
        SETTING,
        "downloads gated on nhncloud_allow_download",
        'a download needs nhncloud_allow_download: "true" (copies turn it on first)',
        nhn='downloads only with nhncloud_allow_download: "true"',
    ),
    "download_refused_status": CheckInfo(
        SETTING, "the status of a refused download", f"{ASSUMED_REFUSED_STATUS} (NHN does not document it)"
    ),
    "client_image_id": CheckInfo(
        INFO, "a client-chosen id on create", "accepted (the apply lock's claims use one, and fall back if refused)"
    ),
    "deleted_id_reuse": CheckInfo(INFO, "reuse of a deleted image's id", "refused: an id is used once (as Glance)"),
    "property_filters": CheckInfo(
        INFO, "custom-property list filters", "not relied on: the tool lists by owner and reads its markers itself"
    ),
    "os_type_required": CheckInfo(
        INFO, "os_type required on create", "required (the tool always sends it)", nhn="os_type is required on create"
    ),
    "unknown_member": CheckInfo(
        INFO, "adding a member with an unknown project id", "nothing: share: ids are checked in review, not by the tool"
    ),
}
ORDER = tuple(CHECKS)

# The phrase a difference from NHN's documents is listed with.
DIFFERENCES = {
    "download_gating": "no download gating",
    "os_type_required": "`os_type` not required",
}


def _status_text(status: Any, message: Any = None) -> str:
    text = str(status)
    return f"{text} {message}" if message else text


def _result(check: str, status: str, seen: str, **kwargs: Any) -> CheckResult:
    info = CHECKS[check]
    assumed = kwargs.pop("assumed", info.assumed)
    return CheckResult(check, info.klass, status, info.behaviour, assumed, seen, **kwargs)


def classify(observation: Observation, *, protected_patch: str = "permissive") -> CheckResult:
    """The verdict on one check. `protected_patch` is the root's `cloud.protected_patch`."""
    check = observation.check
    if check not in CHECKS:
        raise ValueError(f"no such check: {check}")
    info = CHECKS[check]
    if observation.error is not None:
        status = ERROR
        note = "the tool cannot be trusted here until this check passes" if info.klass == FATAL else None
        return _result(check, status, f"not checked: {observation.error}", note=note)
    if observation.skipped is not None:
        return _result(check, SKIPPED, f"not checked: {observation.skipped}")
    facts = dict(observation.facts)
    return _CLASSIFIERS[check](facts, protected_patch)


def _read_after_write(facts: dict[str, Any], _: str) -> CheckResult:
    probes, stale, missing = facts["probes"], facts.get("stale", 0), facts.get("missing", 0)
    if not stale and not missing:
        return _result("read_after_write", OK, f"{probes} of {probes} lists showed the change", details=facts)
    parts = []
    if stale:
        parts.append(f"{stale} of {probes} lists showed an older value")
    if missing:
        parts.append(f"{missing} of {probes} lacked the image")
    return _result(
        "read_after_write",
        FAILED,
        "; ".join(parts),
        note="the apply lock cannot exclude a second apply when a list may miss a claim",
        details=facts,
    )


def _name_filter(facts: dict[str, Any], _: str) -> CheckResult:
    strangers = list(facts.get("strangers", []))
    found = facts.get("found_own", True)
    if not strangers and found:
        return _result("name_filter", OK, "honoured: only images of that name were listed", details=facts)
    parts = []
    if strangers:
        shown = ", ".join(repr(n) for n in strangers[:3]) + (", ..." if len(strangers) > 3 else "")
        parts.append(f"ignored: the list also held {len(strangers)} image(s) of other names ({shown})")
    if not found:
        parts.append("the list lacked the image of that name")
    return _result(
        "name_filter",
        FAILED,
        "; ".join(parts),
        note="the apply lock lists its claims with name=; an ignored filter hides or mixes them",
        details=facts,
    )


def _patch_moves_updated_at(facts: dict[str, Any], _: str) -> CheckResult:
    before, after = facts.get("before"), facts.get("after")
    t0, t1 = parse_server_time(before), parse_server_time(after)
    if t0 is not None and t1 is not None and t1 > t0:
        return _result("patch_moves_updated_at", OK, f"moved from {before} to {after}", details=facts)
    seen = f"stayed {before}" if before == after else f"went from {before} to {after}"
    return _result(
        "patch_moves_updated_at",
        FAILED,
        seen,
        note="lock claims are renewed by PATCH: a renewal that does not move updated_at lets the claim expire",
        details=facts,
    )


def _server_date(facts: dict[str, Any], _: str) -> CheckResult:
    skew = facts.get("skew_s")
    if skew is None:
        why = "the answer had no readable Date header" if facts.get("date") is None else "updated_at is unreadable"
        return _result("server_date", FAILED, why, details=facts)
    where = "after" if skew >= 0 else "before"
    seen = f"Date {abs(skew):.0f} s {where} the image's updated_at"
    if abs(skew) <= MAX_DATE_SKEW_S:
        return _result("server_date", OK, seen, details=facts)
    return _result(
        "server_date",
        FAILED,
        seen,
        note="lock leases are judged by the answers' Date against updated_at: a skew makes claims look "
        "expired or live when they are not",
        details=facts,
    )


def _unprotect(facts: dict[str, Any], _: str) -> CheckResult:
    refused = facts.get("refused")
    if refused is not None:
        return _result(
            "unprotect",
            FAILED,
            f"refused: {_status_text(refused, facts.get('message'))}",
            note="retiring or changing a protected image starts by unprotecting it",
            details=facts,
        )
    if facts.get("protected_after"):
        return _result("unprotect", FAILED, "accepted, yet the image stayed protected", details=facts)
    return _result("unprotect", OK, "the image was unprotected", details=facts)


def _upload_keeps_bytes(facts: dict[str, Any], _: str) -> CheckResult:
    sent, stored = facts["sent"], facts["stored"]
    differing = [k for k in ("size", "checksum", "os_hash_value") if sent.get(k) != stored.get(k)]
    if not differing:
        return _result(
            "upload_keeps_bytes", OK, f"size, md5 and sha512 match the {sent['size']:,} bytes sent", details=facts
        )
    shown = "; ".join(f"{k} sent {sent.get(k)!s:.20}, stored {stored.get(k)!s:.20}" for k in differing)
    return _result(
        "upload_keeps_bytes",
        FAILED,
        f"differ: {shown}",
        note="copies and file uploads are verified by these fields: every one would fail",
        details=facts,
    )


def _protected_patch(facts: dict[str, Any], root: str) -> CheckResult:
    mode = facts["mode"]
    assumed = f"{root} (cloud.protected_patch)"
    if mode == "strict":
        seen = f"strict: refused with {_status_text(facts.get('status'), facts.get('message'))}"
    else:
        seen = "permissive: the PATCH went through"
    if mode == root:
        return _result("protected_patch", OK, seen, assumed=assumed, details=facts)
    if mode == "strict":  # the root says permissive: updates of protected images would fail
        return _result(
            "protected_patch",
            SET,
            seen,
            assumed=assumed,
            set="cloud.protected_patch: strict",
            note="then the tool unprotects around each update of a protected image and protects it again",
            details=facts,
        )
    return _result(
        "protected_patch",
        OK,
        seen,
        assumed=assumed,
        note="strict works here too; cloud.protected_patch: permissive would save two PATCHes per update",
        details=facts,
    )


def _download_gating(facts: dict[str, Any], _: str) -> CheckResult:
    if facts["gated"]:
        return _result("download_gating", OK, "gated: refused without the property", details=facts)
    return _result(
        "download_gating",
        NOTED,
        "not gated: downloaded without the property",
        note="nothing to set: copies turn nhncloud_allow_download on first, which does no harm here",
        difference=DIFFERENCES["download_gating"],
        details=facts,
    )


def _download_refused_status(facts: dict[str, Any], _: str) -> CheckResult:
    if not facts["gated"]:
        return _result("download_refused_status", SKIPPED, "not checked: downloads were not refused", details=facts)
    status = facts["status"]
    seen = f"refused with {_status_text(status, facts.get('message'))}"
    if status == ASSUMED_REFUSED_STATUS:
        return _result("download_refused_status", OK, seen, details=facts)
    note = "nothing to set: copies turn nhncloud_allow_download on before reading, whatever the refusal's status"
    if status == 404:
        note += "; a copy that fails on it would read as a missing image"
    return _result("download_refused_status", NOTED, seen, note=note, details=facts)


def _client_image_id(facts: dict[str, Any], _: str) -> CheckResult:
    if facts["accepted"]:
        return _result("client_image_id", OK, "accepted", details=facts)
    if facts.get("ignored"):
        seen = "ignored: the server chose another id"
    else:
        seen = f"refused with {_status_text(facts.get('status'), facts.get('message'))}"
    return _result(
        "client_image_id",
        NOTED,
        seen,
        note="the apply lock creates its claim without an id and finds it by its holder token",
        details=facts,
    )


def _deleted_id_reuse(facts: dict[str, Any], _: str) -> CheckResult:
    if facts["reusable"]:
        return _result(
            "deleted_id_reuse",
            NOTED,
            "reusable: an image was created with a deleted image's id",
            note="a retried create after a lost answer could meet a new image under an old id",
            details=facts,
        )
    return _result(
        "deleted_id_reuse", OK, f"refused with {_status_text(facts.get('status'), facts.get('message'))}", details=facts
    )


def _property_filters(facts: dict[str, Any], _: str) -> CheckResult:
    seen = "honoured" if facts["honoured"] else "ignored: the filter had no effect"
    return _result("property_filters", OK, seen, details=facts)


def _os_type_required(facts: dict[str, Any], _: str) -> CheckResult:
    if facts["required"]:
        return _result(
            "os_type_required",
            OK,
            f"required: refused with {_status_text(facts.get('status'), facts.get('message'))}",
            details=facts,
        )
    return _result(
        "os_type_required",
        NOTED,
        "not required: an image was created without it",
        note="nothing to set: the tool sends os_type anyway",
        difference=DIFFERENCES["os_type_required"],
        details=facts,
    )


def _unknown_member(facts: dict[str, Any], _: str) -> CheckResult:
    if facts["accepted"]:
        return _result(
            "unknown_member",
            OK,
            "accepted",
            note="a mistyped project id in share: is accepted silently: check ids in review",
            details=facts,
        )
    return _result(
        "unknown_member",
        OK,
        f"refused with {_status_text(facts.get('status'), facts.get('message'))}",
        note="a mistyped project id in share: fails at apply",
        details=facts,
    )


_CLASSIFIERS = {
    "read_after_write": _read_after_write,
    "name_filter": _name_filter,
    "patch_moves_updated_at": _patch_moves_updated_at,
    "server_date": _server_date,
    "unprotect": _unprotect,
    "upload_keeps_bytes": _upload_keeps_bytes,
    "protected_patch": _protected_patch,
    "download_gating": _download_gating,
    "download_refused_status": _download_refused_status,
    "client_image_id": _client_image_id,
    "deleted_id_reuse": _deleted_id_reuse,
    "property_filters": _property_filters,
    "os_type_required": _os_type_required,
    "unknown_member": _unknown_member,
}
assert set(_CLASSIFIERS) == set(CHECKS)


def region_report(
    region: str, observations: Sequence[Observation], cleanup: Cleanup, *, protected_patch: str
) -> RegionReport:
    """Classify a region's observations, in the fixed order of CHECKS; a check never observed is an error."""
    seen = {o.check: o for o in observations}
    results = tuple(
        classify(
            seen.get(check) or Observation(check, error="the run stopped before it"), protected_patch=protected_patch
        )
        for check in ORDER
    )
    return RegionReport(region, results, cleanup)
