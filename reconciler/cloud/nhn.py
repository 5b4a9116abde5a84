"""`NhnCloudClient`: the CloudClient over HTTP, for NHN Cloud and, unchanged, for the simulator.

API facts: Glance v2 paths have no tenant segment and page through `next`; Nova and
Cinder URLs end in `/v2/{tenantId}` (the catalog's); a server shows its flavor only by id, mapped through
`flavors/detail`; the root device decides the imaging call (section 3).
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import requests

from reconciler.cloud.auth import Credentials, KeystoneV2Auth, TrustedHeaderAuth
from reconciler.cloud.errors import CloudError, CloudResponseError, CloudTransportError, Conflict, NotFound
from reconciler.cloud.records import Image, ImageListing, Member, PatchOp, Server, Volume, parse_server_time
from reconciler.cloud.transport import DEFAULT_TIMEOUT, Transport, json_body, make_session
from reconciler.cloud.waiting import poll

PATCH_CONTENT_TYPE = "application/openstack-images-v2.1-json-patch"
PAGE_SIZE = 1000  # NHN's maximum [doc]
DOWNLOAD_CHUNK = 1024 * 1024
UPLOAD_CHUNK = 64 * 1024
TRANSFER_RATE = 5 * 1024 * 1024  # bytes/s assumed when judging whether a token outlives a transfer
ROOT_DEVICES = ("/dev/vda", "/dev/sda", "/dev/xvda")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)


def _next_marker(links: Any) -> str | None:
    """The `marker` of a Nova list's rel=next link, if there is one."""
    for link in links if isinstance(links, list) else ():
        if isinstance(link, dict) and link.get("rel") == "next" and isinstance(link.get("href"), str):
            markers = parse_qs(urlsplit(link["href"]).query).get("marker")
            if markers:
                return markers[0]
    return None


def _q(value: str) -> str:
    """`value` (an id from data, often from the cloud) as exactly one path segment: "/", "?", "#" and
    everything but unreserved characters percent-encoded; a segment of dots alone ("." or "..") would
    be dropped as a dot segment (DELETE .../members/.. went out as DELETE .../images/ID/, the image),
    so its dots are encoded too, and an empty one would name the collection, so it is refused."""
    if not value:
        raise CloudError("an empty id cannot be sent as a path segment: the request would name the collection")
    if set(value) == {"."}:
        return "%2E" * len(value)
    return quote(value, safe="")


