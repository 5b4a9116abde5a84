"""Plan at scale: reconciler's list-based refresh against a per-resource refresh, in the same run.

    python benchmarks/plan_scale_bench.py [--keys 10000] [--latency-ms 20]

A simulator is served in a separate process (`--in-memory`, with the given latency per request) holding
--keys managed keys in KR1, each copied to KR2 and JP1 (3 images per key), 10% of them shared with two
projects. Measured, each from a cold client:

- reconciler: `read_snapshot` (paged lists per region, regions in parallel, members only of shared
  images, 32 at a time) + `build_plan` + the JSON rendering; the requests it made, from the
  simulator's counter, against the minimum (list pages + one members call per shared image);
- baseline: what a per-resource refresh does (Terraform's OpenStack provider): one GET and one members
  GET per image, 10 threads.

Targets (issue 10): at least 20x faster than the baseline; requests at most 1.1x the minimum.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from served import request_counts, served_simulator

OWNER = "3f0c9d2e6b7a4f0e9a1b2c3d4e5f6a7b"
PARTNERS = ["8989447062e04a818baf9e073fd04fa7", "0123456789abcdef0123456789abcdef"]
USER, PASSWORD = "bench@example.com", "local-only"


def seed(keys: int, latency_ms: int) -> dict:
    images = []
    for i in range(keys):
        key = f"img-{i:05d}"
        home = f"00000000-0000-4000-8000-{i:012d}"
        marks = {"reconciler_set": "scale", "reconciler_key": key, "reconciler_source": f"image:{home}"}
        shared = i % 10 == 0
        extra = (
            {"visibility": "shared", "members": [{"project": p, "status": "accepted"} for p in PARTNERS]}
            if shared
            else {}
        )
        images.append({"id": home, "project": OWNER, "region": "KR1", "name": key, "content": "same",
                       "properties": {"os_type": "linux", **marks}, **extra})  # fmt: skip
        for j, region in enumerate(("KR2", "JP1")):
            copy = {"os_type": "linux", **marks, "reconciler_copy_of": home}
            images.append({"id": f"00000000-0000-4000-{8001 + j}-{i:012d}", "project": OWNER, "region": region,
                           "name": key, "content": "same", "properties": copy, **extra})  # fmt: skip
    return {
        "regions": ["KR1", "KR2", "JP1"],
        "projects": [{"id": OWNER, "users": [{"username": USER, "api_password": PASSWORD}]}]
        + [{"id": p} for p in PARTNERS],
        "images": images,
        "behaviour": {"latency_ms": latency_ms},
    }


def write_root(folder: Path, keys: int) -> None:
    (folder / "reconciler.yaml").write_text(f"version: 1\nset: scale\ncloud: {{kind: nhn, project: {OWNER}}}\n"
                                           "defaults: {region: KR1}\n")  # fmt: skip
    lines = ["version: 1", "images:"]
    for i in range(keys):
        share = f", share: [{', '.join(PARTNERS)}]" if i % 10 == 0 else ""
        lines.append(
            f"  img-{i:05d}: {{source: {{image: 00000000-0000-4000-8000-{i:012d}}}, copies: [KR2, JP1]{share}}}"
        )
    (folder / "images.yaml").write_text("\n".join(lines) + "\n")


def reconciler_plan(folder: Path, identity: str) -> float:
    from reconciler.cloud.auth import Credentials
    from reconciler.cloud.nhn import connect
    from reconciler.plan import Target
    from reconciler.planner import build_plan
    from reconciler.render.json import render_json
    from reconciler.snapshot import read_snapshot
    from reconciler.validate import load_desired_state

    desired = load_desired_state(folder)
    started = time.perf_counter()
    client = connect(Credentials(USER, PASSWORD, identity_url=identity), OWNER)
    snapshot = read_snapshot(client, desired)
    plan = build_plan(desired, snapshot, Target("nhn", OWNER, identity, snapshot.regions))
    render_json(plan.to_json())
    seconds = time.perf_counter() - started
    assert not plan.actions and not plan.refusals, "the benchmark inventory should need no change"
    return seconds


def baseline_refresh(identity: str, image_ids: list[tuple[str, str]]) -> float:
    session = requests.Session()
    session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=16))
    started = time.perf_counter()
    access = session.post(f"{identity}/tokens", json={"auth": {"tenantId": OWNER, "passwordCredentials": {
        "username": USER, "password": PASSWORD}}}).json()["access"]  # fmt: skip
    headers = {"X-Auth-Token": access["token"]["id"], "Accept": "application/json"}
    urls = {
        e["region"]: e["publicURL"] for s in access["serviceCatalog"] if s["type"] == "image" for e in s["endpoints"]
    }

    def refresh(item: tuple[str, str]) -> None:
        region, image_id = item
        session.get(f"{urls[region]}/v2/images/{image_id}", headers=headers).raise_for_status()
        session.get(f"{urls[region]}/v2/images/{image_id}/members", headers=headers)  # 403 on a private image

    with ThreadPoolExecutor(max_workers=10) as pool:
        list(pool.map(refresh, image_ids))
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--latency-ms", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "root"  # the manifests; the seed and state stay outside it
        folder.mkdir()
        document = seed(args.keys, args.latency_ms)
        write_root(folder, args.keys)
        with served_simulator(document, folder.parent) as identity:
            request_counts(identity, reset=True)
            ours = reconciler_plan(folder, identity)
            our_routes = request_counts(identity)
            request_counts(identity, reset=True)
            theirs = baseline_refresh(identity, [(image["region"], image["id"]) for image in document["images"]])
            their_requests = sum(request_counts(identity).values())
    shared = sum(1 for i in document["images"] if i.get("visibility") == "shared")
    pages = sum(math.floor(n / 1000) + 1 for n in (args.keys, args.keys, args.keys))
    minimum = 1 + pages + shared
    our_requests = sum(our_routes.values())
    images = len(document["images"])
    print(f"{images:,} images ({args.keys:,} keys x 3 regions), {shared:,} shared, {args.latency_ms} ms latency\n")
    print(f"{'what':<34} {'seconds':>8} {'requests':>9}")
    print(f"{'baseline: GET + members per image':<34} {theirs:>8.2f} {their_requests:>9,}")
    print(f"{'reconciler plan (refresh+plan+json)':<34} {ours:>8.2f} {our_requests:>9,}")
    print(f"\nspeed-up: {theirs / ours:.1f}x (target >= 20x); requests: {our_requests / minimum:.2f}x the minimum "
          f"{minimum:,} (target <= 1.1x)")  # fmt: skip
    print(f"reproduce: python benchmarks/plan_scale_bench.py --keys {args.keys} --latency-ms {args.latency_ms}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
