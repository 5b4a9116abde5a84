"""Planning reads with lists, not one request per image: counted through the simulator's request counter,
so a regression to per-image reads fails CI."""

from __future__ import annotations

import textwrap

import requests
from support import OWNER, OWNER_USER, PARTNER

from reconciler.apply import Applier
from reconciler.cloud.auth import Credentials
from reconciler.cloud.nhn import connect
from reconciler.plan import Target
from reconciler.planner import build_plan
from reconciler.snapshot import read_snapshot
from reconciler.validate import load_desired_state

KEYS = 40
SHARED = 4


def inventory() -> dict:
    images = []
    for i in range(KEYS):
        key = f"img-{i:03d}"
        home_id = f"00000000-0000-4000-8000-{i:012d}"
        marks = {"reconciler_set": "scale", "reconciler_key": key, "reconciler_source": f"image:{home_id}"}
        shared = i < SHARED
        images.append(
            {"id": home_id, "project": OWNER, "region": "KR1", "name": key, "content": "same",
             "visibility": "shared" if shared else "private",
             "members": [{"project": PARTNER, "status": "accepted"}] if shared else [],
             "properties": {"os_type": "linux", **marks}}
        )  # fmt: skip
        for j, region in enumerate(("KR2", "JP1")):
            images.append(
                {"id": f"00000000-0000-4000-{8001 + j}-{i:012d}", "project": OWNER, "region": region, "name": key,
                 "content": "same", "visibility": "shared" if shared else "private",
                 "members": [{"project": PARTNER, "status": "accepted"}] if shared else [],
                 "properties": {"os_type": "linux", **marks, "reconciler_copy_of": home_id}}
            )  # fmt: skip
    images.append({"project": OWNER, "region": "KR1", "name": "unmanaged", "properties": {"os_type": "linux"}})
    return {
        "regions": ["KR1", "KR2", "JP1"],
        "projects": [
            {"id": OWNER, "users": [{"username": OWNER_USER[0], "api_password": OWNER_USER[1]}]},
            {"id": PARTNER},
        ],
        "images": images,
    }


def test_a_plan_reads_each_region_with_lists_and_members_only_where_shared(make_sim, tmp_path):
    sim = make_sim(inventory())
    (tmp_path / "reconciler.yaml").write_text(
        f"version: 1\nset: scale\ncloud: {{kind: nhn, project: {OWNER}}}\ndefaults: {{region: KR1}}\n"
    )
    manifest = ["version: 1", "images:"]
    for i in range(KEYS):
        share = f", share: [{PARTNER}]" if i < SHARED else ""
        manifest.append(
            f"  img-{i:03d}: {{source: {{image: 00000000-0000-4000-8000-{i:012d}}}, copies: [KR2, JP1]{share}}}"
        )
    (tmp_path / "images.yaml").write_text(textwrap.dedent("\n".join(manifest)) + "\n")
    desired = load_desired_state(tmp_path)
    client = connect(Credentials(*OWNER_USER, identity_url=sim.identity_url), OWNER)
    requests.delete(f"{sim.base_url}/_simulator/stats", timeout=5)

    snapshot = read_snapshot(client, desired)
    plan = build_plan(desired, snapshot, Target("nhn", OWNER, sim.identity_url, snapshot.regions))

    assert plan.actions == () and plan.refusals == ()
    routes = requests.get(f"{sim.base_url}/_simulator/stats", timeout=5).json()["routes"]
    shared_images = SHARED * 3  # each shared key: home and two copies
    assert routes.get("GET /image/{region}/v2/images") == 3  # one page per region
    assert routes.get("GET /image/{region}/v2/images/{image_id}/members") == shared_images
    assert "GET /image/{region}/v2/images/{image_id}" not in routes  # never one read per image
    # The minimum: identity, list pages and one members call per shared image; at most 1.1x that.
    minimum = 1 + 3 + shared_images
    assert sum(routes.values()) <= 1.1 * minimum, routes


def test_an_update_is_one_read_and_one_patch(make_sim, tmp_path):
    """apply checks an update's `expects` on a fresh read and builds the patch from that same read:
    a second read per action would cost a round trip on every one of thousands of updates."""
    sim = make_sim(inventory())
    (tmp_path / "reconciler.yaml").write_text(
        f"version: 1\nset: scale\ncloud: {{kind: nhn, project: {OWNER}}}\ndefaults: {{region: KR1}}\n"
    )
    manifest = ["version: 1", "images:"]
    for i in range(KEYS):
        share = f", share: [{PARTNER}]" if i < SHARED else ""
        manifest.append(
            f"  img-{i:03d}: {{name: renamed-{i}, source: {{image: 00000000-0000-4000-8000-{i:012d}}}, "
            f"copies: [KR2, JP1]{share}}}"
        )
    (tmp_path / "images.yaml").write_text("\n".join(manifest) + "\n")
    desired = load_desired_state(tmp_path)
    client = connect(Credentials(*OWNER_USER, identity_url=sim.identity_url), OWNER)
    plan = build_plan(desired, read_snapshot(client, desired), Target("nhn", OWNER, sim.identity_url, ("KR1",)))
    updates = [a for a in plan.actions if a.kind == "update"]
    assert len(updates) == len(plan.actions) >= KEYS
    requests.delete(f"{sim.base_url}/_simulator/stats", timeout=5)

    report = Applier(client, plan, parallelism=8).run()

    assert report.succeeded
    routes = requests.get(f"{sim.base_url}/_simulator/stats", timeout=5).json()["routes"]
    routes.pop("GET /_simulator/stats")
    assert routes == {
        "GET /image/{region}/v2/images/{image_id}": len(updates),
        "PATCH /image/{region}/v2/images/{image_id}": len(updates),
    }
