"""Planning reads with lists, not one request per image: counted through the simulator's request counter,
so a regression to per-image reads fails CI."""

from __future__ import annotations

import dataclasses
import time

import requests
from support import OWNER, OWNER_USER, PARTNER, PARTNER_USER

from reconciler.apply import Applier
from reconciler.cli import main
from reconciler.cloud.auth import Credentials
from reconciler.cloud.nhn import NhnCloudClient, connect
from reconciler.desired import ShareRule
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


def write_root(folder, *, renamed: bool = False) -> None:
    """A root declaring the inventory: every key copied to KR2 and JP1, the first SHARED shared; with
    `renamed`, every key also renamed (one update each)."""
    (folder / "reconciler.yaml").write_text(
        f"version: 1\nset: scale\ncloud: {{kind: nhn, project: {OWNER}}}\ndefaults: {{region: KR1}}\n"
    )
    manifest = ["version: 1", "images:"]
    for i in range(KEYS):
        name = f"name: renamed-{i}, " if renamed else ""
        share = f", share: [{PARTNER}]" if i < SHARED else ""
        manifest.append(
            f"  img-{i:03d}: {{{name}source: {{image: 00000000-0000-4000-8000-{i:012d}}}, copies: [KR2, JP1]{share}}}"
        )
    (folder / "images.yaml").write_text("\n".join(manifest) + "\n")


def reset_counts(sim) -> None:
    requests.delete(f"{sim.base_url}/_simulator/stats", timeout=5)


def counts(sim) -> dict[str, int]:
    """Requests per route since the last reset, the counter's own calls left out."""
    routes = requests.get(f"{sim.base_url}/_simulator/stats", timeout=5).json()["routes"]
    return {route: n for route, n in routes.items() if "/_simulator/" not in route}


def test_a_plan_reads_each_region_with_lists_and_members_only_where_shared(make_sim, tmp_path):
    sim = make_sim(inventory())
    write_root(tmp_path)
    desired = load_desired_state(tmp_path)
    client = connect(Credentials(*OWNER_USER, identity_url=sim.identity_url), OWNER)
    reset_counts(sim)

    snapshot = read_snapshot(client, desired)
    plan = build_plan(desired, snapshot, Target("nhn", OWNER, sim.identity_url, snapshot.regions))

    assert plan.actions == () and plan.refusals == ()
    routes = counts(sim)
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
    write_root(tmp_path, renamed=True)
    desired = load_desired_state(tmp_path)
    client = connect(Credentials(*OWNER_USER, identity_url=sim.identity_url), OWNER)
    plan = build_plan(desired, read_snapshot(client, desired), Target("nhn", OWNER, sim.identity_url, ("KR1",)))
    updates = [a for a in plan.actions if a.kind == "update"]
    assert len(updates) == len(plan.actions) >= KEYS
    reset_counts(sim)

    report = Applier(client, plan, parallelism=8).run()

    assert report.succeeded
    routes = counts(sim)
    assert routes == {
        "GET /image/{region}/v2/images/{image_id}": len(updates),
        "PATCH /image/{region}/v2/images/{image_id}": len(updates),
    }


SERVERS = 30


