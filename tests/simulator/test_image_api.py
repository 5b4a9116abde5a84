"""The simulator's Image API (Glance v2 as NHN Cloud runs it), driven over real HTTP on loopback.

Each test checks one rule from (NHN's documented rules and the upstream Glance
behaviour NHN runs) or from the upstream Glance research notes (exact messages). Tests assert the status
and the part of the message or body a client depends on.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from support import (
    DOWNLOADABLE_IMAGE,
    KR2_COPY,
    OUTSIDER,
    OWNER,
    OWNER_USER,
    PARTNER,
    PROTECTED_IMAGE,
    PUBLIC_IMAGE,
    SHARED_IMAGE,
    Api,
)

from reconciler.simulator.qcow2 import Qcow2Image

OCTET = {"Content-Type": "application/octet-stream"}
UNKNOWN_ID = "99999999-0000-4000-8000-000000000099"


# -- helpers --------------------------------------------------------------------------------------


def assert_glance_error(answer: requests.Response, status: int, fragment: str) -> dict[str, Any]:
    """The answer is a Glance JSON error of `status` whose message contains `fragment`."""
    assert answer.status_code == status, f"want {status}, got {answer.status_code}: {answer.text}"
    body = answer.json()
    assert body["code"] == f"{status} {HTTPStatus(status).phrase}", body
    assert fragment in body["message"], f"want {fragment!r} in {body['message']!r}"
    return body


def ids(answer: requests.Response) -> list[str]:
    assert answer.status_code == 200, answer.text
    return [image["id"] for image in answer.json()["images"]]


def list_ids(api: Api, query: str = "", region: str | None = None) -> list[str]:
    return ids(api.image("GET", f"/v2/images{query}", region))


def get_image(api: Api, image_id: str, region: str | None = None) -> dict[str, Any]:
    answer = api.image("GET", f"/v2/images/{image_id}", region)
    assert answer.status_code == 200, answer.text
    return answer.json()


def create_image(api: Api, region: str | None = None, **fields: Any) -> dict[str, Any]:
    """A new queued qcow2/bare image owned by `api`'s project; `fields` override or add attributes."""
    body = {
        "name": "test-image",
        "os_type": "linux",
        "disk_format": "qcow2",
        "container_format": "bare",
        "visibility": "private",
        **fields,
    }
    answer = api.image("POST", "/v2/images", region, json=body)
    assert answer.status_code == 201, answer.text
    return answer.json()


def qcow2_bytes(content: str = "x") -> bytes:
    return b"".join(Qcow2Image(1, content).iter_chunks())


