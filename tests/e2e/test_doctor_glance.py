"""`reconciler doctor` against two real Glance 33 servers behind the identity front:
it exits 0, lists Glance's two known differences from NHN (no download gating, `os_type` not required)
as differences, and leaves no scratch image behind, as Glance's own API shows."""

from __future__ import annotations

import json

import pytest

from reconciler.doctor.scratch import NAME_PREFIX, PROPERTY

pytestmark = pytest.mark.e2e

REGIONS = ("KR1", "JP1")


def scratch_left(e2e, region: str) -> list[dict]:
    return [i for i in e2e.glance(region).images() if (i["name"] or "").startswith(NAME_PREFIX) or PROPERTY in i]


def test_doctor_passes_on_glance_and_lists_its_differences_from_nhn(e2e):
    done = e2e.run("doctor", e2e.root, "--format", "json")
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout[-4000:]}\n{done.stderr[-2000:]}"
    assert done.stderr.startswith(f"reconciler doctor · set {e2e.set_name} · nhn 127.0.0.1")
    document = json.loads(done.stdout)
    assert [r["region"] for r in document["regions"]] == list(REGIONS)
    assert document["failed"] == [] and document["undeletable"] == []
    for region in REGIONS:
        differences = {d["difference"] for d in document["differences_from_nhn"] if d["region"] == region}
        assert differences == {"no download gating", "`os_type` not required"}, document["differences_from_nhn"]
        (report,) = [r for r in document["regions"] if r["region"] == region]
        checks = {c["check"]: c for c in report["checks"]}
        assert all(c["status"] == "ok" for c in checks.values() if c["class"] == "fatal"), checks
        # Glance: updates of protected images go through, and the tool's default setting fits.
        assert checks["protected_patch"]["status"] == "ok" and checks["protected_patch"]["details"]["mode"] == (
            "permissive"
        )
        assert checks["deleted_id_reuse"]["details"]["reusable"] is False
        assert report["scratch_images"]["created"] == len(report["scratch_images"]["deleted"])
        assert scratch_left(e2e, region) == []


def test_doctor_text_names_the_differences_and_the_verdict(e2e):
    done = e2e.run("doctor", e2e.root, "--region", "JP1")
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout[-4000:]}\n{done.stderr[-2000:]}"
    assert done.stdout.startswith(f"reconciler doctor · set {e2e.set_name} · nhn 127.0.0.1")
    assert (
        "Differences from NHN's documented behaviour (nothing to change):\n"
        "  JP1  no download gating\n  JP1  `os_type` not required\n"
    ) in done.stdout
    assert done.stdout.endswith("OK: no fatal check failed.\n")
    assert scratch_left(e2e, "JP1") == []