def test_servers_are_listed_and_read_one_by_one_only_for_a_create(make_sim, tmp_path):
    """Instance sources: one server list per home region, and the per-server reads imaging needs (the
    server, its volume attachments, the flavors) only for the key that has no image yet."""
    servers = [
        {"id": f"10000000-0000-4000-8000-{i:012d}", "project": OWNER, "region": "KR1", "name": f"web-{i:02d}",
         "flavor": "m2.c4m8", "status": "SHUTOFF", "os_type": "linux", "disk_mb": 1}
        for i in range(SERVERS)
    ]  # fmt: skip
    images = [
        {"id": f"00000000-0000-4000-8000-{i:012d}", "project": OWNER, "region": "KR1", "name": f"web-{i:02d}",
         "properties": {"os_type": "linux", "reconciler_set": "scale", "reconciler_key": f"web-{i:02d}",
                        "reconciler_source": f"instance:10000000-0000-4000-8000-{i:012d}"}}
        for i in range(SERVERS - 1)  # the last server's key has no image yet: it is the one create
    ]  # fmt: skip
    sim = make_sim(
        {
            "regions": ["KR1"],
            "projects": [{"id": OWNER, "users": [{"username": OWNER_USER[0], "api_password": OWNER_USER[1]}]}],
            "servers": servers,
            "images": images,
        }
    )
    (tmp_path / "reconciler.yaml").write_text(
        f"version: 1\nset: scale\ncloud: {{kind: nhn, project: {OWNER}}}\ndefaults: {{region: KR1}}\n"
    )
    lines = ["version: 1", "images:"] + [
        f"  web-{i:02d}: {{name: web-{i:02d}, source: {{instance: web-{i:02d}}}}}" for i in range(SERVERS)
    ]
    (tmp_path / "images.yaml").write_text("\n".join(lines) + "\n")
    desired = load_desired_state(tmp_path)
    connected = connect(Credentials(*OWNER_USER, identity_url=sim.identity_url), OWNER)
    client = NhnCloudClient(connected._http, page_size=10)
    reset_counts(sim)

    snapshot = read_snapshot(client, desired)
    plan = build_plan(desired, snapshot, Target("nhn", OWNER, sim.identity_url, snapshot.regions))

    assert [(a.kind, a.key) for a in plan.actions] == [("create", f"web-{SERVERS - 1:02d}")]
    # Every recorded source (an instance id) resolved to the instance the manifest names.
    assert [w.code for w in plan.warnings] == ["linux_machine_id"]  # the create's advice only
    routes = counts(sim)
    compute = {route: n for route, n in routes.items() if route.startswith(("GET /compute", "GET /volume"))}
    assert compute == {
        "GET /compute/{region}/v2/{tenant_id}/servers/detail": SERVERS // 10 + 1,  # pages of 10, the last empty
        "GET /compute/{region}/v2/{tenant_id}/servers/{server_id}": 1,
        "GET /compute/{region}/v2/{tenant_id}/servers/{server_id}/os-volume_attachments": 1,
        "GET /compute/{region}/v2/{tenant_id}/flavors/detail": 1,
    }


# -- who uses an image: read only where a plan deletes (issue 22) -----------------------------------

USAGE_LISTS = ("servers/detail", "volumes/detail")
WEB_HOME = "00000000-0000-4000-8000-0000000000c1"
WEB_OLD = "00000000-0000-4000-8000-0000000000c2"


def usage_world() -> dict:
    """Three regions with servers and volumes in each, two sets: `web` deletes one image in KR1 (nobody
    uses it); `scale` (the inventory above) is copied everywhere and has nothing to delete."""
    seed = inventory()
    web = {"reconciler_set": "web", "os_type": "linux"}
    seed["images"] += [
        {"id": WEB_HOME, "project": OWNER, "region": "KR1", "name": "web-base",
         "properties": {**web, "reconciler_key": "web-base", "reconciler_source": f"image:{WEB_HOME}"}},
        {"id": WEB_OLD, "project": OWNER, "region": "KR1", "name": "web-base-old",
         "properties": {**web, "reconciler_key": "web-base-old", "reconciler_source": f"image:{WEB_OLD}"}},
    ]  # fmt: skip
    seed["servers"] = [
        {"project": OWNER, "region": region, "name": f"app-{region}-{n}", "flavor": "u2.c2m4", "os_type": "linux",
         "image": WEB_HOME if region == "KR1" else "img-000"}
        for region in ("KR1", "KR2", "JP1") for n in range(3)
    ]  # fmt: skip
    seed["volumes"] = [
        {"project": OWNER, "region": region, "name": f"data-{region}", "image": WEB_HOME if region == "KR1" else None}
        for region in ("KR1", "KR2", "JP1")
    ]
    for volume in seed["volumes"]:
        if volume["image"] is None:
            del volume["image"]
    return seed


