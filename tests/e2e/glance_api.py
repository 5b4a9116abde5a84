"""Straight to a Glance server as one project, with its trusted identity headers: how the end-to-end
tests set images up and how every check reads what really happened (never the tool's output)."""

from __future__ import annotations

from typing import Any

import requests

from reconciler.simulator.qcow2 import Qcow2Image

PATCH = "application/openstack-images-v2.1-json-patch"
# The apply lock's claims: bookkeeping of the tool, not images of the project.
LOCK_NAME_PREFIX = "reconciler-lock-"


class GlanceError(AssertionError):
    pass


class Glance:
    def __init__(self, url: str, project: str, session: requests.Session | None = None) -> None:
        self.url = url.rstrip("/")
        self.project = project
        self.session = session or requests.Session()
        self.session.trust_env = False

    def __repr__(self) -> str:
        return f"Glance({self.url!r}, project={self.project!r})"

    def as_project(self, project: str) -> Glance:
        return Glance(self.url, project, self.session)

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {
            "X-Identity-Status": "Confirmed",
            "X-Project-Id": self.project,
            "X-Roles": "member,reader",
            "Accept": "application/json",
            **kwargs.pop("headers", {}),
        }
        return self.session.request(method, self.url + path, headers=headers, timeout=120, **kwargs)

    def _ok(self, answer: requests.Response, *statuses: int) -> requests.Response:
        if answer.status_code not in (statuses or (200,)):
            raise GlanceError(f"{answer.request.method} {answer.url}: {answer.status_code} {answer.text[:300]}")
        return answer

    # -- reads ----------------------------------------------------------------------------------------

    def images(self, **params: Any) -> list[dict[str, Any]]:
        """Every image the project sees with these filters (default: those it owns), all pages."""
        params = {"owner": self.project, "limit": 100, **params}
        path, found = "/v2/images", []
        while True:
            body = self._ok(self.request("GET", path, params=params)).json()
            found.extend(body["images"])
            if not body.get("next"):
                return found
            path, params = body["next"], None

    def owned(self) -> dict[str, dict[str, Any]]:
        """The project's own images by id, without the tool's lock claims."""
        return {i["id"]: i for i in self.images() if not i["name"].startswith(LOCK_NAME_PREFIX)}

    def get(self, image_id: str) -> dict[str, Any] | None:
        answer = self.request("GET", f"/v2/images/{image_id}")
        if answer.status_code == 404:
            return None
        return self._ok(answer).json()

    def members(self, image_id: str) -> dict[str, str]:
        """member id -> status; none for an image that is not shared (Glance answers 403 then)."""
        answer = self.request("GET", f"/v2/images/{image_id}/members")
        if answer.status_code == 403 and (self.get(image_id) or {}).get("visibility") != "shared":
            return {}
        body = self._ok(answer).json()
        return {m["member_id"]: m["status"] for m in body["members"]}

    # -- writes (setup and direct changes) ------------------------------------------------------------

    def create(self, name: str, *, size_mb: int = 1, content: str | None = None, **attributes: Any) -> dict[str, Any]:
        """An active qcow2 image with real bytes (Glance 33 refuses bytes that don't match the format)."""
        doc = {"name": name, "disk_format": "qcow2", "container_format": "bare", "visibility": "private"}
        doc.update(attributes)
        protected = doc.pop("protected", False)
        created = self._ok(self.request("POST", "/v2/images", json=doc), 201).json()
        data = Qcow2Image(size_mb, content or name).iter_chunks()
        self._ok(
            self.request(
                "PUT",
                f"/v2/images/{created['id']}/file",
                data=data,
                headers={"Content-Type": "application/octet-stream"},
            ),
            204,
        )
        if protected:
            self.patch(created["id"], [{"op": "replace", "path": "/protected", "value": True}])
        image = self.get(created["id"])
        assert image is not None and image["status"] == "active", image
        return image

    def patch(self, image_id: str, ops: list[dict[str, Any]]) -> dict[str, Any]:
        answer = self.request("PATCH", f"/v2/images/{image_id}", json=ops, headers={"Content-Type": PATCH})
        return self._ok(answer).json()

    def share(self, image_id: str, member: str) -> None:
        self.patch(image_id, [{"op": "replace", "path": "/visibility", "value": "shared"}])
        self._ok(self.request("POST", f"/v2/images/{image_id}/members", json={"member": member}))
