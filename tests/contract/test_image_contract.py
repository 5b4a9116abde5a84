"""The cloud client's image and member operations behave the same against the simulator and a real
Glance. Where NHN differs from Glance (os_type required, downloads gated),
the backend says so; any other difference is a simulator bug."""

from __future__ import annotations

import hashlib
import uuid

import pytest

from reconciler.cloud.errors import BadRequest, CloudApiError, Conflict, Forbidden, NotFound
from reconciler.cloud.nhn import PATCH_CONTENT_TYPE
from reconciler.cloud.records import PatchOp, set_ops
from reconciler.simulator.qcow2 import Qcow2Image


def qcow2(content: str = "contract") -> bytes:
    return b"".join(Qcow2Image(1, content).iter_chunks())


def new_image(backend, **extra):
    return backend.owner.create_image(backend.region, backend.image_attributes(**extra))


def listed_ids(client, region: str, **params: str) -> set[str]:
    """Ids in one page of a raw image listing with these query parameters (the client's list_images takes
    no such filters yet: a raw request through its transport)."""
    answer = client._http.request("image", region, "GET", "/v2/images", params={"limit": 1000, **params})
    return {image["id"] for image in answer.json()["images"]}


# -- create, read, list ---------------------------------------------------------------------------


def test_create_returns_a_queued_image_with_the_given_attributes(backend):
    image = new_image(backend, min_ram=512, login_username="ubuntu")
    assert image.status == "queued"
    assert image.visibility == "private" and image.protected is False
    assert image.owner == backend.owner.project_id
    assert image.min_ram == 512
    assert image.properties["login_username"] == "ubuntu" and image.properties["os_type"] == "linux"
    assert image.region == backend.region


def test_get_and_find(backend):
    image = new_image(backend)
    assert backend.owner.get_image(backend.region, image.id).name == image.name
    missing = "00000000-0000-4000-8000-0000000000ff"
    assert backend.owner.find_image(backend.region, missing) is None
    with pytest.raises(NotFound):
        backend.owner.get_image(backend.region, missing)


def test_another_projects_private_image_is_not_found(backend):
    image = new_image(backend)
    assert backend.member.find_image(backend.region, image.id) is None


def test_listing_follows_every_page_and_filters_by_owner(backend):
    created = {new_image(backend).id for _ in range(5)}
    backend.member.create_image(backend.region, backend.image_attributes())  # another project's: not listed
    backend.owner._page_size = 2  # force several pages
    listed = [image.id for image in backend.owner.list_images(backend.region, owner=backend.owner.project_id)]
    assert len(listed) == len(set(listed)), "an image was listed twice"
    assert created <= set(listed)
    assert all(
        i.owner == backend.owner.project_id
        for i in backend.owner.list_images(backend.region, owner=backend.owner.project_id)
    )


# -- update ---------------------------------------------------------------------------------------


def test_update_sets_base_attributes_and_custom_properties(backend):
    image = new_image(backend)
    updated = backend.owner.update_image(
        backend.region,
        image.id,
        set_ops({"name": "renamed", "min_disk": 3, "reconciler_set": "web", "protected": True}),
    )
    assert (updated.name, updated.min_disk, updated.protected) == ("renamed", 3, True)
    assert updated.properties["reconciler_set"] == "web"
    # `add` of an existing custom property overwrites it.
    again = backend.owner.update_image(backend.region, image.id, set_ops({"reconciler_set": "api"}))
    assert again.properties["reconciler_set"] == "api"
    removed = backend.owner.update_image(backend.region, image.id, [PatchOp("remove", "reconciler_set")])
    assert "reconciler_set" not in removed.properties


def test_replace_or_remove_of_a_missing_property_conflicts(backend):
    image = new_image(backend)
    with pytest.raises(Conflict, match="does not exist"):
        backend.owner.update_image(backend.region, image.id, [PatchOp("replace", "not_there", "x")])
    with pytest.raises(Conflict, match="does not exist"):
        backend.owner.update_image(backend.region, image.id, [PatchOp("remove", "not_there")])


def test_read_only_attributes_are_forbidden(backend):
    image = new_image(backend)
    with pytest.raises(Forbidden, match="read-only"):
        backend.owner.update_image(backend.region, image.id, [PatchOp("replace", "status", "active")])


def test_non_string_property_values_are_refused(backend):
    image = new_image(backend)
    with pytest.raises(BadRequest):
        backend.owner.update_image(backend.region, image.id, [PatchOp("add", "min_version", 1.0)])