def usage_root(tmp_path, name: str) -> str:
    """The `web` root (web-base declared, web-base-old not) or the `scale` root (every key renamed: 40
    updates, no delete), on NHN Cloud's API."""
    folder = tmp_path / name
    folder.mkdir()
    if name == "scale":
        write_root(folder, renamed=True)
    else:
        (folder / "reconciler.yaml").write_text(
            f"version: 1\nset: web\ncloud: {{kind: nhn, project: {OWNER}}}\ndefaults: {{region: KR1}}\n"
        )
        (folder / "images.yaml").write_text(f"version: 1\nimages:\n  web-base: {{source: {{image: {WEB_HOME}}}}}\n")
    return str(folder)


def usage_reads(sim, since: float) -> dict[tuple[str, str], int]:
    """(region, list) -> how many server and volume list pages were read since `since`."""
    read: dict[tuple[str, str], int] = {}
    for entry in sim.request_log(since):
        parts = entry["path"].split("/")  # /compute/KR1/v2/<tenant>/servers/detail
        listing = "/".join(parts[-2:])
        if entry["method"] == "GET" and listing in USAGE_LISTS:
            read[(parts[2], listing)] = read.get((parts[2], listing), 0) + 1
    return read


def test_usage_is_read_only_in_the_regions_a_plan_deletes_in_and_again_before_apply_deletes(
    make_sim, tmp_path, monkeypatch, capsys
):
    """A root without deletes (40 updates) reads no server or volume list, planning or applying; a root deleting one
    image in KR1 reads one servers and one volumes page there at plan time, and apply one more pair before
    its delete (its own plan's, then its own check's), none in KR2 or JP1."""
    sim = make_sim(usage_world())
    for name, value in (("NHN_CLOUD_USERNAME", OWNER_USER[0]), ("NHN_CLOUD_API_PASSWORD", OWNER_USER[1])):
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("NHN_CLOUD_IDENTITY_URL", sim.identity_url)
    scale, web = usage_root(tmp_path, "scale"), usage_root(tmp_path, "web")

    start = time.time()
    assert main(["plan", scale, "--detailed-exitcode"]) == 2
    assert main(["apply", scale, "--auto-approve"]) == 0
    assert usage_reads(sim, start) == {}, "no delete: no server or volume list"

    start = time.time()
    assert main(["plan", web, "--format", "json"]) == 0
    assert '"kind": "delete"' in capsys.readouterr().out
    assert usage_reads(sim, start) == {("KR1", "servers/detail"): 1, ("KR1", "volumes/detail"): 1}

    start = time.time()
    assert main(["apply", web, "--auto-approve"]) == 0
    assert usage_reads(sim, start) == {("KR1", "servers/detail"): 2, ("KR1", "volumes/detail"): 2}
    capsys.readouterr()


# -- the consumer side (issue 24) -------------------------------------------------------------------

THIRD = "0aa1bb22cc33dd44ee55ff6600112233"


