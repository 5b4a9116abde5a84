"""Details of Glance 33 the simulator copies, checked on both backends with raw requests: the exact
messages, when `updated_at` moves, the `Date` header, and the list filters. Where NHN is assumed to
differ from Glance (custom-property filters), the test says which backend does what; any other
difference is a simulator bug."""

from __future__ import annotations

import email.utils
import hashlib
import re
import time
import uuid
from datetime import datetime

import pytest

from reconciler.cloud.errors import BadRequest, CloudApiError, Forbidden
from reconciler.cloud.nhn import PATCH_CONTENT_TYPE
from reconciler.cloud.records import set_ops

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")  # second precision, as Glance prints them
SECOND = 1.1  # Glance's timestamps have whole seconds: wait past one to see one move


def raw(client, region: str, method: str, path: str, **kwargs):
    return client._http.request("image", region, method, path, **kwargs)


def patch(client, region: str, image_id: str, ops: list[dict]):
    return raw(
        client, region, "PATCH", f"/v2/images/{image_id}", json=ops, headers={"Content-Type": PATCH_CONTENT_TYPE}
    )


def listed_names(client, region: str, **params: str) -> set[str]:
    answer = raw(client, region, "GET", "/v2/images", params={"limit": 1000, **params})
    return {image["name"] for image in answer.json()["images"]}


def new_image(backend, **extra):
    return backend.owner.create_image(backend.region, backend.image_attributes(**extra))


def epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


# -- timestamps and the Date header ---------------------------------------------------------------


def test_timestamps_have_whole_seconds_and_the_date_header_agrees(backend):
    """created_at / updated_at are the server's, to the second; every answer has an RFC 7231 Date within a
    few seconds of them (doctor's fatal check allows 5 s)."""
    answer = raw(backend.owner, backend.region, "POST", "/v2/images", json=backend.image_attributes(name="stamped"))
    image = answer.json()
    assert TIMESTAMP.match(image["created_at"]) and image["updated_at"] == image["created_at"]
    date = email.utils.parsedate_to_datetime(answer.headers["Date"])
    assert answer.headers["Date"].endswith(" GMT")
    assert abs(date.timestamp() - epoch(image["updated_at"])) <= 5


def test_every_patch_moves_updated_at_even_one_that_changes_nothing(backend):
    """A lease renewal may PATCH the same value again: Glance still saves the image. An empty PATCH does not."""
    image = new_image(backend, reconciler_state="held")
    time.sleep(SECOND)
    same = backend.owner.update_image(backend.region, image.id, set_ops({"reconciler_state": "held"}))
    assert epoch(same.updated_at) > epoch(image.updated_at)
    time.sleep(SECOND)
    empty = patch(backend.owner, backend.region, image.id, []).json()
    assert empty["updated_at"] == same.updated_at


def test_tags_move_updated_at_and_members_do_not(backend):
    """A tag PUT saves the image (even for a tag it has); adding a member or changing its status does not."""
    region, owner, member = backend.region, backend.owner, backend.member
    image = new_image(backend, visibility="shared")
    time.sleep(SECOND)
    owner.add_member(region, image.id, member.project_id)
    member.set_member_status(region, image.id, "accepted")
    assert owner.get_image(region, image.id).updated_at == image.updated_at
    raw(owner, region, "PUT", f"/v2/images/{image.id}/tags/web")
    tagged = owner.get_image(region, image.id)
    assert epoch(tagged.updated_at) > epoch(image.updated_at)
    time.sleep(SECOND)
    raw(owner, region, "PUT", f"/v2/images/{image.id}/tags/web")
    assert epoch(owner.get_image(region, image.id).updated_at) > epoch(tagged.updated_at)


# -- messages -------------------------------------------------------------------------------------


def test_a_patch_operation_without_op_is_400(backend):
    image = new_image(backend)
    with pytest.raises(BadRequest) as refused:
        patch(backend.owner, backend.region, image.id, [{"path": "/name", "value": "x"}])
    assert "Unable to find `op` in JSON Schema change. It must be one of the following: add, remove, replace." in (
        refused.value.server_message
    )