def test_a_failed_patch_changes_nothing(backend):
    image = new_image(backend)
    with pytest.raises(CloudApiError):
        backend.owner.update_image(
            backend.region, image.id, [PatchOp("replace", "name", "half"), PatchOp("replace", "status", "x")]
        )
    assert backend.owner.get_image(backend.region, image.id).name == image.name


def test_another_project_cannot_update(backend):
    image = new_image(backend, visibility="shared")
    backend.owner.add_member(backend.region, image.id, backend.member.project_id)
    with pytest.raises((Forbidden, NotFound)):
        backend.member.update_image(backend.region, image.id, set_ops({"name": "hijacked"}))


def test_a_patch_test_op_is_refused_and_changes_nothing(backend):
    """No compare-and-swap: a JSON-patch `test` op is 400, and the other ops of that PATCH are not applied."""
    image = new_image(backend)
    ops = [{"op": "test", "path": "/name", "value": image.name}, {"op": "replace", "path": "/name", "value": "x"}]
    with pytest.raises(BadRequest) as refused:
        backend.owner._http.request(
            "image", backend.region, "PATCH", f"/v2/images/{image.id}", json=ops,
            headers={"Content-Type": PATCH_CONTENT_TYPE},
        )  # fmt: skip
    assert "Invalid operation: `test`. It must be one of the following: add, remove, replace." in (
        refused.value.server_message
    )
    after = backend.owner.get_image(backend.region, image.id)
    assert (after.name, after.updated_at) == (image.name, image.updated_at)


# -- delete and protection ------------------------------------------------------------------------


def test_a_deleted_images_id_is_never_used_again(backend):
    """Glance soft-deletes: after a delete the id reads 404, yet a create with it is 409, from any project."""
    image_id = str(uuid.uuid4())
    new_image(backend, id=image_id)
    assert backend.owner.delete_image(backend.region, image_id) is True
    with pytest.raises(NotFound):
        backend.owner.get_image(backend.region, image_id)
    for client in (backend.owner, backend.member):
        with pytest.raises(Conflict) as refused:
            client.create_image(backend.region, backend.image_attributes(id=image_id))
        assert f"Image ID {image_id} already exists!" in refused.value.server_message
    assert backend.owner.find_image(backend.region, image_id) is None
    assert image_id not in listed_ids(backend.owner, backend.region)


def test_delete_is_idempotent(backend):
    image = new_image(backend)
    assert backend.owner.delete_image(backend.region, image.id) is True
    assert backend.owner.delete_image(backend.region, image.id) is False
    assert backend.owner.find_image(backend.region, image.id) is None


def test_a_protected_image_cannot_be_deleted_until_unprotected(backend):
    image = new_image(backend, protected=True)
    with pytest.raises(Forbidden, match="is protected and cannot be deleted"):
        backend.owner.delete_image(backend.region, image.id)
    assert backend.owner.get_image(backend.region, image.id).protected is True
    backend.owner.update_image(backend.region, image.id, set_ops({"protected": False}))
    assert backend.owner.delete_image(backend.region, image.id) is True


# -- data -----------------------------------------------------------------------------------------


def test_upload_then_download_round_trips_with_matching_checksums(backend):
    data = qcow2()
    image = new_image(backend, nhncloud_allow_download="true")
    backend.owner.upload_image_data(backend.region, image.id, (data[i : i + 65536] for i in range(0, len(data), 65536)))
    active = backend.owner.wait_for_image(backend.region, image.id, timeout=30)
    assert active.size == len(data)
    assert active.checksum == hashlib.md5(data).hexdigest()
    assert active.os_hash_value == hashlib.sha512(data).hexdigest()
    with backend.owner.download_image_data(backend.region, image.id) as download:
        received = b"".join(download.chunks())
    assert received == data
    assert download.size == len(data)


def test_a_second_upload_conflicts(backend):
    image = new_image(backend)
    backend.owner.upload_image_data(backend.region, image.id, [qcow2()])
    backend.owner.wait_for_image(backend.region, image.id, timeout=30)
    with pytest.raises(Conflict):
        backend.owner.upload_image_data(backend.region, image.id, [qcow2("other")])


def test_bytes_that_are_not_the_declared_format_are_refused(backend):
    image = new_image(backend)
    with pytest.raises(CloudApiError) as refused:
        backend.owner.upload_image_data(backend.region, image.id, [b"this is not a qcow2 image" * 100])
    assert refused.value.status == 415


def test_downloads_follow_the_backends_gate(backend):
    image = new_image(backend)
    backend.owner.upload_image_data(backend.region, image.id, [qcow2()])
    backend.owner.wait_for_image(backend.region, image.id, timeout=30)
    if backend.gates_downloads:
        with pytest.raises(Forbidden):
            with backend.owner.download_image_data(backend.region, image.id):
                pass
        backend.owner.update_image(backend.region, image.id, set_ops({"nhncloud_allow_download": "true"}))
    with backend.owner.download_image_data(backend.region, image.id) as download:
        assert b"".join(download.chunks()) == qcow2()


