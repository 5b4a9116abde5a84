"""`reconciler doctor` against the simulator: its defaults pass (exit 0), each knob
flipped is reported with what was seen and what to set (exit 1 only for a fatal check), no scratch image
outlives a run (also when a check fails midway), at most three exist at once, and a killed run's scratch
images are deleted only when every rule allows it."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from support import OWNER, OWNER_USER, PARTNER, PARTNER_USER, Api

from reconciler.cli import main
from reconciler.cloud.auth import Credentials
from reconciler.cloud.nhn import connect
from reconciler.doctor.probes import check_region
from reconciler.doctor.report import FATAL
from reconciler.doctor.scratch import NAME_PREFIX, PROPERTY
from reconciler.doctor.verdicts import CHECKS
from reconciler.simulator.qcow2 import Qcow2Image

CREDENTIAL_VARIABLES = ("NHN_CLOUD_USERNAME", "NHN_CLOUD_API_PASSWORD", "OS_USERNAME", "OS_PASSWORD", "NO_COLOR")
PATCH_ROUTE = "PATCH /image/{region}/v2/images/{image_id}"
ADD_MEMBER_ROUTE = "POST /image/{region}/v2/images/{image_id}/members"
HOUR_AND_MORE = 3700


@pytest.fixture(autouse=True)
def no_credentials(monkeypatch):
    for name in CREDENTIAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def seed(regions: tuple[str, ...] = ("KR1",), *, images: list | None = None, servers: list | None = None, **knobs):
    return {
        "regions": list(regions),
        "projects": [
            {"id": OWNER, "users": [{"username": OWNER_USER[0], "api_password": OWNER_USER[1]}]},
            {"id": PARTNER, "users": [{"username": PARTNER_USER[0], "api_password": PARTNER_USER[1]}]},
        ],
        "servers": servers or [],
        "images": [
            {"project": OWNER, "region": "KR1", "name": "web-base", "properties": {"os_type": "linux"}},
            *(images or []),
        ],
        "behaviour": knobs,
    }


class Target:
    """A root, a simulator state file shared by `--sim-state` runs and a served simulator, and an API
    client of the owner on that simulator, to look at what a run left."""

    def __init__(self, tmp_path: Path, make_sim: Any, seed_doc: dict[str, Any], *, root_extra: str = "") -> None:
        self.state = tmp_path / "state.json"
        self.sim = make_sim(seed_doc, state_file=self.state)
        self.api = Api(self.sim, *OWNER_USER, OWNER)
        self.root = tmp_path / "root"
        self.root.mkdir()
        (self.root / "reconciler.yaml").write_text(
            f"version: 1\nset: web-platform\ncloud: {{kind: simulator{root_extra}}}\ndefaults: {{region: KR1}}\n"
        )

    def doctor(self, capsys: Any, *args: str, fmt: str = "json") -> tuple[int, Any, str]:
        code = main(["doctor", str(self.root), "--sim-state", str(self.state), "--format", fmt, *args])
        captured = capsys.readouterr()
        return code, json.loads(captured.out) if fmt == "json" else captured.out, captured.err

    def images(self, region: str = "KR1") -> list[dict[str, Any]]:
        answer = self.api.image("GET", f"/v2/images?owner={OWNER}&limit=1000", region)
        assert answer.status_code == 200, answer.text
        return answer.json()["images"]

    def scratch_left(self, region: str = "KR1") -> list[dict[str, Any]]:
        return [i for i in self.images(region) if (i["name"] or "").startswith(NAME_PREFIX) or PROPERTY in i]

    def advance_clock(self, seconds: float) -> None:
        answer = requests.post(f"{self.sim.base_url}/_simulator/clock", json={"advance_s": seconds}, timeout=10)
        assert answer.status_code == 200, answer.text


@pytest.fixture
def target(tmp_path, make_sim):
    def build(seed_doc: dict[str, Any] | None = None, **kwargs: Any) -> Target:
        return Target(tmp_path, make_sim, seed_doc or seed(), **kwargs)

    return build


def checks_of(document: dict[str, Any], region: str = "KR1") -> dict[str, dict[str, Any]]:
    (report,) = [r for r in document["regions"] if r["region"] == region]
    return {c["check"]: c for c in report["checks"]}


# -- the simulator's defaults ---------------------------------------------------------------------


def test_defaults_pass_in_every_region_of_the_root_and_leave_no_scratch_image(target, capsys):
    t = target(seed(("KR1", "JP1")))
    code, text, err = t.doctor(capsys, fmt="text")
    assert code == 0, text + err
    lines = text.splitlines()
    assert lines[0].startswith("reconciler doctor · set web-platform · SIMULATOR state")
    assert lines[-1] == "OK: no fatal check failed."
    assert "\nKR1\n" in text and "\nJP1\n" in text
    for check in CHECKS:
        assert f"[{check}]" in text
    assert "FAILED" not in text and "ERROR" not in text and "SET " not in text
    assert "Differences from NHN" not in text
    assert t.scratch_left("KR1") == [] and t.scratch_left("JP1") == []


def test_json_is_one_document_with_the_target_and_every_check(target, capsys):
    t = target()
    code, document, err = t.doctor(capsys)
    assert code == 0 and document["exit_code"] == 0
    assert err.startswith("reconciler doctor · set web-platform · SIMULATOR")
    assert document["format_version"] == "1" and document["command"] == "doctor"
    assert document["target"]["kind"] == "simulator" and document["target"]["project"] == OWNER
    assert [r["region"] for r in document["regions"]] == ["KR1"]
    checks = checks_of(document)
    assert list(checks) == list(CHECKS)
    assert {c: v["class"] for c, v in checks.items()} == {c: i.klass for c, i in CHECKS.items()}
    assert {v["status"] for v in checks.values()} == {"ok"}, checks
    assert document["settings"] == [] and document["differences_from_nhn"] == [] and document["failed"] == []
    scratch = document["regions"][0]["scratch_images"]
    assert scratch["created"] == len(scratch["deleted"]) >= 2 and scratch["undeletable"] == []
    assert t.scratch_left() == []


def test_region_flag_limits_the_run_and_an_unknown_region_is_a_usage_error(target, capsys):
    t = target(seed(("KR1", "JP1")))
    code, document, _ = t.doctor(capsys, "--region", "JP1")
    assert code == 0 and [r["region"] for r in document["regions"]] == ["JP1"]
    code = main(["doctor", str(t.root), "--sim-state", str(t.state), "--region", "KR9"])
    err = capsys.readouterr().err
    assert code == 1 and "no image endpoint in region KR9" in err and "JP1, KR1" in err


# -- each knob flipped ----------------------------------------------------------------------------

# knob, value, the check that reports it, its status, what its `seen` says, what to set, exit code.
KNOBS = [
    ("listing_lag_s", 2, "read_after_write", "failed", "20 of 20 lacked the image", None, 1),
    ("name_filter", False, "name_filter", "failed", "ignored: the list also held", None, 1),
    ("patch_moves_updated_at", False, "patch_moves_updated_at", "failed", "stayed", None, 1),
    ("clock_skew_s", 30, "server_date", "failed", "Date 30 s after the image's updated_at", None, 1),
    ("unprotect_allowed", False, "unprotect", "failed", "refused: 403", None, 1),
    ("upload_keeps_bytes", False, "upload_keeps_bytes", "failed", "differ: size", None, 1),
    (
        "protected_patch",
        "strict",
        "protected_patch",
        "set",
        "strict: refused with 403",
        "cloud.protected_patch: strict",
        0,
    ),
    ("download_refused_status", 404, "download_refused_status", "noted", "refused with 404", None, 0),
    ("download_gating", False, "download_gating", "noted", "not gated", None, 0),
    ("client_image_ids", "refuse", "client_image_id", "noted", "refused with 403", None, 0),
    ("deleted_ids_reusable", True, "deleted_id_reuse", "noted", "reusable", None, 0),
    ("property_filters", True, "property_filters", "ok", "honoured", None, 0),
    ("os_type_required", False, "os_type_required", "noted", "not required", None, 0),
    ("unknown_member", "refuse", "unknown_member", "ok", "refused with 404", None, 0),
]


@pytest.mark.parametrize(
    ("knob", "value", "check", "status", "seen", "to_set", "exit_code"), KNOBS, ids=[k[0] for k in KNOBS]
)
def test_each_knob_flipped_is_reported(target, capsys, knob, value, check, status, seen, to_set, exit_code):
    t = target(seed(**{knob: value}))
    code, document, _ = t.doctor(capsys)
    assert code == exit_code == document["exit_code"]
    result = checks_of(document)[check]
    assert result["status"] == status, result
    assert seen in result["seen"], result
    assert result["set"] == to_set
    assert result["behaviour"] == CHECKS[check].behaviour
    if to_set:
        assert {"region": "KR1", "check": check, "set": to_set, "file": "reconciler.yaml"} in document["settings"]
    if exit_code:
        assert {"region": "KR1", "check": check} in document["failed"]
    else:  # nothing fatal is disturbed by a knob that is not
        assert all(c["status"] == "ok" for c in checks_of(document).values() if c["class"] == FATAL)
    if knob == "listing_lag_s":
        time.sleep(value + 0.5)  # what is listed catches up with the deletes
    left = t.scratch_left()
    if knob == "unprotect_allowed":
        # It stays protected, so it cannot be deleted: printed, and doctor exits 1.
        assert [i["id"] for i in left] == [u["id"] for u in document["undeletable"]] and left[0]["protected"]
    else:
        assert left == [] and document["undeletable"] == []


def test_text_names_the_setting_to_change_and_the_differences_from_nhn(target, capsys):
    t = target(seed(protected_patch="strict", download_gating=False, os_type_required=False))
    code, text, _ = t.doctor(capsys, fmt="text")
    assert code == 0, text
    assert "SET      PATCH on a protected image [protected_patch]" in text
    assert "set      cloud.protected_patch: strict" in text
    assert "Set in the root:\n  cloud.protected_patch: strict  (reconciler.yaml; seen in KR1)" in text
    assert "Differences from NHN's documented behaviour (nothing to change):\n  KR1  no download gating\n" in text
    assert "  KR1  `os_type` not required\n" in text
    assert text.endswith("OK: no fatal check failed.\n")


def test_a_root_already_strict_is_not_asked_to_change(target, capsys):
    t = target(seed(protected_patch="strict"), root_extra=", protected_patch: strict")
    code, document, _ = t.doctor(capsys)
    assert code == 0 and checks_of(document)["protected_patch"]["status"] == "ok" and document["settings"] == []


def test_unprotect_refused_prints_the_image_it_cannot_delete(target, capsys):
    t = target(seed(unprotect_allowed=False))
    code, text, _ = t.doctor(capsys, fmt="text")
    assert code == 1
    (left,) = t.scratch_left()
    assert f"COULD NOT DELETE {left['id']}" in text
    assert f"Could not delete 1 scratch image(s); delete them by hand:\n  KR1 {left['id']}" in text


# -- failures midway ------------------------------------------------------------------------------


def test_a_check_failing_midway_still_deletes_every_scratch_image(target, capsys):
    # The fifth PATCH is the fourth read-after-write probe.
    t = target(seed(faults=[{"route": PATCH_ROUTE, "on_call": 5, "status": 500}]))
    code, document, _ = t.doctor(capsys)
    assert code == 1
    checks = checks_of(document)
    assert checks["read_after_write"]["status"] == "error" and "500" in checks["read_after_write"]["seen"]
    assert document["failed"] == [{"region": "KR1", "check": "read_after_write"}]
    assert checks["unprotect"]["status"] == "ok"  # the run went on
    assert t.scratch_left() == []


def test_a_protected_scratch_image_is_unprotected_before_its_delete(target, capsys):
    # PATCH 24 is the unprotect check's: it fails, and the cleanup unprotects the image itself.
    t = target(seed(faults=[{"route": PATCH_ROUTE, "on_call": 24, "status": 500}]))
    code, document, _ = t.doctor(capsys)
    assert code == 1
    assert checks_of(document)["unprotect"]["status"] == "error"
    assert document["undeletable"] == [] and t.scratch_left() == []


def test_a_run_stopped_by_a_lost_connection_still_cleans_up(target, capsys):
    t = target(seed(faults=[{"route": ADD_MEMBER_ROUTE, "on_call": [1, 2, 3], "drop": True}]))
    code = main(["doctor", str(t.root), "--sim-state", str(t.state)])
    err = capsys.readouterr().err
    assert code == 1 and "error:" in err and "no answer" in err
    assert t.scratch_left() == []


def test_at_most_three_scratch_images_exist_at_once(make_sim):
    sim = make_sim(seed(), os_type_required=False, deleted_ids_reusable=True)
    client = connect(Credentials(*OWNER_USER, identity_url=sim.identity_url), OWNER, poll_delays=(0.01, 0.05))

    class Counting:
        def __init__(self) -> None:
            self.alive: set[str] = set()
            self.most = 0

        def __getattr__(self, name: str) -> Any:
            return getattr(client, name)

        def create_image(self, region: str, attributes: Any) -> Any:
            image = client.create_image(region, attributes)
            self.alive.add(image.id)
            self.most = max(self.most, len(self.alive))
            return image

        def delete_image(self, region: str, image_id: str) -> bool:
            gone = client.delete_image(region, image_id)
            self.alive.discard(image_id)
            return gone

    counting = Counting()
    try:
        report = check_region(counting, "KR1", "budget1", protected_patch="permissive")
    finally:
        client.close()
    # A and B (uploaded, deleted after its checks), A and C (no os_type), then A's id again once A is gone.
    assert counting.most <= 3 and counting.alive == set()
    assert report.cleanup.created == 4 and len(report.cleanup.deleted) == 4


# -- scratch images of killed runs ----------------------------------------------------------------


def leftover(run_id: str, **extra: Any) -> dict[str, Any]:
    properties = {"os_type": "linux", PROPERTY: run_id, **extra.pop("properties", {})}
    return {
        "project": OWNER,
        "region": "KR1",
        "name": extra.pop("name", NAME_PREFIX + run_id),
        "status": "queued",
        "properties": properties,
        **extra,
    }


def test_a_killed_runs_scratch_image_is_deleted_only_when_every_rule_allows(target, capsys):
    images = [
        {"id": "00000000-0000-4000-8000-00000000d001", **leftover("oldrun1")},
        {"id": "00000000-0000-4000-8000-00000000d002", **leftover("oldrun2", protected=True)},
        {"id": "00000000-0000-4000-8000-00000000d003", **leftover("namerun", name=NAME_PREFIX + "other")},
        {"id": "00000000-0000-4000-8000-00000000d004", **leftover("setrun", properties={"reconciler_set": "web"})},
        {
            "id": "00000000-0000-4000-8000-00000000d005",
            **leftover("sharedrun", visibility="shared", members=[{"project": PARTNER}]),
        },
        {"id": "00000000-0000-4000-8000-00000000d006", **leftover("bigrun", status="active", size_mb=2)},
        {"id": "00000000-0000-4000-8000-00000000d007", **leftover("usedrun")},
    ]
    servers = [
        {
            "project": OWNER,
            "region": "KR1",
            "name": "batch-01",
            "flavor": "u2.c2m4",
            "status": "SHUTOFF",
            "os_type": "linux",
            "base_image": NAME_PREFIX + "usedrun",
        }
    ]
    t = target(seed(images=images, servers=servers))
    t.advance_clock(HOUR_AND_MORE)
    young = t.api.image(
        "POST", "/v2/images", json={"name": NAME_PREFIX + "youngrun", PROPERTY: "youngrun", "os_type": "linux"}
    )
    assert young.status_code == 201, young.text
    code, document, _ = t.doctor(capsys)
    assert code == 0, document
    earlier = document["regions"][0]["scratch_images"]["earlier_runs"]
    assert sorted(earlier["deleted"]) == [images[0]["id"], images[1]["id"]]
    kept = {k["id"]: k["reason"] for k in earlier["kept"]}
    assert "its name is not reconciler-doctor-namerun" in kept[images[2]["id"]]
    assert kept[images[3]["id"]] == "it carries reconciler_set"
    assert kept[images[4]["id"]] == "it has 1 member(s)"
    assert "over 1 MiB" in kept[images[5]["id"]]
    assert kept[images[6]["id"]] == "it is in use by a server or volume"
    assert "under an hour" in kept[young.json()["id"]]
    assert len(kept) == 6
    assert sorted(i["id"] for i in t.scratch_left()) == sorted(kept)


def test_a_young_scratch_image_is_kept_until_it_is_an_hour_old(target, capsys):
    t = target(seed(images=[{"id": "00000000-0000-4000-8000-00000000d001", **leftover("oldrun1")}]))
    code, document, _ = t.doctor(capsys)
    assert code == 0
    assert [k["id"] for k in document["regions"][0]["scratch_images"]["earlier_runs"]["kept"]] == [
        "00000000-0000-4000-8000-00000000d001"
    ]
    t.advance_clock(HOUR_AND_MORE)
    code, document, _ = t.doctor(capsys, fmt="text")
    assert code == 0
    assert "deleted 00000000-0000-4000-8000-00000000d001, left by an earlier run" in document
    assert t.scratch_left() == []


def test_uploaded_scratch_bytes_stay_under_the_leftover_size_limit():
    from reconciler.doctor.probes import scratch_qcow2
    from reconciler.doctor.scratch import LEFTOVER_MAX_SIZE

    payload = scratch_qcow2("reconciler-doctor x")
    assert len(payload) <= LEFTOVER_MAX_SIZE < Qcow2Image(1, "x").file_size
    assert payload[:4] == b"QFI\xfb"


# -- text from the cloud is shown escaped (issue 17) ---------------------------------------------------

HOSTILE_NAME = "evil\x1b[2J\x1b[H\n  all checks ok\u202e"


def test_a_hostile_scratch_image_name_is_shown_escaped(target, capsys):
    # Anyone in the project can name an image and set reconciler_doctor on it: a killed run's scratch image,
    # kept (its name is not doctor's), printed by name. Raw, it cleared the screen and printed a fake line.
    images = [{"id": "00000000-0000-4000-8000-00000000d001", **leftover("x", name=HOSTILE_NAME)}]
    t = target(seed(images=images))
    code, text, err = t.doctor(capsys, fmt="text")
    assert code == 0, text
    printed = text + err
    assert "\x1b" not in printed and "\u202e" not in printed, printed
    assert "\n  all checks ok" not in printed
    assert "(evil\\x1b[2J\\x1b[H\\x0a  all checks ok\\u202e), left by an earlier run" in text, text


def test_every_value_of_the_doctor_report_is_escaped_in_text():
    from reconciler.doctor.render import render_text

    bad = "v\x1b[31m\nFAKE\u202e"
    check = {"class": "fatal", "status": "failed", "behaviour": bad, "check": bad, "assumed": bad, "seen": bad,
             "set": bad, "note": bad}  # fmt: skip
    image = {"id": bad, "name": bad, "error": bad, "region": bad, "reason": bad}
    document = {
        "regions": [
            {
                "region": bad,
                "checks": [check],
                "scratch_images": {
                    "created": 1,
                    "deleted": [],
                    "undeletable": [image],
                    "earlier_runs": {"deleted": [bad], "kept": [image]},
                    "notes": [bad],
                },
            }
        ],
        "settings": [{"set": bad, "file": bad, "region": bad}],
        "differences_from_nhn": [{"region": bad, "difference": bad}],
        "failed": [{"region": bad, "check": bad}],
        "undeletable": [image],
    }
    text = render_text(document)
    assert "\x1b" not in text and "\u202e" not in text and "\nFAKE" not in text, text
    assert text.count("v\\x1b[31m\\x0aFAKE\\u202e") >= 20


def test_a_scratch_image_left_by_a_stopped_run_is_warned_escaped(monkeypatch, capsys):
    from reconciler.doctor import probes

    class Left:
        id, name, error = "00000000-0000-4000-8000-00000000d009", HOSTILE_NAME, "500: " + HOSTILE_NAME

    class Scratch:
        undeletable = [Left()]

        def finish(self):
            pass

    class Probe:
        def __init__(self, *args, **kwargs):
            self.scratch = Scratch()

        def run(self):
            raise RuntimeError("stopped")

    monkeypatch.setattr(probes, "RegionProbe", Probe)
    monkeypatch.setattr(probes, "_clean_earlier", lambda *a: probes.Cleanup())
    lines: list[str] = []
    with pytest.raises(RuntimeError):
        probes.check_region(None, "KR1", "run", protected_patch="permissive", warn=lines.append)
    (line,) = lines
    assert "\x1b" not in line and "\n" not in line and "\u202e" not in line, line