def test_the_owner_setting_a_member_status_gets_the_policy_message(backend):
    image = new_image(backend, visibility="shared")
    backend.owner.add_member(backend.region, image.id, backend.member.project_id)
    with pytest.raises(Forbidden) as refused:
        raw(
            backend.owner, backend.region, "PUT", f"/v2/images/{image.id}/members/{backend.member.project_id}",
            json={"status": "accepted"},
        )  # fmt: skip
    assert "You are not authorized to complete modify_member action." in refused.value.server_message


def test_a_wrong_patch_content_type_is_415_with_webobs_explanation_first(backend):
    image = new_image(backend)
    with pytest.raises(CloudApiError) as refused:
        raw(backend.owner, backend.region, "PATCH", f"/v2/images/{image.id}", json=[])
    assert refused.value.status == 415
    message = refused.value.server_message
    assert "The request media type application/json is not supported by this server." in message
    assert "Image PATCH expects Content-Type one of: application/openstack-images-v2.0-json-patch, " in message


def test_bytes_of_the_wrong_format_leave_the_image_queued_with_their_checksum(backend):
    """The 415 names the format the inspector saw; the image goes back to queued, not killed, and shows the
    refused bytes' md5 and sha512."""
    image = new_image(backend)
    data = b"not a disk image, only text\n" * 8
    with pytest.raises(CloudApiError) as refused:
        backend.owner.upload_image_data(backend.region, image.id, [data])
    assert refused.value.status == 415
    assert "Image disk_format qcow2 does not match stream data raw" in refused.value.server_message
    after = backend.owner.get_image(backend.region, image.id)
    assert (after.status, after.size, after.checksum) == ("queued", None, hashlib.md5(data).hexdigest())
    assert after.os_hash_value == hashlib.sha512(data).hexdigest()
    backend.owner.delete_image(backend.region, image.id)


def test_a_client_chosen_id_may_be_upper_case(backend):
    """Glance's id pattern takes either case and keeps the id as sent."""
    image_id = str(uuid.uuid4()).upper()
    assert new_image(backend, id=image_id).id == image_id
    assert backend.owner.get_image(backend.region, image_id).id == image_id


# -- list filters ---------------------------------------------------------------------------------


def test_the_name_filter_takes_glances_in_operator(backend):
    tag = uuid.uuid4().hex[:8]
    for suffix in ("a", "b", "c"):
        new_image(backend, name=f"in-{tag}-{suffix}")
    owner, region = backend.owner, backend.region
    assert listed_names(owner, region, name=f"in-{tag}-a") == {f"in-{tag}-a"}
    assert listed_names(owner, region, name=f"in:in-{tag}-a,in-{tag}-c") == {f"in-{tag}-a", f"in-{tag}-c"}
    assert listed_names(owner, region, name=f"eq:in-{tag}-b") == {f"in-{tag}-b"}
    with pytest.raises(BadRequest) as refused:
        listed_names(owner, region, name=f"like:in-{tag}")
    assert "Unable to filter by unknown operator 'like'." in refused.value.server_message


def test_the_client_finds_a_name_with_a_colon_by_name(backend):
    """A plain `name=web:base` is operator `web` (400): the client asks `eq:web:base`, on both backends."""
    made = new_image(backend, name=f"web:{uuid.uuid4().hex[:8]}")
    with pytest.raises(BadRequest):
        listed_names(backend.owner, backend.region, name=made.name)
    found = backend.owner.list_images(backend.region, owner=backend.owner.project_id, name=made.name)
    assert [i.id for i in found] == [made.id]


def test_custom_property_filters_filter_on_glance_and_are_ignored_as_assumed_of_nhn(backend):
    """Glance 33 filters `?reconciler_key=x` on the property; NHN is assumed not to (the simulator's
    `property_filters` knob, default false), so the reconciler filters markers itself."""
    key = uuid.uuid4().hex[:8]
    new_image(backend, name=f"prop-{key}-x", reconciler_key=key)
    new_image(backend, name=f"prop-{key}-y", reconciler_key="other")
    owner = backend.owner.project_id
    names = {n for n in listed_names(backend.owner, backend.region, owner=owner, reconciler_key=key) if key in n}
    if backend.name == "glance":
        assert names == {f"prop-{key}-x"}
    else:
        assert names == {f"prop-{key}-x", f"prop-{key}-y"}
