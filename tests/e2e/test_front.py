"""The identity front itself: the end-to-end tests are only as good as its relay of Glance."""

from __future__ import annotations

import pytest
import requests

pytestmark = pytest.mark.e2e


def test_the_front_relays_glance_and_serves_empty_compute_and_volume_pages(e2e):
    front, kr1 = e2e.front, e2e.glance("KR1")
    token = front.token_for(*e2e.credentials[e2e.owner], e2e.owner)
    headers = {"X-Auth-Token": token, "Accept": "application/json"}
    base = front.image_endpoint("KR1")

    # Glance's `next` links are relative to the endpoint: follow them through the front, two at a time.
    path, params, seen = "/v2/images", {"owner": e2e.owner, "limit": 2}, []
    while path:
        answer = requests.get(base + path, params=params, headers=headers, timeout=30)
        assert answer.status_code == 200, answer.text
        assert answer.headers["Date"] and answer.headers["Content-Type"].startswith("application/json")
        body = answer.json()
        seen += [image["id"] for image in body["images"]]
        path, params = body.get("next"), None
    assert sorted(seen) == sorted(kr1.owned()) and len(seen) > 2

    # Image bytes come back whole, with Glance's Content-MD5.
    image = kr1.get(e2e.bystanders[0][1])
    data = requests.get(f"{base}/v2/images/{image['id']}/file", headers=headers, timeout=30)
    assert data.status_code == 200 and len(data.content) == image["size"]
    assert data.headers["Content-MD5"] == image["checksum"]

    # No token, or an unknown one: 401; another project's compute URL: 403; the rest of Nova: 404.
    assert requests.get(base + "/v2/images", timeout=30).status_code == 401
    assert requests.get(base + "/v2/images", headers={"X-Auth-Token": "nope"}, timeout=30).status_code == 401
    compute = f"{front.url}/compute/JP1/v2/{e2e.owner}"
    assert requests.get(f"{compute}/servers/detail", headers=headers, timeout=30).json()["servers"] == []
    assert requests.get(
        f"{front.url}/volume/KR1/v2/{e2e.owner}/volumes/detail", headers=headers, timeout=30
    ).json() == {
        "volumes": [],
        "volumes_links": [],
    }
    assert requests.get(f"{compute}/flavors/detail", headers=headers, timeout=30).status_code == 404
    other = f"{front.url}/compute/KR1/v2/{e2e.partner}/servers/detail"
    assert requests.get(other, headers=headers, timeout=30).status_code == 403
