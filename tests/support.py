"""Test support: a standard seed with fixed ids, and a raw HTTP client for one project."""

from __future__ import annotations

import copy
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import requests

from reconciler.simulator.server import SimulatorServer

# Figures of the fault suite (tests/safety), printed at the end of the run by conftest.py.
FAULT_FIGURES: dict[str, int] = {"runs": 0, "hits": 0, "violations": 0, "seed": 0}

OWNER = "3f0c9d2e6b7a4f0e9a1b2c3d4e5f6a7b"
PARTNER = "8989447062e04a818baf9e073fd04fa7"
OUTSIDER = "0123456789abcdef0123456789abcdef"
OWNER_USER = ("dev@example.com", "local-only")
PARTNER_USER = ("partner@example.com", "partner-pass")
OUTSIDER_USER = ("outsider@example.com", "outsider-pass")

# Fixed ids so tests can address seeded objects directly.
PROTECTED_IMAGE = "00000000-0000-4000-8000-000000000001"
SHARED_IMAGE = "00000000-0000-4000-8000-000000000002"
DOWNLOADABLE_IMAGE = "00000000-0000-4000-8000-000000000003"
PUBLIC_IMAGE = "00000000-0000-4000-8000-000000000004"
KR2_COPY = "00000000-0000-4000-8000-000000000005"
VOLUME_SERVER = "10000000-0000-4000-8000-000000000001"
LOCAL_STOPPED_SERVER = "10000000-0000-4000-8000-000000000002"
LOCAL_RUNNING_SERVER = "10000000-0000-4000-8000-000000000003"

STANDARD_SEED: dict[str, Any] = {
    "regions": ["KR1", "KR2", "JP1"],
    "projects": [
        {"id": OWNER, "name": "web-platform", "users": [{"username": OWNER_USER[0], "api_password": OWNER_USER[1]}]},
        {"id": PARTNER, "users": [{"username": PARTNER_USER[0], "api_password": PARTNER_USER[1]}]},
        {"id": OUTSIDER, "users": [{"username": OUTSIDER_USER[0], "api_password": OUTSIDER_USER[1]}]},
    ],
    "servers": [
        {
            "id": VOLUME_SERVER,
            "project": OWNER,
            "region": "KR1",
            "name": "web-golden-01",
            "flavor": "m2.c4m8",
            "status": "ACTIVE",
            "os_type": "linux",
            "os_distro": "ubuntu",
            "os_version": "22.04",
            "base_image": "Ubuntu Server 22.04 LTS (2024.01.16)",
            "disk_mb": 2,
        },
        {
            "id": LOCAL_STOPPED_SERVER,
            "project": OWNER,
            "region": "KR1",
            "name": "batch-01",
            "flavor": "u2.c2m4",
            "status": "SHUTOFF",
            "os_type": "linux",
            "base_image": "Ubuntu Server 22.04 LTS (2024.01.16)",
            "disk_mb": 2,
        },
        {
            "id": LOCAL_RUNNING_SERVER,
            "project": OWNER,
            "region": "KR1",
            "name": "batch-02",
            "flavor": "u2.c2m4",
            "status": "ACTIVE",
            "os_type": "windows",
            "base_image": "Windows 2019 STD (2019.05.28) KO",
            "disk_mb": 1,
        },
    ],
    "images": [
        {
            "id": PUBLIC_IMAGE,
            "project": OUTSIDER,
            "region": "KR1",
            "name": "Ubuntu Server 22.04 LTS (2024.01.16)",
            "visibility": "public",
            "protected": True,
            "properties": {
                "os_type": "linux",
                "os_distro": "ubuntu",
                "login_username": "ubuntu",
                "nhncloud_product": "compute",
                "hw_vif_multiqueue_enabled": "true",
            },
        },
        {
            "id": PROTECTED_IMAGE,
            "project": OWNER,
            "region": "KR1",
            "name": "legacy-base",
            "protected": True,
            "properties": {"os_type": "linux"},
        },
        {
            "id": SHARED_IMAGE,
            "project": OWNER,
            "region": "KR1",
            "name": "shared-base",
            "visibility": "shared",
            "members": [{"project": PARTNER, "status": "pending"}],
            "properties": {"os_type": "linux"},
        },
        {
            "id": DOWNLOADABLE_IMAGE,
            "project": OWNER,
            "region": "KR1",
            "name": "web-base",
            "size_mb": 3,
            "content": "web-base-v1",
            "properties": {"os_type": "linux", "nhncloud_allow_download": "true"},
        },
        {
            "id": KR2_COPY,
            "project": OWNER,
            "region": "KR2",
            "name": "web-base",
            "size_mb": 3,
            "content": "web-base-v1",
            "properties": {"os_type": "linux"},
        },
    ],
}