def _bounded_chunks(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The body as HTTP chunks of at most UPLOAD_CHUNK bytes, whatever sizes the caller yields: some
    servers refuse large chunks (a real Glance under uwsgi answers 500 "unable to receive chunked part")."""
    for chunk in chunks:
        view = memoryview(chunk)
        for start in range(0, len(view), UPLOAD_CHUNK):
            yield bytes(view[start : start + UPLOAD_CHUNK])


@dataclass(slots=True)
class _Download:
    size: int | None
    checksum: str | None
    _response: Any

    def chunks(self) -> Iterator[bytes]:
        received = 0
        try:
            for chunk in self._response.iter_content(DOWNLOAD_CHUNK):
                received += len(chunk)
                yield chunk
        except requests.RequestException as err:
            raise CloudTransportError(
                f"the download broke off after {received:,} bytes ({type(err).__name__})",
                hint="nothing partial is kept; run again to copy from the start",
            ) from None
        if self.size is not None and received != self.size:
            raise CloudTransportError(f"the download ended after {received:,} of {self.size:,} bytes")


class NhnCloudClient:
    """See client.py for the contract every method keeps."""

    def __init__(
        self,
        transport: Transport,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        page_size: int = PAGE_SIZE,
        poll_delays: tuple[float, float] = (1.0, 15.0),
    ) -> None:
        self._http = transport
        self._page_size = page_size
        # (first, longest) delay between polls while waiting; the simulator advances per poll, not
        # per second, so a simulator target polls briskly.
        self._poll_delays = poll_delays
        self.project_id = transport.auth.project_id
        self._sleep = sleep
        self._clock = clock
        self._flavors: dict[str, dict[str, str]] = {}
        self._flavors_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"NhnCloudClient(project={self.project_id!r}, auth={self._http.auth!r})"

    def close(self) -> None:
        self._http.close()

    def prepare_transfer(self, size: int | None) -> None:
        """Before streaming `size` bytes: make sure the token outlives the transfer, at a pessimistic
        TRANSFER_RATE (design: re-authenticate before a long call, never in the middle of one)."""
        if size:
            self._http.auth.ensure_valid_for(size / TRANSFER_RATE)

    # -- catalog --------------------------------------------------------------------------------------

    def image_regions(self) -> tuple[str, ...]:
        return self._http.auth.regions("image")

    # -- images ---------------------------------------------------------------------------------------

    def list_images(
        self,
        region: str,
        *,
        owner: str | None = None,
        name: str | None = None,
        filters: Mapping[str, str] | None = None,
    ) -> list[Image]:
        return list(self.list_images_dated(region, owner=owner, name=name, filters=filters).images)

    def list_images_dated(
        self,
        region: str,
        *,
        owner: str | None = None,
        name: str | None = None,
        filters: Mapping[str, str] | None = None,
    ) -> ImageListing:
        # Glance reads `x:` at the start of a filter value as an operator (`in:`, `eq:`) and answers 400 to an
        # unknown one, so a name with a colon is asked for as `eq:<name>`.
        if name is not None and ":" in name:
            name = f"eq:{name}"
        query = {**(filters or {}), **({"owner": owner} if owner else {}), **({"name": name} if name else {})}
        params: dict[str, Any] | None = {"limit": self._page_size, **query}
        path = "/v2/images"
        images: list[Image] = []
        seen_pages: set[str] = set()
        server_time: float | None = None
        first = True
        while True:
            answer = self._http.request("image", region, "GET", path, params=params)
            if first:
                server_time = parse_server_time(answer.headers.get("Date"))
                first = False
            body = json_body(answer, f"listing images in {region}")
            if not isinstance(body, dict) or not isinstance(body.get("images"), list):
                raise CloudResponseError(f"listing images in {region}: the answer has no 'images' list")
            images.extend(Image.from_api(region, doc) for doc in body["images"])
            following = body.get("next")
            if not following:
                return ImageListing(tuple(images), server_time)
            if not isinstance(following, str) or following in seen_pages:
                raise CloudResponseError(f"listing images in {region}: the server's 'next' link repeats or is invalid")
            seen_pages.add(following)
            # `next` is relative to the endpoint and carries every query parameter.
            path, params = following, None

    def get_image(self, region: str, image_id: str) -> Image:
        answer = self._http.request("image", region, "GET", f"/v2/images/{_q(image_id)}")
        return Image.from_api(region, json_body(answer, f"reading image {image_id}"))

    def find_image(self, region: str, image_id: str) -> Image | None:
        try:
            return self.get_image(region, image_id)
        except NotFound:
            return None

    def create_image(self, region: str, attributes: Mapping[str, Any]) -> Image:
        answer = self._http.request("image", region, "POST", "/v2/images", json=dict(attributes))
        return Image.from_api(region, json_body(answer, "creating an image"))

    def update_image(self, region: str, image_id: str, ops: Sequence[PatchOp]) -> Image:
        answer = self._http.request(
            "image", region, "PATCH", f"/v2/images/{_q(image_id)}",
            json=[op.to_api() for op in ops], headers={"Content-Type": PATCH_CONTENT_TYPE},
        )  # fmt: skip
        return Image.from_api(region, json_body(answer, f"updating image {image_id}"))

    def delete_image(self, region: str, image_id: str) -> bool:
        try:
            self._http.request("image", region, "DELETE", f"/v2/images/{_q(image_id)}")
        except NotFound:
            return False
        return True

    def upload_image_data(self, region: str, image_id: str, chunks: Iterable[bytes]) -> None:
        self._http.request(
            "image", region, "PUT", f"/v2/images/{_q(image_id)}/file",
            data=_bounded_chunks(chunks), headers={"Content-Type": "application/octet-stream"},
        )  # fmt: skip

    @contextlib.contextmanager
    def download_image_data(self, region: str, image_id: str) -> Iterator[_Download]:
        answer = self._http.request(
            "image", region, "GET", f"/v2/images/{_q(image_id)}/file",
            headers={"Accept": "application/octet-stream"}, stream=True,
        )  # fmt: skip
        try:
            if answer.status_code == 204:
                raise CloudError(f"image {image_id} in {region} has no data to download (status not active?)")
            length = answer.headers.get("Content-Length")
            yield _Download(
                int(length) if length and length.isdigit() else None, answer.headers.get("Content-MD5"), answer
            )
        finally:
            answer.close()

    def wait_for_image(
        self,
        region: str,
        image_id: str,
        *,
        status: str = "active",
        timeout: float,
        stop: Callable[[], bool] | None = None,
    ) -> Image:
        def read() -> Image:
            try:
                image = self.get_image(region, image_id)
            except NotFound:
                raise CloudError(f"image {image_id} in {region} disappeared while waiting for {status}") from None
            if image.failed and image.status != status:
                raise CloudError(f"image {image_id} in {region} is {image.status}: it will not become {status}")
            return image

        return poll(
            read, lambda image: image.status == status, timeout=timeout,
            what=f"image {image_id} in {region} to be {status}", describe=lambda image: image.status,
            first_delay=self._poll_delays[0], max_delay=self._poll_delays[1], clock=self._clock, sleep=self._sleep,
            stop=stop,
        )  # fmt: skip

    # -- members --------------------------------------------------------------------------------------

    def list_members(self, region: str, image_id: str) -> list[Member]:
        answer = self._http.request("image", region, "GET", f"/v2/images/{_q(image_id)}/members")
        body = json_body(answer, f"listing members of image {image_id}")
        if not isinstance(body, dict) or not isinstance(body.get("members"), list):
            raise CloudResponseError(f"listing members of image {image_id}: the answer has no 'members' list")
        return [Member.from_api(doc) for doc in body["members"]]

    def add_member(self, region: str, image_id: str, member_id: str) -> Member:
        try:
            answer = self._http.request(
                "image", region, "POST", f"/v2/images/{_q(image_id)}/members", json={"member": member_id}
            )
        except Conflict:
            # Already a member (an earlier call whose answer was lost, or someone else): that is the goal.
            return self._get_member(region, image_id, member_id)
        return Member.from_api(json_body(answer, f"sharing image {image_id}"))

    def _get_member(self, region: str, image_id: str, member_id: str) -> Member:
        answer = self._http.request("image", region, "GET", f"/v2/images/{_q(image_id)}/members/{_q(member_id)}")
        return Member.from_api(json_body(answer, f"reading member {member_id} of image {image_id}"))

    def remove_member(self, region: str, image_id: str, member_id: str) -> bool:
        try:
            self._http.request("image", region, "DELETE", f"/v2/images/{_q(image_id)}/members/{_q(member_id)}")
        except NotFound:
            return False
        return True

    def set_member_status(self, region: str, image_id: str, status: str) -> Member:
        answer = self._http.request(
            "image", region, "PUT", f"/v2/images/{_q(image_id)}/members/{_q(self.project_id)}", json={"status": status}
        )
        return Member.from_api(json_body(answer, f"setting the member status of image {image_id}"))

    def list_shared_images(self, region: str) -> list[tuple[Image, str]]:
        """Three paged listings at most, however many images are shared: `member_status=all`, then, only if it
        holds another project's image, `pending` and `rejected`; the rest of `all` is accepted. (One listing
        plus a member read per image costs more from three images on; Glance's listings carry no status.)
        Each listing has `visibility=shared`, which also lists the project's own shared images: left out."""
        every = self._foreign_shared(region, "all")
        if not every:
            return []
        status = dict.fromkeys(every, "accepted")
        for wanted in ("pending", "rejected"):
            # An image shared, unshared or re-statused between the listings is judged by the last one read;
            # one listed here but not under `all` (shared meanwhile) waits for the next refresh.
            status.update((image_id, wanted) for image_id in self._foreign_shared(region, wanted) if image_id in every)
        return [(every[image_id], status[image_id]) for image_id in sorted(every)]

    def _foreign_shared(self, region: str, member_status: str) -> dict[str, Image]:
        """The images other projects share with this one whose member status is `member_status`, by id."""
        listed = self.list_images(region, filters={"visibility": "shared", "member_status": member_status})
        return {image.id: image for image in listed if image.owner != self.project_id}

    # -- servers --------------------------------------------------------------------------------------

    def list_servers(self, region: str) -> list[Server]:
        doing = f"listing servers in {region}"
        return [self._server(region, doc, doing) for doc in self._detail_pages("compute", region, "servers")]

    def get_volume(self, region: str, volume_id: str) -> Volume:
        answer = self._http.request("volumev2", region, "GET", f"/volumes/{_q(volume_id)}")
        body = json_body(answer, f"reading volume {volume_id}")
        return Volume.from_api(region, body.get("volume") if isinstance(body, dict) else None)

    def list_volumes(self, region: str) -> list[Volume]:
        return [Volume.from_api(region, doc) for doc in self._detail_pages("volumev2", region, "volumes")]

    def _detail_pages(self, service: str, region: str, key: str) -> Iterator[dict[str, Any]]:
        """Every item of a Nova or Cinder `/<key>/detail` list, page by page (`limit` / `marker`)."""
        params: dict[str, Any] = {"limit": self._page_size}
        seen: set[str] = set()
        while True:
            answer = self._http.request(service, region, "GET", f"/{key}/detail", params=params)
            body = json_body(answer, f"listing {key} in {region}")
            docs = body.get(key) if isinstance(body, dict) else None
            if not isinstance(docs, list) or not all(isinstance(doc, dict) for doc in docs):
                raise CloudResponseError(f"listing {key} in {region}: the answer has no {key!r} list")
            yield from docs
            marker = _next_marker(body.get(f"{key}_links"))
            if marker is None or not docs:
                return
            if marker in seen:
                raise CloudResponseError(f"listing {key} in {region}: the server's 'next' link repeats")
            seen.add(marker)
            # Only the marker is taken from the link: its host may be one the client cannot reach.
            params = {"limit": self._page_size, "marker": marker}

    def get_server(self, region: str, server_id: str) -> Server:
        answer = self._http.request("compute", region, "GET", f"/servers/{_q(server_id)}")
        body = json_body(answer, f"reading server {server_id}")
        doc = body.get("server") if isinstance(body, dict) else None
        if not isinstance(doc, dict):
            raise CloudResponseError(f"reading server {server_id}: the answer has no 'server' object")
        listed = self._server(region, doc, f"reading server {server_id}")
        root_volume = self._root_volume(region, listed.id)
        return dataclasses.replace(
            listed,
            flavor_name=self._flavor_name(region, listed.flavor_id),
            root_device="volume" if root_volume else "local",
            root_volume_id=root_volume,
        )

    @staticmethod
    def _server(region: str, doc: Mapping[str, Any], doing: str) -> Server:
        """A server from its API document, without what costs further reads (root device, flavor name)."""
        flavor = doc.get("flavor")
        flavor_id = flavor.get("id") if isinstance(flavor, dict) else None
        for key, value in (
            ("id", doc.get("id")),
            ("name", doc.get("name")),
            ("status", doc.get("status")),
            ("flavor.id", flavor_id),
        ):
            if not isinstance(value, str):
                raise CloudResponseError(f"{doing}: a server has no {key!r}")
        metadata = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
        return Server(
            region=region,
            id=doc["id"],
            name=doc["name"],
            status=doc["status"],
            task_state=doc.get("OS-EXT-STS:task_state"),
            flavor_id=flavor_id,
            flavor_name=None,
            root_device=None,
            root_volume_id=None,
            metadata=MappingProxyType({str(k): str(v) for k, v in metadata.items()}),
            image_id=image.get("id") if isinstance(image := doc.get("image"), dict) and image.get("id") else None,
        )

    def _root_volume(self, region: str, server_id: str) -> str | None:
        """The id of the volume attached as the root device, or None for a local-disk root."""
        answer = self._http.request("compute", region, "GET", f"/servers/{_q(server_id)}/os-volume_attachments")
        body = json_body(answer, f"reading the volumes of server {server_id}")
        attachments = body.get("volumeAttachments") if isinstance(body, dict) else None
        if not isinstance(attachments, list):
            raise CloudResponseError(f"reading the volumes of server {server_id}: no 'volumeAttachments' list")
        for attachment in attachments:
            if isinstance(attachment, dict) and attachment.get("device") in ROOT_DEVICES:
                return str(attachment.get("volumeId") or attachment.get("id"))
        return None

    def _flavor_name(self, region: str, flavor_id: str) -> str | None:
        with self._flavors_lock:
            if flavor_id not in self._flavors.get(region, {}):
                answer = self._http.request("compute", region, "GET", "/flavors/detail")
                body = json_body(answer, "listing flavors")
                flavors = body.get("flavors") if isinstance(body, dict) else None
                if not isinstance(flavors, list):
                    raise CloudResponseError("listing flavors: the answer has no 'flavors' list")
                self._flavors[region] = {str(f.get("id")): str(f.get("name")) for f in flavors if isinstance(f, dict)}
            return self._flavors[region].get(flavor_id)

    def _server_action(self, region: str, server_id: str, action: dict[str, Any]) -> Any:
        return self._http.request("compute", region, "POST", f"/servers/{_q(server_id)}/action", json=action)

    def _state_change(self, region: str, server_id: str, action: str, target: str, on_the_way: str) -> None:
        try:
            self._server_action(region, server_id, {action: None})
        except Conflict:
            # Already there or on the way (an earlier call whose answer was lost): that is the goal.
            server = self.get_server(region, server_id)
            # There already (and not about to leave: ACTIVE while powering off is on its way out), or on
            # its way: that is the goal. Busy with another task: the conflict stands.
            if (server.status == target and server.task_state is None) or server.task_state == on_the_way:
                return
            raise

    def stop_server(self, region: str, server_id: str) -> None:
        self._state_change(region, server_id, "os-stop", "SHUTOFF", "powering-off")

    def start_server(self, region: str, server_id: str) -> None:
        self._state_change(region, server_id, "os-start", "ACTIVE", "powering-on")

    def set_server_metadata(self, region: str, server_id: str, metadata: Mapping[str, str]) -> None:
        self._http.request(
            "compute", region, "POST", f"/servers/{_q(server_id)}/metadata", json={"metadata": dict(metadata)}
        )

    def delete_server_metadata(self, region: str, server_id: str, key: str) -> bool:
        try:
            self._http.request("compute", region, "DELETE", f"/servers/{_q(server_id)}/metadata/{_q(key)}")
        except NotFound:
            return False
        return True

    def create_image_from_server(
        self, region: str, server: Server, name: str, *, metadata: Mapping[str, str] | None = None
    ) -> str:
        if server.root_device == "volume":
            assert server.root_volume_id is not None
            # Cinder images the root volume; `force` is required while it is attached (section 3).
            answer = self._http.request(
                "volumev2", region, "POST", f"/volumes/{_q(server.root_volume_id)}/action",
                json={"os-volume_upload_image": {
                    "image_name": name, "force": True, "disk_format": "qcow2", "container_format": "bare",
                    "visibility": "private", "protected": False,
                }},
            )  # fmt: skip
            body = json_body(answer, f"imaging the root volume of {server.name}")
            result = body.get("os-volume_upload_image") if isinstance(body, dict) else None
            image_id = result.get("image_id") if isinstance(result, dict) else None
            if not isinstance(image_id, str):
                raise CloudResponseError(f"imaging {server.name}: the answer has no os-volume_upload_image.image_id")
            return image_id
        answer = self._server_action(
            region, server.id, {"createImage": {"name": name, "metadata": dict(metadata or {})}}
        )
        # Nova before microversion 2.45 puts the image URL in Location; newer ones answer {"image_id"}.
        location = answer.headers.get("Location", "")
        if location.rstrip("/"):
            return location.rstrip("/").rsplit("/", 1)[-1]
        if answer.content:
            body = json_body(answer, f"imaging {server.name}")
            if isinstance(body, dict) and isinstance(body.get("image_id"), str):
                return body["image_id"]
        raise CloudResponseError(f"imaging {server.name}: the answer names no image (no Location, no image_id)")

    def wait_for_server(
        self, region: str, server_id: str, *, status: str, timeout: float, stop: Callable[[], bool] | None = None
    ) -> Server:
        def read() -> Server:
            server = self.get_server(region, server_id)
            if server.status == "ERROR" and status != "ERROR":
                raise CloudError(f"server {server.name} in {region} is in ERROR: it will not become {status}")
            return server

        return poll(
            read, lambda s: s.status == status and s.task_state is None, timeout=timeout,
            what=f"server {server_id} in {region} to be {status}",
            describe=lambda s: s.status + (f" ({s.task_state})" if s.task_state else ""),
            first_delay=self._poll_delays[0], max_delay=self._poll_delays[1], clock=self._clock, sleep=self._sleep,
            stop=stop,
        )  # fmt: skip


def connect(
    credentials: Credentials,
    project_id: str,
    *,
    timeout: tuple[float, float] = DEFAULT_TIMEOUT,
    retries: int = 3,
    sleep: Callable[[float], None] = time.sleep,
    poll_delays: tuple[float, float] = (1.0, 15.0),
) -> NhnCloudClient:
    """A client for `project_id`, authenticating with identity v2 (NHN Cloud or the simulator)."""
    session = make_session(retries, sleep)
    auth = KeystoneV2Auth(credentials, project_id, session, timeout=timeout[1])
    transport = Transport(auth, session, timeout=timeout, retries=retries, sleep=sleep)
    return NhnCloudClient(transport, sleep=sleep, poll_delays=poll_delays)


def connect_trusted_glance(
    image_endpoint: str,
    project_id: str,
    *,
    region: str = "LOCAL",
    retries: int = 3,
    sleep: Callable[[float], None] = time.sleep,
) -> NhnCloudClient:
    """A client for a real Glance run without Keystone (image operations only): the contract tests' tier."""
    session = make_session(retries, sleep)
    auth = TrustedHeaderAuth(project_id, image_endpoint, region)
    return NhnCloudClient(Transport(auth, session, retries=retries, sleep=sleep), sleep=sleep)