def consumer_world(shares: int) -> dict:
    """OWNER shares `shares` images with PARTNER in KR1 and KR2 (every member status in turn), THIRD shares
    one in KR1, PARTNER owns a shared image of its own, and JP1 holds nothing shared with PARTNER."""
    statuses = ("pending", "accepted", "rejected")
    images = [
        {"id": f"00000000-0000-4000-{8000 + r}-{i:012d}", "project": OWNER, "region": region, "name": f"base-{i}",
         "visibility": "shared", "members": [{"project": PARTNER, "status": statuses[i % 3]}],
         "properties": {"os_type": "linux"}}
        for r, region in enumerate(("KR1", "KR2"))
        for i in range(shares)
    ]  # fmt: skip
    images.append(
        {"id": "00000000-0000-4000-9000-000000000001", "project": THIRD, "region": "KR1", "name": "third",
         "visibility": "shared", "members": [{"project": PARTNER, "status": "rejected"}],
         "properties": {"os_type": "linux"}}
    )  # fmt: skip
    images.append(
        {"id": "00000000-0000-4000-9000-000000000002", "project": PARTNER, "region": "KR1", "name": "own",
         "visibility": "shared", "members": [{"project": OWNER, "status": "pending"}],
         "properties": {"os_type": "linux"}}
    )  # fmt: skip
    return {
        "regions": ["KR1", "KR2", "JP1"],
        "projects": [
            {"id": OWNER},
            {"id": THIRD},
            {"id": PARTNER, "users": [{"username": PARTNER_USER[0], "api_password": PARTNER_USER[1]}]},
        ],
        "images": images,
    }


def consumer_root(folder, *, rules: bool):
    """PARTNER's root, its desired state with one accept: rule or none (the rule itself is not what is
    counted: any rule makes the refresh list what is shared with the project)."""
    (folder / "reconciler.yaml").write_text(
        f"version: 1\nset: consumer\ncloud: {{kind: nhn, project: {PARTNER}}}\ndefaults: {{region: KR1}}\n"
    )
    (folder / "images.yaml").write_text("version: 1\nimages: {}\n")
    desired = load_desired_state(folder)
    if not rules:
        return desired
    rule = ShareRule(wants="accepted", owner=OWNER, file="images.yaml", name="base-*")
    return dataclasses.replace(desired, rules=(rule,))


def test_a_consumer_refresh_lists_shares_by_status_only_for_a_root_with_rules(make_sim, tmp_path):
    """Per region: one `member_status=all` listing, and `pending` and `rejected` ones only where something is
    shared with the project; a root without rules makes none of them. Never one read per image."""
    shares = 12
    sim = make_sim(consumer_world(shares))
    client = connect(Credentials(*PARTNER_USER, identity_url=sim.identity_url), PARTNER)
    client.image_regions()  # authenticate before counting

    reset_counts(sim)
    without = read_snapshot(client, consumer_root(tmp_path, rules=False))
    assert without.shared == {}
    assert counts(sim) == {"GET /image/{region}/v2/images": 3}  # the project's own images, one page per region

    reset_counts(sim)
    snapshot = read_snapshot(client, consumer_root(tmp_path, rules=True))
    assert counts(sim) == {"GET /image/{region}/v2/images": 3 + 3 + 2 + 2}  # own; `all` each; pending, rejected
    statuses = ("pending", "accepted", "rejected")
    for r, region in enumerate(("KR1", "KR2")):
        want = [(f"00000000-0000-4000-{8000 + r}-{i:012d}", OWNER, statuses[i % 3]) for i in range(shares)]
        if region == "KR1":
            want.append(("00000000-0000-4000-9000-000000000001", THIRD, "rejected"))
        got = [(shared.image.id, shared.image.owner, shared.status) for shared in snapshot.shared[region]]
        assert got == sorted(want)
    assert snapshot.shared["JP1"] == ()


def test_the_shares_listing_pages_under_every_status(make_sim, tmp_path):
    sim = make_sim(consumer_world(12))
    client = NhnCloudClient(
        connect(Credentials(*PARTNER_USER, identity_url=sim.identity_url), PARTNER)._http, page_size=5
    )
    client.image_regions()
    reset_counts(sim)

    listed = client.list_shared_images("KR1")

    assert len(listed) == 13
    assert [status for image, status in listed].count("rejected") == 5  # four of OWNER's and THIRD's
    # Each listing also holds PARTNER's own shared image (left out of the result): `all` 14 images in 3
    # pages; `pending` 4 + 1 in 2 (a full page, then an empty one); `rejected` 5 + 1 in 2.
    assert counts(sim) == {"GET /image/{region}/v2/images": 3 + 2 + 2}