def standard_seed() -> dict[str, Any]:
    return copy.deepcopy(STANDARD_SEED)


class Api:
    """A raw HTTP client for one project: a token, the catalog, and helpers per service."""

    def __init__(self, server: SimulatorServer, username: str, password: str, tenant: str, region: str = "KR1") -> None:
        self.server = server
        self.tenant = tenant
        self.region = region
        self.http = requests.Session()
        self.http.headers["Accept"] = "application/json"
        answer = self.http.post(
            f"{server.identity_url}/tokens",
            json={"auth": {"tenantId": tenant, "passwordCredentials": {"username": username, "password": password}}},
            timeout=10,
        )
        answer.raise_for_status()
        self.access = answer.json()["access"]
        self.http.headers["X-Auth-Token"] = self.access["token"]["id"]

    def endpoint(self, kind: str, region: str | None = None) -> str:
        region = region or self.region
        for service in self.access["serviceCatalog"]:
            if service["type"] == kind:
                for endpoint in service["endpoints"]:
                    if endpoint["region"] == region:
                        return endpoint["publicURL"]
        raise KeyError((kind, region))

    def image(self, method: str, path: str, region: str | None = None, **kwargs: Any) -> requests.Response:
        return self.http.request(method, self.endpoint("image", region) + path, timeout=30, **kwargs)

    def compute(self, method: str, path: str, region: str | None = None, **kwargs: Any) -> requests.Response:
        return self.http.request(method, self.endpoint("compute", region) + path, timeout=30, **kwargs)

    def volume(self, method: str, path: str, region: str | None = None, **kwargs: Any) -> requests.Response:
        return self.http.request(method, self.endpoint("volumev2", region) + path, timeout=30, **kwargs)

    def patch_image(self, image_id: str, ops: list[dict[str, Any]], region: str | None = None) -> requests.Response:
        return self.image(
            "PATCH",
            f"/v2/images/{image_id}",
            region,
            json=ops,
            headers={"Content-Type": "application/openstack-images-v2.1-json-patch"},
        )


# -- the apply lock in tests that kill an apply ------------------------------------------------------

LOCK_PROPERTIES = ("reconciler_lock_claim", "reconciler_lock")


def is_lock_record(fields: dict[str, Any]) -> bool:
    """A lock claim (or v1 lock) in a simulator state file: bookkeeping, not an image of the test's."""
    return any(name in fields for name in LOCK_PROPERTIES)


def let_lock_leases_expire(state_path: Any, seconds: float = 126.0) -> None:
    """Move a (stopped) simulator's clock past the default lease + 5 s, as waiting would: a killed apply's
    claim then expires and the next apply takes over and deletes it (docs/safety.md)."""
    import json
    from pathlib import Path

    path = Path(state_path)
    doc = json.loads(path.read_text())
    doc["clock_offset_s"] = float(doc.get("clock_offset_s", 0)) + seconds
    path.write_text(json.dumps(doc))


def cloud_unchanged_but_lock_traces(before: dict[str, Any], after: dict[str, Any]) -> None:
    """Assert two simulator states hold the same images, servers and members: the one trace an apply that
    changed nothing leaves is the ids of the lock claims it made and deleted (a deleted id is never free
    again on Glance, so the simulator remembers them)."""
    before, after = dict(before), dict(after)
    gone_before, gone_after = before.pop("deleted_images", {}), after.pop("deleted_images", {})
    claims = set(gone_after) - set(gone_before)
    assert not claims & set(before.get("images", {})), "an image that existed before was deleted"
    assert after == before


# Variables that would point a test's plan at a real cloud, or colour its output.
CREDENTIAL_VARIABLES = ("NHN_CLOUD_USERNAME", "NHN_CLOUD_API_PASSWORD", "OS_USERNAME", "OS_PASSWORD", "NO_COLOR")
CASES = Path(__file__).resolve().parent / "cases"


def case_root(tmp_path: Path, monkeypatch: Any, case: str = "share") -> Path:
    """A copy of a golden case's root (simulator seeded, no state yet), with no credentials around."""
    for name in CREDENTIAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    target = tmp_path / "root"
    shutil.copytree(CASES / case / "root", target)
    return target


def cloud_was_read(root: Path) -> bool:
    """The simulator makes its state file from the seed on the first read of the cloud."""
    return (root / ".reconciler").exists()


def cli(*args: Any) -> list[str]:
    """The installed command as a subprocess would run it."""
    return [sys.executable, "-m", "reconciler", *(str(a) for a in args)]


def quiet_env() -> dict[str, str]:
    """This environment without any cloud's credentials or settings, no proxy for loopback, no colour."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NHN_CLOUD_", "OS_", "RECONCILER_"))}
    env.update(NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost", NO_COLOR="1", PYTHONUNBUFFERED="1")
    return env
