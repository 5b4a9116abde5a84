"""The consumer side of a share, through the cloud client, on the simulator and a real Glance: what a project
that others share images with lists (`list_shared_images`, with its own member status) and how it sets its
own status (`set_member_status`). The owner's side is in test_image_contract.py."""

from __future__ import annotations

import pytest

from reconciler.cloud.errors import BadRequest, Forbidden, NotFound


def shared_image(backend, *, to: list[str] | None = None):
    """A new image of the owner's, shared with the member project (or with `to`)."""
    image = backend.owner.create_image(backend.region, backend.image_attributes(visibility="shared"))
    for member_id in [backend.member.project_id] if to is None else to:
        backend.owner.add_member(backend.region, image.id, member_id)
    return image


def statuses(client, region: str, *among) -> dict[str, str]:
    """The listed member status of each of the images `among` that the listing holds (the simulator's
    standard seed shares images of its own)."""
    ids = {image.id for image in among}
    return {image.id: status for image, status in client.list_shared_images(region) if image.id in ids}


def test_the_consumer_lists_every_share_with_its_own_status(backend):
    region, member = backend.region, backend.member
    pending, accepted, rejected = (shared_image(backend) for _ in range(3))
    member.set_member_status(region, accepted.id, "accepted")
    member.set_member_status(region, rejected.id, "rejected")

    listed = [
        pair for pair in member.list_shared_images(region) if pair[0].id in {pending.id, accepted.id, rejected.id}
    ]

    assert [(image.id, status) for image, status in listed] == sorted(
        [(pending.id, "pending"), (accepted.id, "accepted"), (rejected.id, "rejected")]
    )
    assert all(image.owner == backend.owner.project_id and image.region == region for image, _ in listed)
    assert {image.id: image.name for image, _ in listed}[accepted.id] == accepted.name


def test_the_listing_follows_every_page_of_each_status(backend):
    region, member = backend.region, backend.member
    images = [shared_image(backend) for _ in range(7)]
    for image in images[:3]:
        member.set_member_status(region, image.id, "accepted")
    for image in images[3:5]:
        member.set_member_status(region, image.id, "rejected")
    member._page_size = 2  # several pages under every member status

    listed = [image.id for image, _ in member.list_shared_images(region)]

    assert len(listed) == len(set(listed)), "an image was listed twice"
    want = {i.id: "accepted" for i in images[:3]} | {i.id: "rejected" for i in images[3:5]}
    assert statuses(member, region, *images) == want | {i.id: "pending" for i in images[5:]}


def test_only_images_shared_with_this_project_by_others_are_listed(backend):
    """Glance's `visibility=shared` listing also holds the caller's own shared images, and never another
    member's shares, nor private or unshared images."""
    region, owner, member = backend.region, backend.owner, backend.member
    mine = shared_image(backend)
    nobodys = shared_image(backend, to=[])
    third_projects = shared_image(backend, to=["0f0e0d0c0b0a49988776655443322110"])
    private = owner.create_image(region, backend.image_attributes())
    unshared = shared_image(backend)
    owner.remove_member(region, unshared.id, member.project_id)
    # The consumer's own shared image, shared back with the owner: the owner's, not the consumer's, share.
    own = member.create_image(region, backend.image_attributes(visibility="shared"))
    member.add_member(region, own.id, owner.project_id)

    made = (mine, nobodys, third_projects, private, unshared, own)
    assert statuses(member, region, *made) == {mine.id: "pending"}
    assert statuses(owner, region, *made) == {own.id: "pending"}


def test_a_project_nothing_is_shared_with_lists_nothing(backend):
    """On Glance the projects are new; the simulator's standard seed shares nothing with the owner."""
    backend.owner.create_image(backend.region, backend.image_attributes(visibility="shared"))
    assert backend.owner.list_shared_images(backend.region) == []


def test_the_consumer_changes_its_own_status_any_way_and_the_default_list_follows(backend):
    region, member = backend.region, backend.member
    image = shared_image(backend)

    def default_list_has_it() -> bool:
        return image.id in {i.id for i in member.list_images(region)}

    for status in ("accepted", "rejected", "accepted", "pending"):
        answer = member.set_member_status(region, image.id, status)
        assert (answer.member_id, answer.status) == (member.project_id, status)
        assert statuses(member, region, image) == {image.id: status}
        assert default_list_has_it() is (status == "accepted")
    # Setting the status it has already is fine (apply may repeat a call whose answer was lost).
    assert member.set_member_status(region, image.id, "pending").status == "pending"
    assert [m.status for m in backend.owner.list_members(region, image.id)] == ["pending"]


def test_the_owner_cannot_set_the_consumers_status_and_nothing_changes(backend):
    region, owner, member = backend.region, backend.owner, backend.member
    image = shared_image(backend)
    owner_path = f"/v2/images/{image.id}/members/{member.project_id}"
    with pytest.raises(Forbidden):
        owner._http.request("image", region, "PUT", owner_path, json={"status": "accepted"})
    with pytest.raises(Forbidden):  # the refusal comes before the status is judged
        owner._http.request("image", region, "PUT", owner_path, json={"status": "maybe"})
    assert statuses(member, region, image) == {image.id: "pending"}


def test_a_consumer_cannot_set_another_members_status(backend):
    """A member project sees only its own membership: another member's is not found (Glance 33: 404, not
    403), and that member's status stays as it was."""
    region, member = backend.region, backend.member
    other = "0f0e0d0c0b0a49988776655443322110"
    image = shared_image(backend, to=[member.project_id, other])
    with pytest.raises(NotFound) as refused:
        member._http.request(
            "image", region, "PUT", f"/v2/images/{image.id}/members/{other}", json={"status": "accepted"}
        )
    assert refused.value.server_message == f"{other} not found in the member list of the image {image.id}."
    assert {(m.member_id, m.status) for m in backend.owner.list_members(region, image.id)} == {
        (member.project_id, "pending"),
        (other, "pending"),
    }
    assert statuses(member, region, image) == {image.id: "pending"}


def test_the_owner_cannot_set_a_status_even_as_a_member_of_its_own_image(backend):
    region, owner = backend.region, backend.owner
    image = shared_image(backend, to=[owner.project_id])
    with pytest.raises(Forbidden) as refused:
        owner.set_member_status(region, image.id, "accepted")
    assert refused.value.server_message == "You are not authorized to complete modify_member action."
    assert [m.status for m in owner.list_members(region, image.id)] == ["pending"]
    assert owner.list_shared_images(region) == []  # its own image, whatever its membership says


def test_an_unknown_status_is_400_and_changes_nothing(backend):
    region, member = backend.region, backend.member
    image = shared_image(backend)
    with pytest.raises(BadRequest):
        member.set_member_status(region, image.id, "maybe")
    assert statuses(member, region, image) == {image.id: "pending"}


def test_a_project_that_is_no_member_cannot_set_a_status(backend):
    region, member = backend.region, backend.member
    image = shared_image(backend, to=[])
    with pytest.raises(NotFound):
        member.set_member_status(region, image.id, "accepted")
    assert statuses(member, region, image) == {}
