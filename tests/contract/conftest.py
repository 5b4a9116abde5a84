"""Backends for the contract suite: the same behavioural tests run against the simulator and, for image
and member operations, against a real OpenStack Glance (marker `glance`; `.ci/run` starts one and sets
RECONCILER_GLANCE_URL).

Glance runs without Keystone and trusts identity headers, so each test there acts as fresh random
projects: tests never see each other's images.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from support import OWNER, OWNER_USER, PARTNER, PARTNER_USER

from reconciler.cloud.auth import Credentials
from reconciler.cloud.nhn import NhnCloudClient, connect, connect_trusted_glance

GLANCE_URL_VARIABLE = "RECONCILER_GLANCE_URL"


@dataclass
class Backend:
    """An owner's client, a second project's client, and what differs on this backend."""

    name: str
    region: str
    owner: NhnCloudClient
    member: NhnCloudClient
    # NHN (and so the simulator) gates downloads on nhncloud_allow_download [doc]; Glance does not.
    gates_downloads: bool

    def image_attributes(self, **extra: object) -> dict[str, object]:
        """Attributes of a new image valid on every backend (NHN requires os_type)."""
        return {
            "name": f"contract-{uuid.uuid4().hex[:8]}",
            "disk_format": "qcow2",
            "container_format": "bare",
            "visibility": "private",
            "os_type": "linux",
            **extra,
        }


def no_sleep(seconds: float) -> None:
    pass


@pytest.fixture(params=["simulator", pytest.param("glance", marks=pytest.mark.glance)])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "simulator":
        sim = request.getfixturevalue("make_sim")()
        owner = connect(Credentials(*OWNER_USER, identity_url=sim.identity_url), OWNER, sleep=no_sleep)
        member = connect(Credentials(*PARTNER_USER, identity_url=sim.identity_url), PARTNER, sleep=no_sleep)
        backend = Backend("simulator", "KR1", owner, member, gates_downloads=True)
    else:
        url = os.environ.get(GLANCE_URL_VARIABLE)
        if not url:
            pytest.skip(f"no real Glance: set {GLANCE_URL_VARIABLE} (.ci/run starts one)")
        owner = connect_trusted_glance(url, uuid.uuid4().hex, sleep=no_sleep)
        member = connect_trusted_glance(url, uuid.uuid4().hex, sleep=no_sleep)
        backend = Backend("glance", "LOCAL", owner, member, gates_downloads=False)
    yield backend
    backend.owner.close()
    backend.member.close()
