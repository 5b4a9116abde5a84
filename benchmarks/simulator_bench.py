"""How fast is the simulator, and what does persisting every change cost?

Run on demand (not part of the test suite):

    python benchmarks/simulator_bench.py [--images 2000] [--patches 200] [--size-mb 256]

Prints a table. Machines here are shared and noisy, so each figure that matters is a ratio against a
baseline measured in the same run:

- listing every image (pages of 1000) and single GETs: requests per second;
- GETs from 32 threads with 20 ms latency per request, against the ideal of 32 / 20 ms: the ceiling a
  concurrent refresh meets;
- PATCHes with the state persisted to a file vs the same PATCHes in memory (`--in-memory`): the cost of
  writing the whole state atomically after each change grows with the number of images;
- streaming an image down and back up through the simulator vs generating and hashing the same bytes
  in-process (the floor: the simulator can't be faster than producing and hashing the bytes).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from reconciler.simulator.behaviour import Behaviour
from reconciler.simulator.qcow2 import Qcow2Image
from reconciler.simulator.seed import state_from_seed
from reconciler.simulator.server import SimulatorServer
from reconciler.simulator.state import StateStore, write_state_file

PROJECT = "3f0c9d2e6b7a4f0e9a1b2c3d4e5f6a7b"
USER, PASSWORD = "bench@example.com", "local-only"
PATCH = {"Content-Type": "application/openstack-images-v2.1-json-patch"}


def seed(images: int, size_mb: int) -> dict:
    return {
        "regions": ["KR1", "JP1"],
        "projects": [{"id": PROJECT, "users": [{"username": USER, "api_password": PASSWORD}]}],
        "images": [
            {
                "project": PROJECT,
                "region": "KR1",
                "name": f"image-{i:05d}",
                "content": "same",
                "properties": {"os_type": "linux"},
            }
            for i in range(images)
        ]
        + [
            {
                "project": PROJECT,
                "region": "KR1",
                "name": "big",
                "size_mb": size_mb,
                "content": "big",
                "properties": {"os_type": "linux", "nhncloud_allow_download": "true"},
            }
        ],
    }


class Client:
    def __init__(self, server: SimulatorServer) -> None:
        self.http = requests.Session()
        self.http.headers["Accept"] = "application/json"
        answer = self.http.post(
            f"{server.identity_url}/tokens",
            json={"auth": {"tenantId": PROJECT, "passwordCredentials": {"username": USER, "password": PASSWORD}}},
        )
        answer.raise_for_status()
        self.http.headers["X-Auth-Token"] = answer.json()["access"]["token"]["id"]
        self.image_url = {
            e["region"]: e["publicURL"]
            for s in answer.json()["access"]["serviceCatalog"]
            if s["type"] == "image"
            for e in s["endpoints"]
        }

    def list_all(self) -> tuple[list[dict], int]:
        images, requests_made = [], 0
        url = f"{self.image_url['KR1']}/v2/images?limit=1000&owner={PROJECT}"
        while url:
            answer = self.http.get(url)
            answer.raise_for_status()
            requests_made += 1
            body = answer.json()
            images += body["images"]
            url = f"{self.image_url['KR1']}{body['next']}" if "next" in body else None
        return images, requests_made


def timed(action) -> tuple[float, object]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--patches", type=int, default=200)
    parser.add_argument("--size-mb", type=int, default=256)
    args = parser.parse_args()

    state = state_from_seed(seed(args.images, args.size_mb))
    behaviour = Behaviour(image_ready_after_polls=0)
    rows: list[tuple[str, str, str]] = []

    with tempfile.TemporaryDirectory() as tmp:
        state_file = Path(tmp) / "state.json"
        write_state_file(state_file, state)
        rows.append(("state file size", f"{state_file.stat().st_size / 1e6:.1f} MB", f"{args.images + 1} images"))

        with SimulatorServer(StateStore.open(state_file, in_memory=True), behaviour) as server:
            client = Client(server)
            seconds, (images, pages) = timed(client.list_all)
            rows.append(("list all images", f"{seconds:.2f} s", f"{len(images)} images in {pages} requests"))
            sample = [image["id"] for image in images[:500]]
            seconds, _ = timed(lambda: [client.http.get(f"{client.image_url['KR1']}/v2/images/{i}") for i in sample])
            rows.append(("single GETs", f"{len(sample) / seconds:.0f} req/s", f"{len(sample)} GETs"))

        # The ceiling under concurrent load: what the refresh's 32 concurrent members reads meet. With
        # 20 ms per request, 32 threads could at best make 1,600 requests a second.
        with SimulatorServer(StateStore.open(state_file, in_memory=True), Behaviour(latency_ms=20)) as server:
            # One client per thread (a requests.Session is not shared across threads), 50 GETs each.
            clients = [Client(server) for _ in range(32)]

            def gets_of(c: Client) -> None:
                for n in range(50):
                    c.http.get(f"{c.image_url['KR1']}/v2/images/{sample[n]}").raise_for_status()

            def concurrent_gets() -> None:
                with ThreadPoolExecutor(max_workers=32) as pool:
                    list(pool.map(gets_of, clients))

            seconds, _ = timed(concurrent_gets)
            rate = 32 * 50 / seconds
            rows.append(("GETs, 32 threads, 20 ms latency", f"{rate:.0f} req/s", f"{rate / 1600:.0%} of the ideal"))

        with SimulatorServer(StateStore.open(state_file, in_memory=True), behaviour) as server:
            client = Client(server)

            def patches(c: Client) -> None:
                for n in range(args.patches):
                    image_id = sample[n % len(sample)]
                    ops = [{"op": "replace", "path": "/name", "value": f"renamed-{n}"}]
                    c.http.patch(
                        f"{c.image_url['KR1']}/v2/images/{image_id}", json=ops, headers=PATCH
                    ).raise_for_status()

            in_memory, _ = timed(lambda: patches(client))

        with SimulatorServer(StateStore.open(state_file), behaviour) as server:
            persisted, _ = timed(lambda: patches(Client(server)))
        rows.append(("PATCH, in memory", f"{args.patches / in_memory:.0f} req/s", "baseline"))
        rows.append(
            (
                "PATCH, persisted",
                f"{args.patches / persisted:.0f} req/s",
                f"{persisted / in_memory:.1f}x the in-memory time",
            )
        )

        with SimulatorServer(StateStore.open(state_file, in_memory=True), behaviour) as server:
            client = Client(server)
            big = next(i for i in client.list_all()[0] if i["name"] == "big")

            def local_floor() -> int:
                md5, size = hashlib.md5(usedforsecurity=False), 0
                for chunk in Qcow2Image(args.size_mb, "big").iter_chunks():
                    md5.update(chunk)
                    size += len(chunk)
                return size

            floor, size = timed(local_floor)

            def round_trip() -> None:
                url = client.image_url["KR1"]
                down = client.http.get(f"{url}/v2/images/{big['id']}/file", stream=True)
                down.raise_for_status()
                target = client.http.post(
                    f"{url}/v2/images",
                    json={
                        "name": "big-copy",
                        "os_type": "linux",
                        "disk_format": "qcow2",
                        "container_format": "bare",
                        "visibility": "private",
                    },
                ).json()
                up = client.http.put(
                    f"{url}/v2/images/{target['id']}/file",
                    data=down.iter_content(1 << 20),
                    headers={"Content-Type": "application/octet-stream"},
                )
                up.raise_for_status()
                copied = client.http.get(f"{url}/v2/images/{target['id']}").json()
                assert copied["checksum"] == big["checksum"], "copy does not verify"

            trip, _ = timed(round_trip)
        mib = size / (1 << 20)
        rows.append(("generate + md5 in-process", f"{mib / floor:.0f} MiB/s", "baseline"))
        rows.append(
            (
                "download + upload via HTTP",
                f"{mib / trip:.0f} MiB/s",
                f"{trip / floor:.1f}x the baseline time, {mib:.0f} MiB, checksums equal",
            )
        )

    width = max(len(r[0]) for r in rows)
    print(f"{'measure'.ljust(width)}  {'result':>14}  note")
    for name, value, note in rows:
        print(f"{name.ljust(width)}  {value:>14}  {note}")
    print(
        f"\nreproduce: python benchmarks/simulator_bench.py --images {args.images} --patches {args.patches} "
        f"--size-mb {args.size_mb}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
