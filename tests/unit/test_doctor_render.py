"""doctor's text report without a server: behaviour / assumed / seen / set per check, the settings and
differences sections, the verdict, and colour only where asked."""

from __future__ import annotations

from reconciler.doctor.render import colorize, render_text
from reconciler.doctor.report import Cleanup, DoctorReport, Kept, Observation, Undeletable
from reconciler.doctor.verdicts import region_report

TARGET = {"kind": "nhn", "project": "p", "identity": "https://id.example/v2.0", "regions": ["KR1"]}


NO_CLEANUP = Cleanup()


def document(*observations, cleanup=NO_CLEANUP):
    region = region_report("KR1", list(observations), cleanup, protected_patch="permissive")
    return DoctorReport("abc123", TARGET, (region,)).to_json()


def test_each_check_shows_behaviour_assumed_seen_and_what_to_set():
    text = render_text(document(Observation("protected_patch", {"mode": "strict", "status": 403, "message": "no"})))
    lines = text.splitlines()
    at = lines.index("  setting  SET      PATCH on a protected image [protected_patch]")
    assert lines[at + 1 : at + 5] == [
        "                   assumed  permissive (cloud.protected_patch)",
        "                   seen     strict: refused with 403 no",
        "                   set      cloud.protected_patch: strict",
        "                   note     then the tool unprotects around each update of a protected image and protects it again",
    ]
    assert "Set in the root:\n  cloud.protected_patch: strict  (reconciler.yaml; seen in KR1)\n" in text


def test_the_verdict_names_failed_checks_and_undeletable_images():
    cleanup = Cleanup(created=1, undeletable=(Undeletable("i-1", "reconciler-doctor-abc123", "403 protected"),))
    text = render_text(document(Observation("read_after_write", {"probes": 20, "stale": 2}), cleanup=cleanup))
    assert "  fatal    FAILED   read-after-write listing [read_after_write]" in text
    assert "    COULD NOT DELETE i-1 (reconciler-doctor-abc123): 403 protected" in text
    # Every check not observed is an error: the verdict lists them all, read_after_write first.
    verdict = text.split("\n\n")[-1]
    assert verdict.startswith("FAILED: 6 fatal checks failed (KR1 read_after_write, KR1 name_filter, ")
    assert verdict.endswith(
        "Could not delete 1 scratch image(s); delete them by hand:\n  KR1 i-1 (reconciler-doctor-abc123): 403 protected\n"
    )


def test_earlier_runs_and_differences_are_listed():
    cleanup = Cleanup(
        earlier_deleted=("old-1",), earlier_kept=(Kept("old-2", "reconciler-doctor-x", "it has 1 member(s)"),)
    )
    text = render_text(
        document(
            Observation("download_gating", {"gated": False}),
            Observation("os_type_required", {"required": False}),
            cleanup=cleanup,
        )
    )
    assert "    deleted old-1, left by an earlier run\n" in text
    assert "    kept old-2 (reconciler-doctor-x), left by an earlier run: it has 1 member(s)\n" in text
    assert (
        "Differences from NHN's documented behaviour (nothing to change):\n  KR1  no download gating\n  KR1  `os_type` not required\n"
        in text
    )


def test_colour_marks_status_labels_and_the_verdict_only():
    text = render_text(document(Observation("property_filters", {"honoured": True})))
    coloured = colorize(text)
    assert "\033[32m  info     ok       custom-property list filters [property_filters]\033[0m" in coloured
    assert "\033[31mFAILED: " in coloured
    assert "\033[" not in coloured.split("[property_filters]")[1].split("\n")[1]  # detail lines stay plain