def as_stream(data: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    """A generator body: requests sends it with `Transfer-Encoding: chunked`."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


def upload(api: Api, image_id: str, data: bytes | Iterator[bytes], **headers: str) -> requests.Response:
    return api.image("PUT", f"/v2/images/{image_id}/file", data=data, headers={**OCTET, **headers})


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def owner_api(server) -> Api:
    return Api(server, *OWNER_USER, OWNER)


def accept_share(partner: Api, image_id: str = SHARED_IMAGE) -> None:
    answer = partner.image("PUT", f"/v2/images/{image_id}/members/{PARTNER}", json={"status": "accepted"})
    assert answer.status_code == 200, answer.text


# -- error bodies ---------------------------------------------------------------------------------


def test_error_body_is_glance_json_with_html_residue(owner):
    """Error bodies: with Accept: application/json, Glance answers
    {"message": "...<br /><br />\\n\\n\\n", "code": "403 Forbidden", "title": "Forbidden"}."""
    answer = owner.image("DELETE", f"/v2/images/{PROTECTED_IMAGE}")
    assert answer.status_code == 403
    assert answer.headers["Content-Type"].startswith("application/json")
    assert answer.json() == {
        "message": f"Image {PROTECTED_IMAGE} is protected and cannot be deleted.<br /><br />\n\n\n",
        "code": "403 Forbidden",
        "title": "Forbidden",
    }


def test_not_found_error_body_has_string_code(owner):
    """Glance's JSON error `code` is a string ("404 Not Found"), not an integer as in Nova/Cinder."""
    body = assert_glance_error(
        owner.image("GET", f"/v2/images/{UNKNOWN_ID}"), 404, f"No image found with ID {UNKNOWN_ID}"
    )
    assert body["title"] == "Not Found"
    assert isinstance(body["code"], str)


@pytest.mark.parametrize("accept", [None, "text/html"], ids=["no-accept", "accept-html"])
def test_error_without_json_accept_is_html(owner, accept):
    """without Accept: application/json Glance sends webob's HTML error page."""
    answer = owner.image("DELETE", f"/v2/images/{PROTECTED_IMAGE}", headers={"Accept": accept})
    assert answer.status_code == 403
    assert answer.headers["Content-Type"].startswith("text/html")
    assert "<h1>403 Forbidden</h1>" in answer.text
    assert "is protected and cannot be deleted" in answer.text
    with pytest.raises(ValueError):
        answer.json()


# -- list: visibility and filters -----------------------------------------------------------------


def test_owner_default_list_is_own_images_plus_public(owner):
    """Glance default list: the caller's own images plus public ones (region KR1)."""
    assert set(list_ids(owner)) == {PUBLIC_IMAGE, PROTECTED_IMAGE, SHARED_IMAGE, DOWNLOADABLE_IMAGE}


def test_list_body_shape(owner):
    """Glance list body: {"images": [...], "schema": "/v2/schemas/images", "first": "/v2/images"}."""
    body = owner.image("GET", "/v2/images").json()
    assert body["schema"] == "/v2/schemas/images"
    assert body["first"] == "/v2/images"
    assert "next" not in body  # 4 images, default limit 100
    image = next(i for i in body["images"] if i["id"] == DOWNLOADABLE_IMAGE)
    # Custom properties are flattened to top-level keys.
    assert image["os_type"] == "linux" and image["nhncloud_allow_download"] == "true"
    assert image["self"] == f"/v2/images/{DOWNLOADABLE_IMAGE}"


def test_partner_sees_pending_share_only_with_member_status_all(partner):
    """Sharing: a shared image shows in the member's default list only once accepted,
    or when listing with member_status=all."""
    assert SHARED_IMAGE not in list_ids(partner)
    assert PUBLIC_IMAGE in list_ids(partner)
    assert SHARED_IMAGE in list_ids(partner, "?member_status=all")


def test_partner_sees_share_after_accepting(partner):
    """Sharing: after the member sets status accepted, the image is in its default list."""
    accept_share(partner)
    assert set(list_ids(partner)) == {PUBLIC_IMAGE, SHARED_IMAGE}


def test_outsider_never_lists_a_share_it_is_not_member_of(outsider):
    """Glance: shared images are listed only for their owner and members."""
    assert SHARED_IMAGE not in list_ids(outsider, "?member_status=all")


def test_owner_filter(owner):
    """[doc] list filter owner=: only that project's images (the reconciler filters by owner server-side)."""
    assert set(list_ids(owner, f"?owner={OWNER}")) == {PROTECTED_IMAGE, SHARED_IMAGE, DOWNLOADABLE_IMAGE}
    assert list_ids(owner, f"?owner={OUTSIDER}") == [PUBLIC_IMAGE]


def test_name_filter(owner):
    """[doc] list filter name=: exact name match."""
    assert list_ids(owner, "?name=web-base") == [DOWNLOADABLE_IMAGE]
    assert list_ids(owner, "?name=no-such-image") == []


def test_status_filter(owner):
    """[doc] list filter status=: only images in that status."""
    queued = create_image(owner)
    assert list_ids(owner, "?status=queued") == [queued["id"]]
    assert queued["id"] not in list_ids(owner, "?status=active")


def test_region_isolation(owner):
    """Image endpoints are per region: KR2's list shows only KR2 images, KR1's none of them."""
    assert list_ids(owner, region="KR2") == [KR2_COPY]
    assert KR2_COPY not in list_ids(owner)
    created = create_image(owner, region="KR2")
    assert set(list_ids(owner, region="KR2")) == {KR2_COPY, created["id"]}
    assert created["id"] not in list_ids(owner)
    assert owner.image("GET", f"/v2/images/{KR2_COPY}").status_code == 404


# -- list: paging and sorting ---------------------------------------------------------------------


def test_paging_follows_next_until_absent_yields_each_image_once(owner):
    """[doc] Follow the `next` link until absent: every image appears exactly once."""
    created = {create_image(owner, name=f"page-{i}")["id"] for i in range(7)}
    expected = set(list_ids(owner))
    assert created <= expected and len(expected) == 11

    seen: list[str] = []
    path: str | None = "/v2/images?limit=3"
    pages = 0
    while path is not None:
        body = owner.image("GET", path).json()
        assert len(body["images"]) <= 3
        seen.extend(image["id"] for image in body["images"])
        path = body.get("next")
        pages += 1
        assert pages <= 10, "paging does not terminate"
    assert sorted(seen) == sorted(expected)
    assert len(seen) == len(set(seen))


def test_a_page_after_a_change_shows_the_change(owner):
    """Pages after the first reuse the first page's sorted listing only while nothing changed (the simulator's
    ListingCache): a rename, a new image or a delete between two pages shows on the next page, as on Glance."""
    for i in range(6):
        create_image(owner, name=f"page-{i}")
    first = owner.image("GET", "/v2/images?limit=3&sort=name:asc").json()
    marker = first["images"][-1]["id"]
    unchanged = owner.image("GET", f"/v2/images?limit=3&sort=name:asc&marker={marker}").json()["images"]
    assert owner.patch_image(unchanged[0]["id"], [{"op": "replace", "path": "/name", "value": "zz-renamed"}]).ok
    after_rename = owner.image("GET", f"/v2/images?limit=3&sort=name:asc&marker={marker}").json()["images"]
    assert after_rename[0]["id"] != unchanged[0]["id"], "the renamed image sorts last now"
    created = create_image(owner, name=first["images"][-1]["name"] + "-new")
    after_create = owner.image("GET", f"/v2/images?limit=3&sort=name:asc&marker={marker}").json()["images"]
    assert after_create[0]["id"] == created["id"]
    assert owner.image("DELETE", f"/v2/images/{created['id']}").status_code == 204
    after_delete = owner.image("GET", f"/v2/images?limit=3&sort=name:asc&marker={marker}").json()["images"]
    assert created["id"] not in [image["id"] for image in after_delete]


def test_next_link_is_relative_with_query_and_marker(owner):
    """Glance ResponseSerializer.index: next = "/v2/images?<original query>&marker=<last id>", relative;
    first = "/v2/images?<query without marker>"."""
    body = owner.image("GET", "/v2/images?limit=2").json()
    last = body["images"][-1]["id"]
    assert body["next"] == f"/v2/images?limit=2&marker={last}"
    assert body["first"] == "/v2/images?limit=2"
    # A later page keeps the other parameters and replaces the marker.
    second = owner.image("GET", body["next"]).json()
    assert second["first"] == "/v2/images?limit=2"
    query = parse_qs(urlsplit(second["next"]).query)
    assert query == {"limit": ["2"], "marker": [second["images"][-1]["id"]]}


def test_next_present_when_page_exactly_full(owner):
    """Glance emits `next` whenever the page holds exactly `limit` images; the page after is empty."""
    body = owner.image("GET", f"/v2/images?owner={OWNER}&limit=3").json()
    assert len(body["images"]) == 3
    assert "next" in body
    after = owner.image("GET", body["next"]).json()
    assert after["images"] == []
    assert "next" not in after


def test_unknown_marker_is_400(owner):
    """Glance: an unknown marker is 400 "No image found with ID <marker>"."""
    assert_glance_error(
        owner.image("GET", f"/v2/images?marker={UNKNOWN_ID}"), 400, f"No image found with ID {UNKNOWN_ID}"
    )


@pytest.mark.parametrize(
    ("limit", "message"),
    [("abc", "limit param must be an integer"), ("-1", "limit param must be positive")],
)
def test_bad_limit_is_400(owner, limit, message):
    """Glance: a non-integer or negative limit is 400."""
    assert_glance_error(owner.image("GET", f"/v2/images?limit={limit}"), 400, message)


def test_bad_sort_key_is_400(owner):
    """Glance: sort keys are name, status, container_format, disk_format, size, id, created_at, updated_at."""
    assert_glance_error(owner.image("GET", "/v2/images?sort_key=bogus"), 400, "Invalid sort key: bogus.")


def test_sort_by_name(owner):
    """[doc] sort_key / sort_dir: name ascending, and descending reverses it."""
    ascending = owner.image("GET", f"/v2/images?owner={OWNER}&sort_key=name&sort_dir=asc").json()["images"]
    assert [i["name"] for i in ascending] == ["legacy-base", "shared-base", "web-base"]
    descending = owner.image("GET", f"/v2/images?owner={OWNER}&sort_key=name&sort_dir=desc").json()["images"]
    assert [i["name"] for i in descending] == ["web-base", "shared-base", "legacy-base"]


# -- get ------------------------------------------------------------------------------------------


def test_get_unknown_image_is_404(owner):
    """GET of an unknown id is 404."""
    assert_glance_error(owner.image("GET", f"/v2/images/{UNKNOWN_ID}"), 404, "No image found with ID")


def test_get_image_of_another_project_is_404(outsider):
    """Glance hides images the caller may not see: another project's unshared image is 404, not 403."""
    for image_id in (PROTECTED_IMAGE, SHARED_IMAGE):
        assert_glance_error(outsider.image("GET", f"/v2/images/{image_id}"), 404, f"No image found with ID {image_id}")


def test_get_returns_the_image_itself(owner):
    """GET returns the image object with no wrapper."""
    image = get_image(owner, DOWNLOADABLE_IMAGE)
    assert image["id"] == DOWNLOADABLE_IMAGE and image["name"] == "web-base" and image["owner"] == OWNER


def test_member_can_get_shared_image(partner, outsider):
    """Sharing: the image is usable by the member project at once (even pending)."""
    assert get_image(partner, SHARED_IMAGE)["id"] == SHARED_IMAGE
    assert get_image(outsider, PUBLIC_IMAGE)["visibility"] == "public"


# -- create ---------------------------------------------------------------------------------------


def test_create_returns_201_queued_owned_by_caller(owner):
    """create: 201, status queued, owner is the token's project, Location header."""
    answer = owner.image("POST", "/v2/images", json={"name": "new", "os_type": "linux", "visibility": "private"})
    assert answer.status_code == 201, answer.text
    image = answer.json()
    assert image["status"] == "queued"
    assert image["owner"] == OWNER
    assert image["os_type"] == "linux"
    assert answer.headers["Location"].endswith(f"/v2/images/{image['id']}")
    assert get_image(owner, image["id"])["name"] == "new"


def test_create_without_os_type_is_400(owner):
    """[doc] NHN requires os_type on create (upstream Glance does not)."""
    answer = owner.image("POST", "/v2/images", json={"name": "no-os-type", "visibility": "private"})
    assert_glance_error(answer, 400, "os_type")


def test_create_with_read_only_status_is_403(owner):
    """Glance ImageFactory: a read-only attribute on create is 403 "Attribute 'status' is read-only."."""
    answer = owner.image("POST", "/v2/images", json={"name": "x", "os_type": "linux", "status": "active"})
    assert_glance_error(answer, 403, "Attribute 'status' is read-only.")


def test_create_with_non_string_property_is_400(owner):
    """[doc] custom properties are strings only; Glance's schema answers 400 "... is not of type 'string'"."""
    answer = owner.image("POST", "/v2/images", json={"name": "x", "os_type": "linux", "build": 7})
    body = assert_glance_error(answer, 400, "Provided object does not match schema 'image'")
    assert "is not of type 'string'" in body["message"]


def test_create_default_visibility_is_shared(owner):
    """[glance33] new images default to visibility shared when none is given (send private explicitly)."""
    answer = owner.image("POST", "/v2/images", json={"name": "x", "os_type": "linux"})
    assert answer.status_code == 201, answer.text
    assert answer.json()["visibility"] == "shared"


def test_create_private_visibility_is_respected(owner):
    """create: visibility private/shared as sent."""
    image = create_image(owner, visibility="private")
    assert image["visibility"] == "private"
    assert get_image(owner, image["id"])["visibility"] == "private"


def test_create_with_underscore_tag_is_400(owner):
    """[doc] NHN refuses tags starting with `_` (it uses them itself, e.g. _AVAILABLE_)."""
    answer = owner.image("POST", "/v2/images", json={"name": "x", "os_type": "linux", "tags": ["_AVAILABLE_"]})
    assert_glance_error(answer, 400, "_AVAILABLE_")


def test_create_with_duplicate_id_is_409(owner):
    """Glance: creating with an id that exists is 409 "Image ID <id> already exists!"."""
    image_id = "aaaaaaaa-0000-4000-8000-000000000001"
    create_image(owner, id=image_id)
    answer = owner.image("POST", "/v2/images", json={"id": image_id, "name": "x", "os_type": "linux"})
    assert_glance_error(answer, 409, f"Image ID {image_id} already exists!")


# -- update (PATCH) -------------------------------------------------------------------------------


def test_patch_with_wrong_content_type_is_415(owner):
    """update: a JSON-patch content type is required; otherwise 415 + Accept-Patch, with
    Glance 33's message (webob's explanation, then Glance's reason)."""
    answer = owner.image(
        "PATCH", f"/v2/images/{DOWNLOADABLE_IMAGE}", json=[{"op": "replace", "path": "/name", "value": "x"}]
    )
    body = assert_glance_error(answer, 415, "Image PATCH expects Content-Type one of: ")
    assert body["message"].startswith(
        "The request media type application/json is not supported by this server.\n<br /><br />\n"
    )
    assert "application/openstack-images-v2.1-json-patch" in answer.headers["Accept-Patch"]


def test_patch_replace_name_returns_updated_image(owner):
    """update: PATCH returns the updated image."""
    answer = owner.patch_image(DOWNLOADABLE_IMAGE, [{"op": "replace", "path": "/name", "value": "web-base-2"}])
    assert answer.status_code == 200, answer.text
    assert answer.json()["name"] == "web-base-2"
    assert get_image(owner, DOWNLOADABLE_IMAGE)["name"] == "web-base-2"


def test_patch_add_custom_property(owner):
    """update: `add` sets a custom property (and overwrites an existing one)."""
    answer = owner.patch_image(DOWNLOADABLE_IMAGE, [{"op": "add", "path": "/reconciler_key", "value": "web"}])
    assert answer.status_code == 200, answer.text
    assert answer.json()["reconciler_key"] == "web"
    answer = owner.patch_image(DOWNLOADABLE_IMAGE, [{"op": "add", "path": "/reconciler_key", "value": "web2"}])
    assert answer.status_code == 200, answer.text
    assert get_image(owner, DOWNLOADABLE_IMAGE)["reconciler_key"] == "web2"


def test_patch_replace_missing_property_is_409(owner):
    """[doc] `replace` of a missing custom property is 409 "Property foo does not exist."."""
    answer = owner.patch_image(DOWNLOADABLE_IMAGE, [{"op": "replace", "path": "/foo", "value": "bar"}])
    assert_glance_error(answer, 409, "Property foo does not exist.")


def test_patch_remove_missing_property_is_409(owner):
    """Glance: `remove` of a missing custom property is 409 "Property foo does not exist."."""
    answer = owner.patch_image(DOWNLOADABLE_IMAGE, [{"op": "remove", "path": "/foo"}])
    assert_glance_error(answer, 409, "Property foo does not exist.")


def test_patch_remove_base_attribute_is_403(owner):
    """Glance: removing a base attribute is 403 "Property name may not be removed."."""
    answer = owner.patch_image(DOWNLOADABLE_IMAGE, [{"op": "remove", "path": "/name"}])
    assert_glance_error(answer, 403, "Property name may not be removed.")


@pytest.mark.parametrize("attribute", ["status", "checksum", "id"])
def test_patch_read_only_attribute_is_403(owner, attribute):
    """[doc] read-only attributes give 403 "Attribute '<name>' is read-only."."""
    answer = owner.patch_image(DOWNLOADABLE_IMAGE, [{"op": "replace", "path": f"/{attribute}", "value": "x"}])
    assert_glance_error(answer, 403, f"Attribute '{attribute}' is read-only.")


def test_patch_non_string_property_is_400(owner):
    """[doc] custom property values are strings: a number is 400 from Glance's schema."""
    answer = owner.patch_image(DOWNLOADABLE_IMAGE, [{"op": "add", "path": "/build", "value": 7}])
    body = assert_glance_error(answer, 400, "Provided object does not match schema 'image'")
    assert "is not of type 'string'" in body["message"]


def test_patch_protected_must_be_boolean(owner):
    """[doc] `protected` must be a JSON boolean: the string "false" is 400."""
    answer = owner.patch_image(DOWNLOADABLE_IMAGE, [{"op": "replace", "path": "/protected", "value": "false"}])
    assert_glance_error(answer, 400, "is not of type 'boolean'")
    assert get_image(owner, DOWNLOADABLE_IMAGE)["protected"] is False


def test_patch_by_member_is_403(partner):
    """Glance: a member can see a shared image but not modify it (403)."""
    answer = partner.patch_image(SHARED_IMAGE, [{"op": "replace", "path": "/name", "value": "mine"}])
    assert_glance_error(answer, 403, "You are not permitted to modify this image.")


def test_patch_by_outsider_is_404(outsider):
    """Glance: an image the caller cannot see is 404, even for PATCH."""
    answer = outsider.patch_image(SHARED_IMAGE, [{"op": "replace", "path": "/name", "value": "mine"}])
    assert_glance_error(answer, 404, f"No image found with ID {SHARED_IMAGE}")


def test_patch_is_all_or_nothing(owner):
    """Handlers validate the whole request first: one bad op leaves the image unchanged."""
    answer = owner.patch_image(
        DOWNLOADABLE_IMAGE,
        [
            {"op": "replace", "path": "/name", "value": "changed"},
            {"op": "replace", "path": "/missing", "value": "x"},
        ],
    )
    assert answer.status_code == 409
    assert get_image(owner, DOWNLOADABLE_IMAGE)["name"] == "web-base"


# -- protected images -----------------------------------------------------------------------------


def test_delete_protected_image_is_403(owner):
    """[upstream][glance33] DELETE of a protected image: 403 "Image <id> is protected and cannot be deleted."."""
    answer = owner.image("DELETE", f"/v2/images/{PROTECTED_IMAGE}")
    assert_glance_error(answer, 403, f"Image {PROTECTED_IMAGE} is protected and cannot be deleted.")
    assert get_image(owner, PROTECTED_IMAGE)["status"] == "active"


def test_unprotect_then_delete(owner):
    """after PATCH protected=false the image deletes (204) and is then 404."""
    answer = owner.patch_image(PROTECTED_IMAGE, [{"op": "replace", "path": "/protected", "value": False}])
    assert answer.status_code == 200, answer.text
    assert answer.json()["protected"] is False
    assert owner.image("DELETE", f"/v2/images/{PROTECTED_IMAGE}").status_code == 204
    assert_glance_error(owner.image("GET", f"/v2/images/{PROTECTED_IMAGE}"), 404, "No image found with ID")


def test_delete_public_image_is_refused(outsider):
    """[doc] "Images with public visibility cannot be deleted." (even by their owner, once unprotected)."""
    answer = outsider.patch_image(PUBLIC_IMAGE, [{"op": "replace", "path": "/protected", "value": False}])
    assert answer.status_code == 200, answer.text
    answer = outsider.image("DELETE", f"/v2/images/{PUBLIC_IMAGE}")
    assert_glance_error(answer, 403, "Images with public visibility cannot be deleted.")


def test_permissive_mode_allows_renaming_protected_image(owner):
    """Knob protected_patch=permissive (default, upstream Glance): only DELETE is blocked on a protected image."""
    answer = owner.patch_image(PROTECTED_IMAGE, [{"op": "replace", "path": "/name", "value": "renamed"}])
    assert answer.status_code == 200, answer.text
    assert answer.json()["name"] == "renamed"


def test_strict_mode_refuses_renaming_protected_image(make_sim):
    """Knob protected_patch=strict ([doc] "cannot be modified"): a rename of a protected image is 403."""
    api = owner_api(make_sim(protected_patch="strict"))
    answer = api.patch_image(PROTECTED_IMAGE, [{"op": "replace", "path": "/name", "value": "renamed"}])
    assert_glance_error(answer, 403, "is protected and cannot be modified")
    assert get_image(api, PROTECTED_IMAGE)["name"] == "legacy-base"


def test_strict_mode_allows_unprotecting_then_rename(make_sim):
    """Knob protected_patch=strict: the PATCH that only sets /protected false passes; then renames work."""
    api = owner_api(make_sim(protected_patch="strict"))
    answer = api.patch_image(PROTECTED_IMAGE, [{"op": "replace", "path": "/protected", "value": False}])
    assert answer.status_code == 200, answer.text
    answer = api.patch_image(PROTECTED_IMAGE, [{"op": "replace", "path": "/name", "value": "renamed"}])
    assert answer.status_code == 200, answer.text
    assert get_image(api, PROTECTED_IMAGE)["name"] == "renamed"


# -- tags -----------------------------------------------------------------------------------------


def test_put_and_delete_tag(owner):
    """tags: PUT adds a tag (204), DELETE removes it (204)."""
    path = f"/v2/images/{DOWNLOADABLE_IMAGE}/tags/golden"
    assert owner.image("PUT", path).status_code == 204
    assert get_image(owner, DOWNLOADABLE_IMAGE)["tags"] == ["golden"]
    assert owner.image("PUT", path).status_code == 204  # idempotent
    assert get_image(owner, DOWNLOADABLE_IMAGE)["tags"] == ["golden"]
    assert owner.image("DELETE", path).status_code == 204
    assert get_image(owner, DOWNLOADABLE_IMAGE)["tags"] == []


def test_underscore_tag_is_refused(owner):
    """[doc] NHN refuses PUT of tags starting with `_`."""
    answer = owner.image("PUT", f"/v2/images/{DOWNLOADABLE_IMAGE}/tags/_x")
    assert_glance_error(answer, 400, "_x")
    assert get_image(owner, DOWNLOADABLE_IMAGE)["tags"] == []


def test_delete_missing_tag_is_404(owner):
    """Glance: deleting a tag the image doesn't have is 404."""
    answer = owner.image("DELETE", f"/v2/images/{DOWNLOADABLE_IMAGE}/tags/absent")
    assert_glance_error(answer, 404, "absent")


# -- members --------------------------------------------------------------------------------------


def members_path(image_id: str = SHARED_IMAGE, member: str | None = None) -> str:
    return f"/v2/images/{image_id}/members" + (f"/{member}" if member else "")


def test_add_member_to_private_image_is_403(owner):
    """[doc] the image must be visibility shared first; Glance: 403 "Not allowed to create members for image <id>."."""
    answer = owner.image("POST", members_path(PROTECTED_IMAGE), json={"member": PARTNER})
    assert_glance_error(answer, 403, f"Not allowed to create members for image {PROTECTED_IMAGE}.")


def test_add_member_to_shared_image_is_pending(owner):
    """[doc] the owner adds a member to a shared image: 200, new member status pending."""
    answer = owner.image("POST", members_path(), json={"member": OUTSIDER})
    assert answer.status_code == 200, answer.text
    member = answer.json()
    assert member["status"] == "pending"
    assert member["member_id"] == OUTSIDER and member["image_id"] == SHARED_IMAGE


def test_add_duplicate_member_is_409(owner):
    """Glance: 409 "Member <m> is duplicated for image <id>"."""
    answer = owner.image("POST", members_path(), json={"member": PARTNER})
    assert_glance_error(answer, 409, f"Member {PARTNER} is duplicated for image {SHARED_IMAGE}")


def test_owner_lists_all_members_partner_only_its_own(owner, partner):
    """Glance db filter: the owner sees every member; a member project sees only its own record."""
    assert owner.image("POST", members_path(), json={"member": OUTSIDER}).status_code == 200
    by_owner = owner.image("GET", members_path()).json()
    assert {m["member_id"] for m in by_owner["members"]} == {PARTNER, OUTSIDER}
    assert by_owner["schema"] == "/v2/schemas/members"
    by_partner = partner.image("GET", members_path()).json()
    assert [m["member_id"] for m in by_partner["members"]] == [PARTNER]


def test_member_accepts_share(partner, owner):
    """[doc] only the member project's token may set the member status: partner PUT accepted is 200."""
    answer = partner.image("PUT", members_path(member=PARTNER), json={"status": "accepted"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "accepted"
    assert owner.image("GET", members_path(member=PARTNER)).json()["status"] == "accepted"


def test_owner_cannot_set_member_status(owner):
    """[doc] the owner's PUT of a member status is 403, with Glance 33's policy message."""
    answer = owner.image("PUT", members_path(member=PARTNER), json={"status": "accepted"})
    assert_glance_error(answer, 403, "You are not authorized to complete modify_member action.")


def test_invalid_member_status_is_400(partner):
    """Glance: 400 'Incorrect request: Status must be "pending", "accepted" or "rejected".'."""
    answer = partner.image("PUT", members_path(member=PARTNER), json={"status": "active"})
    assert_glance_error(answer, 400, 'Status must be "pending", "accepted" or "rejected".')


def test_owner_removes_member(owner, partner):
    """[doc] the owner removes a member: 204, and the member no longer sees the image."""
    assert owner.image("DELETE", members_path(member=PARTNER)).status_code == 204
    assert owner.image("GET", members_path()).json()["members"] == []
    assert partner.image("GET", f"/v2/images/{SHARED_IMAGE}").status_code == 404


def test_member_cannot_remove_itself(partner):
    """Glance: DELETE of a member by a non-owner is 403 "Not allowed to delete members for image <id>."."""
    answer = partner.image("DELETE", members_path(member=PARTNER))
    assert_glance_error(answer, 403, f"Not allowed to delete members for image {SHARED_IMAGE}.")


def test_outsider_cannot_see_members(outsider):
    """Glance: an image the caller cannot see is 404 "Image <id> not found." on the members API."""
    assert_glance_error(outsider.image("GET", members_path()), 404, f"Image {SHARED_IMAGE} not found.")
    assert_glance_error(outsider.image("POST", members_path(), json={"member": OUTSIDER}), 404, "not found")


# -- data: upload ---------------------------------------------------------------------------------


@pytest.mark.parametrize("transfer", ["chunked", "content-length"])
def test_upload_makes_image_active_with_hashes(owner, transfer):
    """upload: 204; the image goes active with size, checksum (md5) and
    os_hash_value (sha512) of the uploaded bytes."""
    data = qcow2_bytes()
    image = create_image(owner)
    body = as_stream(data) if transfer == "chunked" else data
    answer = upload(owner, image["id"], body)
    assert answer.status_code == 204, answer.text
    assert answer.request.headers.get("Transfer-Encoding") == ("chunked" if transfer == "chunked" else None)
    after = get_image(owner, image["id"])
    assert after["status"] == "active"
    assert after["size"] == len(data)
    assert after["checksum"] == md5(data)
    assert after["os_hash_algo"] == "sha512"
    assert after["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert after["virtual_size"] == 1024 * 1024


def test_upload_with_wrong_content_type_is_415(owner):
    """upload: Content-Type must be application/octet-stream; Glance 415 "Invalid content type"
    after webob's explanation."""
    image = create_image(owner)
    answer = upload(owner, image["id"], b"QFI\xfb" + b"\0" * 60, **{"Content-Type": "application/json"})
    assert_glance_error(answer, 415, "Invalid content type application/json")
    assert get_image(owner, image["id"])["status"] == "queued"


def test_second_upload_is_409(owner):
    """upload: a second upload to an active image is 409."""
    image = create_image(owner)
    assert upload(owner, image["id"], qcow2_bytes()).status_code == 204
    answer = upload(owner, image["id"], b"QFI\xfb" + b"\0" * 60)
    assert_glance_error(answer, 409, "Image status transition from active to saving is not allowed")


def test_upload_of_non_qcow2_bytes_is_415_and_spoils_the_image(owner):
    """[glance33] bytes that don't match disk_format qcow2 are refused with 415; the image goes back to
    queued showing the refused bytes' checksum, and a second upload fails with 500, as on Glance 33."""
    image = create_image(owner)
    data = b"this is not a disk image, just some text\n" * 4
    answer = upload(owner, image["id"], data)
    body = assert_glance_error(answer, 415, "Image disk_format qcow2 does not match stream data raw")
    assert body["message"] == (
        "The request media type application/octet-stream is not supported by this server.\n<br /><br />\n"
        "Image disk_format qcow2 does not match stream data raw"
    )
    after = get_image(owner, image["id"])
    assert (after["status"], after["size"], after["checksum"]) == ("queued", None, md5(data))
    assert after["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert_glance_error(upload(owner, image["id"], qcow2_bytes()), 500, "erred")


def test_upload_to_another_projects_image_is_refused(owner, partner):
    """Glance: only the owner uploads data; a member gets 403."""
    image = create_image(owner, visibility="shared")
    assert owner.image("POST", members_path(image["id"]), json={"member": PARTNER}).status_code == 200
    answer = upload(partner, image["id"], b"QFI\xfb" + b"\0" * 60)
    assert answer.status_code == 403


# -- data: download -------------------------------------------------------------------------------


def test_download_allowed_image(owner):
    """[doc] download is allowed when nhncloud_allow_download is true: 200, bytes whose md5 equals the
    image's checksum and the Content-MD5 header."""
    image = get_image(owner, DOWNLOADABLE_IMAGE)
    answer = owner.image("GET", f"/v2/images/{DOWNLOADABLE_IMAGE}/file")
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "application/octet-stream"
    assert md5(answer.content) == image["checksum"] == answer.headers["Content-MD5"]
    assert len(answer.content) == image["size"] == int(answer.headers["Content-Length"])


def test_download_without_allow_download_is_403(owner):
    """[doc] no nhncloud_allow_download: refused; [inferred] status 403 by default."""
    answer = owner.image("GET", f"/v2/images/{PROTECTED_IMAGE}/file")
    assert_glance_error(answer, 403, "nhncloud_allow_download")


def test_download_refused_status_knob(make_sim):
    """Knob download_refused_status: the undocumented refusal status can be 404 instead."""
    api = owner_api(make_sim(download_refused_status=404))
    answer = api.image("GET", f"/v2/images/{PROTECTED_IMAGE}/file")
    assert_glance_error(answer, 404, "nhncloud_allow_download")


def test_download_of_queued_image_is_204(owner):
    """Glance: GET /file of a queued image (no data yet) is 204 No Content."""
    image = create_image(owner, nhncloud_allow_download="true")
    answer = owner.image("GET", f"/v2/images/{image['id']}/file")
    assert answer.status_code == 204
    assert answer.content == b""


def test_uploaded_bytes_download_back_identical(owner):
    """the copy path streams download -> upload; uploaded bytes read back unchanged."""
    data = qcow2_bytes("round-trip")
    image = create_image(owner, nhncloud_allow_download="true")
    assert upload(owner, image["id"], as_stream(data)).status_code == 204
    answer = owner.image("GET", f"/v2/images/{image['id']}/file")
    assert answer.status_code == 200
    assert answer.content == data
    assert answer.headers["Content-MD5"] == md5(data)


def test_seeded_copies_in_two_regions_have_equal_checksums(owner):
    """Seeded images with the same size_mb and content have the same bytes, so a copy verifies."""
    home = get_image(owner, DOWNLOADABLE_IMAGE)
    copy = get_image(owner, KR2_COPY, region="KR2")
    assert home["checksum"] == copy["checksum"]
    assert home["os_hash_value"] == copy["os_hash_value"]
    assert home["size"] == copy["size"]


def test_upload_keeps_bytes_knob_off_changes_checksum(make_sim):
    """Knob upload_keeps_bytes=False ([inferred] NHN "converting"): the stored checksum differs from the
    md5 of the uploaded bytes, so a copy's verification has something to catch."""
    api = owner_api(make_sim(upload_keeps_bytes=False))
    data = qcow2_bytes()
    image = create_image(api)
    assert upload(api, image["id"], data).status_code == 204
    after = get_image(api, image["id"])
    assert after["status"] == "active"
    assert after["checksum"] != md5(data)
    assert after["os_hash_value"] != hashlib.sha512(data).hexdigest()


# -- polling --------------------------------------------------------------------------------------


def test_uploaded_image_is_saving_until_polled(make_sim):
    """upload: queued -> saving -> active; with image_ready_after_polls=2 the image is
    saving after the upload and active after GET polls."""
    api = owner_api(make_sim(image_ready_after_polls=2))
    image = create_image(api)
    assert image["status"] == "queued"
    assert upload(api, image["id"], qcow2_bytes()).status_code == 204
    statuses = [get_image(api, image["id"])["status"] for _ in range(4)]
    assert statuses == ["saving", "saving", "active", "active"]


# -- found in review ------------------------------------------------------------------------------


def test_sort_dir_alone_orders_by_the_default_key(owner):
    """sort_dir without sort_key applies to Glance's default key, created_at (then id)."""
    ascending = list_ids(owner, "?sort_dir=asc")
    assert ascending == list(reversed(list_ids(owner, "?sort_dir=desc")))


def test_more_sort_dirs_than_keys_is_400(owner):
    """Glance refuses sort_dir values that don't pair up with sort_key values."""
    answer = owner.image("GET", "/v2/images?sort_key=name&sort_dir=asc&sort_dir=desc")
    assert_glance_error(answer, 400, "sort_key and sort_dir")


def test_tags_are_percent_decoded(owner):
    """A tag sent percent-encoded in the path is stored decoded, and filters find it."""
    assert owner.image("PUT", f"/v2/images/{PROTECTED_IMAGE}/tags/release%202025").status_code == 204
    assert get_image(owner, PROTECTED_IMAGE)["tags"] == ["release 2025"]
    assert list_ids(owner, "?tag=release%202025") == [PROTECTED_IMAGE]


def test_strict_mode_refuses_tags_on_a_protected_image(make_sim):
    """Strict protected_patch: a protected image "cannot be modified", tags included."""
    api = owner_api(make_sim(protected_patch="strict"))
    assert_glance_error(api.image("PUT", f"/v2/images/{PROTECTED_IMAGE}/tags/x"), 403, "cannot be modified")


# -- Glance 33: deleted ids, PATCH ops, updated_at, consumer listings -----------------------------


def test_a_deleted_images_id_is_409_on_create_and_404_on_read(owner, partner):
    """[glance33] soft delete: the id of a deleted image is never usable again, by any project."""
    image = create_image(owner, id="aaaaaaaa-0000-4000-8000-0000000000d1")
    assert owner.image("DELETE", f"/v2/images/{image['id']}").status_code == 204
    assert_glance_error(owner.image("GET", f"/v2/images/{image['id']}"), 404, f"No image found with ID {image['id']}")
    for api in (owner, partner):
        answer = api.image("POST", "/v2/images", json={"id": image["id"], "name": "again", "os_type": "linux"})
        assert_glance_error(answer, 409, f"Image ID {image['id']} already exists!")
    assert owner.image("DELETE", f"/v2/images/{image['id']}").status_code == 404


def test_a_deleted_seeded_images_id_is_not_reusable_either(owner):
    assert owner.image("DELETE", f"/v2/images/{DOWNLOADABLE_IMAGE}").status_code == 204
    answer = owner.image("POST", "/v2/images", json={"id": DOWNLOADABLE_IMAGE, "name": "x", "os_type": "linux"})
    assert_glance_error(answer, 409, "already exists!")


@pytest.mark.parametrize(
    ("op", "message"),
    [
        (
            {"op": "test", "path": "/name", "value": "web-base"},
            "Invalid operation: `test`. It must be one of the following: add, remove, replace.",
        ),
        (
            {"op": "move", "from": "/a", "path": "/name"},
            "Invalid operation: `move`. It must be one of the following: add, remove, replace.",
        ),
        (
            {"path": "/name", "value": "x"},
            "Unable to find `op` in JSON Schema change. It must be one of the following: add, remove, replace.",
        ),
        ({"op": "replace", "value": "x"}, "Unable to find 'path' in JSON Schema change"),
    ],
)
def test_patch_ops_glance_does_not_know_are_400_and_change_nothing(owner, op, message):
    """[glance33] no compare-and-swap: `test` is 400 like any unknown op, even after a valid op."""
    before = get_image(owner, DOWNLOADABLE_IMAGE)
    answer = owner.patch_image(DOWNLOADABLE_IMAGE, [{"op": "replace", "path": "/name", "value": "changed"}, op])
    assert_glance_error(answer, 400, message)
    assert get_image(owner, DOWNLOADABLE_IMAGE) == before


def test_every_non_empty_patch_moves_updated_at(owner, sim):
    """[glance33] the image is saved for every PATCH with ops, even one that changes no value; [] does not."""
    before = get_image(owner, DOWNLOADABLE_IMAGE)
    sim.advance_clock(5)
    same = owner.patch_image(DOWNLOADABLE_IMAGE, [{"op": "replace", "path": "/name", "value": before["name"]}])
    assert same.status_code == 200, same.text
    assert same.json()["updated_at"] > before["updated_at"]
    sim.advance_clock(5)
    assert owner.patch_image(DOWNLOADABLE_IMAGE, []).json()["updated_at"] == same.json()["updated_at"]


def test_tag_puts_move_updated_at_and_member_changes_do_not(owner, partner, sim):
    """[glance33] a tag PUT saves the image, even for a tag it has; members are not the image's fields."""
    before = get_image(owner, SHARED_IMAGE)
    sim.advance_clock(5)
    accept_share(partner)
    assert owner.image("POST", members_path(), json={"member": OUTSIDER}).status_code == 200
    assert get_image(owner, SHARED_IMAGE)["updated_at"] == before["updated_at"]
    for _ in range(2):
        previous = get_image(owner, SHARED_IMAGE)["updated_at"]
        sim.advance_clock(5)
        assert owner.image("PUT", f"/v2/images/{SHARED_IMAGE}/tags/web").status_code == 204
        assert get_image(owner, SHARED_IMAGE)["updated_at"] > previous


def test_a_member_status_update_moves_the_members_updated_at_only_when_it_changes(partner, sim):
    first = partner.image("PUT", members_path(member=PARTNER), json={"status": "accepted"}).json()
    sim.advance_clock(5)
    again = partner.image("PUT", members_path(member=PARTNER), json={"status": "accepted"}).json()
    assert again["updated_at"] == first["updated_at"]


@pytest.mark.parametrize(
    ("status", "listed_before", "listed_after_accepting"),
    [("all", True, True), ("pending", True, False), ("accepted", False, True), ("rejected", False, False)],
)
def test_the_consumer_lists_shares_by_member_status(partner, status, listed_before, listed_after_accepting):
    """[glance33] `visibility=shared&member_status=S` lists the shares whose member status (the caller's)
    is S; the consumer's own images are listed whatever S is."""
    own = create_image(partner, name="partner-own", visibility="shared")
    query = f"?visibility=shared&member_status={status}"
    assert (SHARED_IMAGE in list_ids(partner, query), own["id"] in list_ids(partner, query)) == (listed_before, True)
    accept_share(partner)
    assert (SHARED_IMAGE in list_ids(partner, query)) == listed_after_accepting


@pytest.mark.parametrize("status", ["all", "pending", "accepted", "rejected"])
def test_the_owner_lists_its_shared_images_whatever_member_status_says(owner, status):
    """[glance33] member_status filters only other projects' images."""
    assert set(list_ids(owner, f"?visibility=shared&member_status={status}")) == {SHARED_IMAGE}
    assert SHARED_IMAGE in list_ids(owner, f"?member_status={status}")


def test_an_unknown_member_status_or_visibility_is_400(partner):
    assert_glance_error(partner.image("GET", "/v2/images?member_status=bogus"), 400, "Invalid status: bogus")
    assert_glance_error(partner.image("GET", "/v2/images?visibility=bogus"), 400, "Invalid visibility value: bogus")


def test_list_filters_take_glances_operators(owner):
    """[glance33] `in:` and `eq:` on name, id, status and formats; an unknown operator is 400; range and
    time filters on size and timestamps."""
    assert set(list_ids(owner, "?name=in:web-base,legacy-base")) == {DOWNLOADABLE_IMAGE, PROTECTED_IMAGE}
    assert list_ids(owner, "?name=eq:web-base") == [DOWNLOADABLE_IMAGE]
    assert set(list_ids(owner, f"?id=in:{DOWNLOADABLE_IMAGE},{SHARED_IMAGE}")) == {DOWNLOADABLE_IMAGE, SHARED_IMAGE}
    assert_glance_error(
        owner.image("GET", "/v2/images?name=like:web"), 400, "Unable to filter by unknown operator 'like'."
    )
    size = get_image(owner, DOWNLOADABLE_IMAGE)["size"]
    assert DOWNLOADABLE_IMAGE in list_ids(owner, f"?size_min={size}")
    assert DOWNLOADABLE_IMAGE not in list_ids(owner, f"?size_max={size - 1}")
    assert_glance_error(owner.image("GET", "/v2/images?size_min=big"), 400, "non-numeric")
    assert list_ids(owner, "?created_at=lt:2000-01-01T00:00:00Z") == []
    assert_glance_error(
        owner.image("GET", "/v2/images?created_at=bogus:2000-01-01T00:00:00Z"),
        400,
        "Unable to filter on a unknown operator.",
    )
    assert_glance_error(
        owner.image("GET", "/v2/images?name=web:base"), 400, "Unable to filter by unknown operator 'web'."
    )
    assert DOWNLOADABLE_IMAGE in list_ids(owner, "?created_at=gt:2000-01-01T00:00:00Z")
    assert set(list_ids(owner, "?protected=true")) == {PUBLIC_IMAGE, PROTECTED_IMAGE}


def test_a_client_chosen_id_may_be_upper_case(owner):
    """[glance33] the id pattern takes either case; the id is kept as sent."""
    image = create_image(owner, id="ABCDEF00-0000-4000-8000-000000000001")
    assert image["id"] == "ABCDEF00-0000-4000-8000-000000000001"
    assert owner.image("GET", "/v2/images/abcdef00-0000-4000-8000-000000000001").status_code == 404
