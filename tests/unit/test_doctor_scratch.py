"""The rules for deleting a killed doctor run's scratch image, one by one."""

from __future__ import annotations

import pytest

from reconciler.cloud.records import Image, parse_server_time
from reconciler.doctor.scratch import leftover_problem, looks_like_scratch

NOW = parse_server_time("2026-11-30T12:00:00Z")


def image(**changes):
    doc = {
        "id": "i-1",
        "name": "reconciler-doctor-abc123",
        "status": "queued",
        "protected": False,
        "size": None,
        "created_at": "2026-11-30T10:30:00Z",
        "os_type": "linux",
        "reconciler_doctor": "abc123",
    }
    doc.update(changes)
    return Image.from_api("KR1", {k: v for k, v in doc.items() if v is not ...})


def test_an_old_small_unused_scratch_image_may_go():
    assert leftover_problem(image(), NOW, members=0, used=False) is None
    assert leftover_problem(image(size=1024 * 1024, protected=True), NOW, members=0, used=False) is None


@pytest.mark.parametrize(
    ("changes", "kwargs", "reason"),
    [
        ({"reconciler_doctor": ...}, {}, "no valid reconciler_doctor property"),
        ({"reconciler_doctor": "Not A Run"}, {}, "no valid reconciler_doctor property"),
        ({"name": "reconciler-doctor-other"}, {}, "its name is not reconciler-doctor-abc123"),
        ({"reconciler_set": "web", "reconciler_key": "k"}, {}, "it carries reconciler_key, reconciler_set"),
        ({"size": 1024 * 1024 + 1}, {}, "it holds 1,048,577 bytes (over 1 MiB)"),
        ({"created_at": "2026-11-30T11:00:00Z"}, {}, "it is 60 min old (under an hour)"),
        ({"created_at": "2026-11-30T11:30:00Z"}, {}, "it is 30 min old (under an hour)"),
        ({"created_at": ...}, {}, "its age cannot be told"),
        ({}, {"members": 2}, "it has 2 member(s)"),
        ({}, {"members": 0, "used": True}, "it is in use by a server or volume"),
    ],
)
def test_each_rule_keeps_an_image(changes, kwargs, reason):
    problem = leftover_problem(image(**changes), NOW, **kwargs)
    assert problem is not None and problem.startswith(reason), problem


def test_without_the_servers_clock_nothing_is_old_enough():
    assert leftover_problem(image(), None, members=0, used=False).startswith("its age cannot be told")


def test_what_counts_as_a_scratch_image_to_look_at():
    assert looks_like_scratch(image())
    assert looks_like_scratch(image(name="web", reconciler_doctor="abc123"))
    assert looks_like_scratch(image(reconciler_doctor=...))
    assert not looks_like_scratch(image(name="web", reconciler_doctor=...))
