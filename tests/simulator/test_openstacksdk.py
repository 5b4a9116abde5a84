"""Proof by a client nobody here wrote: openstacksdk, authenticating with keystoneauth's `v2password`
plugin against the simulator's identity URL, drives the images, members, servers and flavors APIs."""

from __future__ import annotations

import pytest

openstack = pytest.importorskip("openstack", reason="openstacksdk is part of the test extra")

from keystoneauth1 import exceptions as ks_exceptions  # noqa: E402
from openstack import exceptions as sdk_exceptions  # noqa: E402
from support import (  # noqa: E402
    OWNER,
    OWNER_USER,
    PARTNER,
    PARTNER_USER,
    PROTECTED_IMAGE,
    VOLUME_SERVER,
)

# openstacksdk warns about its own upcoming API changes; they are not the simulator's concern.
pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),
]


def connect(sim, user: tuple[str, str], project: str, region: str = "KR1"):
    return openstack.connect(
        auth_type="v2password",
        auth={"auth_url": sim.identity_url, "username": user[0], "password": user[1], "tenant_id": project},
        region_name=region,
        identity_api_version="2",
        load_yaml_config=False,
        load_envvars=False,
    )


@pytest.fixture
def conn(sim):
    connection = connect(sim, OWNER_USER, OWNER)
    yield connection
    connection.close()


def test_authenticates_and_lists_the_projects_images(conn):
    names = {image.name for image in conn.image.images(owner=OWNER)}
    assert names == {"legacy-base", "shared-base", "web-base"}


def test_wrong_password_is_refused(sim):
    connection = connect(sim, (OWNER_USER[0], "not-the-password"), OWNER)
    with pytest.raises(ks_exceptions.Unauthorized):
        list(connection.image.images())


def test_get_update_and_delete_an_image(conn):
    image = conn.image.get_image(PROTECTED_IMAGE)
    assert image.name == "legacy-base" and image.is_protected is True

    conn.image.update_image(image, name="legacy-base-renamed", min_ram=512)
    assert conn.image.get_image(PROTECTED_IMAGE).name == "legacy-base-renamed"

    with pytest.raises(sdk_exceptions.ForbiddenException, match="is protected and cannot be deleted"):
        conn.image.delete_image(PROTECTED_IMAGE)

    conn.image.update_image(PROTECTED_IMAGE, is_protected=False)
    conn.image.delete_image(PROTECTED_IMAGE)
    assert conn.image.find_image(PROTECTED_IMAGE) is None


def test_share_an_image_and_accept_it_as_the_member_project(sim, conn):
    image = conn.image.create_image(
        name="to-share", disk_format="qcow2", container_format="bare", visibility="shared", os_type="linux"
    )
    conn.image.add_member(image, member_id=PARTNER)
    assert [m.status for m in conn.image.members(image)] == ["pending"]

    partner = connect(sim, PARTNER_USER, PARTNER)
    try:
        # Not in the member's default list until accepted (Glance's sharing model).
        assert image.id not in {i.id for i in partner.image.images()}
        member = partner.image.update_member(PARTNER, image, status="accepted")
        assert member.status == "accepted"
        assert image.id in {i.id for i in partner.image.images()}
    finally:
        partner.close()


def test_list_servers_and_flavors_and_map_the_flavor_id(conn):
    servers = {server.name: server for server in conn.compute.servers()}
    assert set(servers) == {"web-golden-01", "batch-01", "batch-02"}
    flavors = {flavor.id: flavor.name for flavor in conn.compute.flavors()}
    assert flavors[servers["web-golden-01"].flavor.id] == "m2.c4m8"
    assert flavors[servers["batch-01"].flavor.id] == "u2.c2m4"


def test_stop_and_start_a_server(make_sim):
    sim = make_sim(server_ready_after_polls=2)
    conn = connect(sim, OWNER_USER, OWNER)
    try:
        server = conn.compute.get_server(VOLUME_SERVER)
        assert server.status == "ACTIVE"
        conn.compute.stop_server(server)
        server = conn.compute.wait_for_server(server, status="SHUTOFF", interval=0.01, wait=5)
        assert server.status == "SHUTOFF"
        conn.compute.start_server(server)
        server = conn.compute.wait_for_server(server, status="ACTIVE", interval=0.01, wait=5)
        assert server.status == "ACTIVE"
    finally:
        conn.close()


def test_region_catalog_is_honoured(sim):
    conn = connect(sim, OWNER_USER, OWNER, region="KR2")
    try:
        assert {image.name for image in conn.image.images(owner=OWNER)} == {"web-base"}
        assert list(conn.compute.servers()) == []
    finally:
        conn.close()