# -- members --------------------------------------------------------------------------------------


def test_members_only_on_shared_images(backend):
    image = new_image(backend)
    with pytest.raises(Forbidden):
        backend.owner.add_member(backend.region, image.id, backend.member.project_id)


def test_share_accept_and_unshare(backend):
    region, owner, member = backend.region, backend.owner, backend.member
    image = new_image(backend, visibility="shared")
    added = owner.add_member(region, image.id, member.project_id)
    assert (added.member_id, added.status) == (member.project_id, "pending")
    # Idempotent: a second add returns the existing membership.
    assert owner.add_member(region, image.id, member.project_id).status == "pending"
    assert [m.member_id for m in owner.list_members(region, image.id)] == [member.project_id]

    # Pending shares are not in the member's list; accepted ones are.
    assert image.id not in {i.id for i in member.list_images(region)}
    assert member.set_member_status(region, image.id, "accepted").status == "accepted"
    assert image.id in {i.id for i in member.list_images(region)}
    assert member.get_image(region, image.id).id == image.id

    assert owner.remove_member(region, image.id, member.project_id) is True
    assert owner.remove_member(region, image.id, member.project_id) is False
    assert owner.list_members(region, image.id) == []


def test_the_consumer_lists_shares_by_its_member_status(backend):
    """The consumer side: `visibility=shared&member_status=...` lists images shared with the caller by its
    own status; its default list has only accepted ones; the owner sees its shared image whatever
    member_status says."""
    region, owner, member = backend.region, backend.owner, backend.member
    image = new_image(backend, visibility="shared")
    owner.add_member(region, image.id, member.project_id)

    def seen_by(client) -> dict[str, bool]:
        lists = {status: listed_ids(client, region, visibility="shared", member_status=status)
                 for status in ("all", "pending", "accepted", "rejected")}  # fmt: skip
        lists["default"] = listed_ids(client, region)
        return {name: image.id in ids for name, ids in lists.items()}

    everywhere = {"all": True, "pending": True, "accepted": True, "rejected": True, "default": True}
    assert seen_by(member) == {"all": True, "pending": True, "accepted": False, "rejected": False, "default": False}
    assert seen_by(owner) == everywhere

    accepted = member.set_member_status(region, image.id, "accepted")
    assert (accepted.member_id, accepted.status) == (member.project_id, "accepted")
    assert seen_by(member) == {"all": True, "pending": False, "accepted": True, "rejected": False, "default": True}

    member.set_member_status(region, image.id, "rejected")
    assert seen_by(member) == {"all": True, "pending": False, "accepted": False, "rejected": True, "default": False}
    assert seen_by(owner) == everywhere
    # Rejecting hides the share from lists, not from reads by id.
    assert member.get_image(region, image.id).id == image.id


def test_only_the_member_project_sets_its_status(backend):
    image = new_image(backend, visibility="shared")
    backend.owner.add_member(backend.region, image.id, backend.member.project_id)
    with pytest.raises((Forbidden, NotFound)):
        backend.owner.set_member_status(backend.region, image.id, "accepted")
    assert backend.owner.list_members(backend.region, image.id)[0].status == "pending"


@pytest.mark.parametrize("member_id", ["..", "."])
def test_a_member_id_made_of_dots_addresses_the_member_never_the_image(backend, member_id):
    """Anyone in the project can add a member `..`: removing it must remove that member. Sent as a bare
    `..`, HTTP clients drop the dot segment and the DELETE names the image itself."""
    region, owner = backend.region, backend.owner
    image = new_image(backend, visibility="shared")
    assert owner.remove_member(region, image.id, member_id) is False  # none yet: a 404 for the member
    owner.add_member(region, image.id, member_id)
    assert [m.member_id for m in owner.list_members(region, image.id)] == [member_id]
    assert owner.remove_member(region, image.id, member_id) is True
    assert owner.list_members(region, image.id) == []
    assert owner.get_image(region, image.id).id == image.id  # the image is still there


def test_a_trailing_slash_names_no_image(backend):
    """What a member path that lost its `..` segment would send: Glance answers 404 and deletes nothing."""
    region, owner = backend.region, backend.owner
    image = new_image(backend, visibility="shared")
    for path in (f"/v2/images/{image.id}/", f"/v2/images/{image.id}/members/"):
        with pytest.raises(NotFound):
            owner._http.request("image", region, "DELETE", path)
    assert owner.get_image(region, image.id).id == image.id
