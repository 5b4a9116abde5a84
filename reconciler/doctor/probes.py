"""The checks against one region: what doctor does to its scratch images, and what it records.

Each check records an `Observation` (verdicts.py judges it). An API error in a check becomes that check's
error and the run goes on; a refused authentication, a missing endpoint or a connection that gives no
answer stops the run (the command reports it as any other command does). Whatever happens, every scratch
image of the run is deleted before this returns or raises (`ScratchImages.finish`).

Order, with the scratch images alive at each step (never more than three):
  A created (client-chosen id) -> server_date -> B created, uploaded, read back without the download flag
  -> B deleted -> name_filter, property_filters (A) -> C created without os_type, deleted -> on A:
  patch_moves_updated_at, read_after_write, protected_patch, unprotect, unknown_member -> A deleted ->
  its id reused.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from reconciler.cloud.client import CloudClient
from reconciler.cloud.errors import (
    CloudApiError,
    CloudConfigError,
    CloudError,
    CloudTransportError,
    Unauthorized,
)
from reconciler.cloud.records import Image, PatchOp, parse_server_time
from reconciler.doctor.report import Cleanup, Observation, RegionReport
from reconciler.doctor.scratch import PROPERTY, ScratchImages, clean_earlier_runs
from reconciler.doctor.users import images_in_use
from reconciler.doctor.verdicts import PROBES, region_report
from reconciler.render import escape

PROBE_PROPERTY = "doctor_probe"  # not reconciler_*: a killed run's image stays eligible for cleanup
SCRATCH_VIRTUAL_SIZE = 256 * 1024  # a 576 KiB qcow2 file: under the 1 MiB of the leftover rule
UPDATED_AT_RESOLUTION_S = 1.1  # updated_at has whole seconds: wait past one before judging a PATCH
WAIT_ACTIVE_S = 300.0
# Errors no later request would survive: they stop the run, after the cleanup.
FATAL_ERRORS = (Unauthorized, CloudConfigError, CloudTransportError)

A_CHECKS = (
    "server_date",
    "name_filter",
    "property_filters",
    "patch_moves_updated_at",
    "read_after_write",
    "protected_patch",
    "unprotect",
    "unknown_member",
    "deleted_id_reuse",
)
UPLOAD_CHECKS = ("upload_keeps_bytes", "download_gating", "download_refused_status")


def scratch_qcow2(label: str) -> bytes:
    """A small valid qcow2 (Glance refuses bytes that don't match disk_format), different per run."""
    from reconciler.simulator.qcow2 import Qcow2Image

    return b"".join(Qcow2Image.of_virtual_size(SCRATCH_VIRTUAL_SIZE, label).iter_chunks())


def _message(err: CloudError) -> str:
    if isinstance(err, CloudApiError):
        return f"{err.status} {err.server_message}"
    return err.message


def _refusal(err: CloudError) -> bool:
    """A 4xx answer: the server refused. A 5xx is a failure of the check, not an answer to it."""
    return isinstance(err, CloudApiError) and 400 <= err.status < 500


def _iso(epoch: float | None) -> str | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class RegionProbe:
    def __init__(
        self,
        client: CloudClient,
        region: str,
        run_id: str,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        wait_active_s: float = WAIT_ACTIVE_S,
    ) -> None:
        self.client = client
        self.region = region
        self.run_id = run_id
        self.scratch = ScratchImages(client, region, run_id)
        self.observations: dict[str, Observation] = {}
        self._sleep = sleep
        self._clock = clock
        self._wait_active_s = wait_active_s
        self._a_changed = 0.0  # monotonic time of the last change to A

    # -- recording ------------------------------------------------------------------------------------

    def observe(self, check: str, facts: dict[str, Any] | None = None, **kwargs: Any) -> None:
        self.observations.setdefault(check, Observation(check, facts or {}, **kwargs))

    def fail(self, checks: tuple[str, ...], why: str) -> None:
        for check in checks:
            self.observe(check, error=why)

    @contextlib.contextmanager
    def checking(self, *checks: str) -> Iterator[None]:
        """An API error inside becomes the error of each of `checks` not yet recorded."""
        try:
            yield
        except FATAL_ERRORS:
            raise
        except CloudError as err:
            self.fail(checks, _message(err))

    # -- the run --------------------------------------------------------------------------------------

    def run(self) -> None:
        a, ids_accepted = self._create_a()
        if a is None:
            self.fail(A_CHECKS, "the scratch image could not be created")
        else:
            with self.checking("server_date"):
                self._server_date(a)
        self._upload()
        if a is not None:
            with self.checking("name_filter"):
                self._name_filter(a)
            with self.checking("property_filters"):
                self._property_filters(a)
        with self.checking("os_type_required"):
            self._os_type_required()
        if a is None:
            return
        with self.checking("patch_moves_updated_at"):
            self._patch_moves_updated_at(a)
        with self.checking("read_after_write"):
            self._read_after_write(a)
        with self.checking("protected_patch", "unprotect"):
            self._protected_patch_and_unprotect(a)
        with self.checking("unknown_member"):
            self._unknown_member(a)
        with self.checking("deleted_id_reuse"):
            self._deleted_id_reuse(a, ids_accepted)

    def _create_a(self) -> tuple[Image | None, bool]:
        requested = str(uuid.uuid4())
        try:
            a = self.scratch.create(image_id=requested)
        except FATAL_ERRORS:
            raise
        except CloudError as err:
            if _refusal(err):
                assert isinstance(err, CloudApiError)
                self.observe(
                    "client_image_id", {"accepted": False, "status": err.status, "message": err.server_message}
                )
            else:
                self.observe("client_image_id", error=_message(err))
            with self.checking(*A_CHECKS):
                a = self.scratch.create()
                self._a_changed = self._clock()
                return a, False
            return None, False
        self._a_changed = self._clock()
        accepted = a.id == requested
        self.observe("client_image_id", {"accepted": accepted, "ignored": not accepted})
        return a, accepted

    def _server_date(self, a: Image) -> None:
        listing = self.client.list_images_dated(self.region, owner=self.client.project_id, name=self.scratch.name)
        updated = parse_server_time(a.updated_at)
        skew = None if listing.server_time is None or updated is None else round(listing.server_time - updated, 1)
        self.observe("server_date", {"date": _iso(listing.server_time), "updated_at": a.updated_at, "skew_s": skew})

    def _upload(self) -> None:
        with self.checking(*UPLOAD_CHECKS):
            b = self.scratch.create()
            payload = scratch_qcow2(f"reconciler-doctor {self.run_id}")
            self.client.upload_image_data(
                self.region, b.id, (payload[i : i + 65536] for i in range(0, len(payload), 65536))
            )
            stored = self.client.wait_for_image(self.region, b.id, status="active", timeout=self._wait_active_s)
            # The client's Image does not keep os_hash_algo (Glance's default, and NHN's, is sha512).
            sent = {
                "size": len(payload),
                "checksum": hashlib.md5(payload, usedforsecurity=False).hexdigest(),
                "os_hash_value": hashlib.sha512(payload).hexdigest(),
            }
            kept = {"size": stored.size, "checksum": stored.checksum, "os_hash_value": stored.os_hash_value}
            self.observe("upload_keeps_bytes", {"sent": sent, "stored": kept})
            with self.checking("download_gating", "download_refused_status"):
                self._download(b, payload)
            self.scratch.delete(b.id)

    def _download(self, b: Image, payload: bytes) -> None:
        try:
            with self.client.download_image_data(self.region, b.id) as download:
                same = b"".join(download.chunks()) == payload
        except CloudError as err:
            if not _refusal(err):
                raise
            assert isinstance(err, CloudApiError)
            facts = {"gated": True, "status": err.status, "message": err.server_message}
        else:
            facts = {"gated": False, "same_bytes": same}
        self.observe("download_gating", facts)
        self.observe("download_refused_status", facts)

    def _name_filter(self, a: Image) -> None:
        owner, name = self.client.project_id, self.scratch.name
        named = self.client.list_images(self.region, owner=owner, name=name)
        nameless = self.client.list_images(self.region, owner=owner, name=f"{name}-none")
        strangers = sorted({str(i.name) for i in named if i.name != name} | {str(i.name) for i in nameless})
        self.observe("name_filter", {"strangers": strangers, "found_own": any(i.id == a.id for i in named)})

    def _property_filters(self, a: Image) -> None:
        owner = self.client.project_id
        hit = self.client.list_images(self.region, owner=owner, filters={PROPERTY: self.run_id})
        miss = self.client.list_images(self.region, owner=owner, filters={PROPERTY: f"{self.run_id}-none"})
        honoured = any(i.id == a.id for i in hit) and not any(i.id == a.id for i in miss)
        honoured = honoured and all(i.properties.get(PROPERTY) == self.run_id for i in hit)
        self.observe("property_filters", {"honoured": honoured})

    def _os_type_required(self) -> None:
        try:
            c = self.scratch.create(os_type=False)
        except CloudError as err:
            if not _refusal(err):
                raise
            assert isinstance(err, CloudApiError)
            self.observe("os_type_required", {"required": True, "status": err.status, "message": err.server_message})
            return
        self.observe("os_type_required", {"required": False})
        self.scratch.delete(c.id)

    def _patch(self, a: Image, *ops: PatchOp) -> Image:
        image = self.client.update_image(self.region, a.id, list(ops))
        self._a_changed = self._clock()
        return image

    def _patch_moves_updated_at(self, a: Image) -> None:
        before = self.client.get_image(self.region, a.id).updated_at
        self._sleep(max(0.0, UPDATED_AT_RESOLUTION_S - (self._clock() - self._a_changed)))
        after = self._patch(a, PatchOp("add", PROBE_PROPERTY, "0")).updated_at
        if after == before:  # the PATCH's answer may show the record before the change: read it again
            after = self.client.get_image(self.region, a.id).updated_at
        self.observe("patch_moves_updated_at", {"before": before, "after": after})

    def _read_after_write(self, a: Image) -> None:
        stale = missing = 0
        first: int | None = None
        for probe in range(1, PROBES + 1):
            self._patch(a, PatchOp("add", PROBE_PROPERTY, str(probe)))
            listed = self.client.list_images(self.region, owner=self.client.project_id, name=self.scratch.name)
            mine = next((i for i in listed if i.id == a.id), None)
            if mine is None:
                missing += 1
            elif mine.properties.get(PROBE_PROPERTY) != str(probe):
                stale += 1
            if (mine is None or mine.properties.get(PROBE_PROPERTY) != str(probe)) and first is None:
                first = probe
        self.observe("read_after_write", {"probes": PROBES, "stale": stale, "missing": missing, "first_stale": first})

    def _protected_patch_and_unprotect(self, a: Image) -> None:
        try:
            self._patch(a, PatchOp("replace", "protected", True))
        except CloudError as err:
            if isinstance(err, FATAL_ERRORS):
                raise
            self.fail(("protected_patch", "unprotect"), f"the scratch image could not be protected: {_message(err)}")
            return
        with self.checking("protected_patch"):
            try:
                self._patch(a, PatchOp("add", PROBE_PROPERTY, "protected"))
            except CloudError as err:
                if not _refusal(err):
                    raise
                assert isinstance(err, CloudApiError)
                self.observe("protected_patch", {"mode": "strict", "status": err.status, "message": err.server_message})
            else:
                self.observe("protected_patch", {"mode": "permissive"})
        try:
            self._patch(a, PatchOp("replace", "protected", False))
        except CloudError as err:
            if not _refusal(err):
                raise
            assert isinstance(err, CloudApiError)
            self.observe("unprotect", {"refused": err.status, "message": err.server_message})
            return
        self.observe("unprotect", {"protected_after": self.client.get_image(self.region, a.id).protected})

    def _unknown_member(self, a: Image) -> None:
        self._patch(a, PatchOp("replace", "visibility", "shared"))
        stranger = uuid.uuid4().hex
        try:
            self.client.add_member(self.region, a.id, stranger)
        except CloudError as err:
            if not _refusal(err):
                raise
            assert isinstance(err, CloudApiError)
            self.observe("unknown_member", {"accepted": False, "status": err.status, "message": err.server_message})
            return
        self.observe("unknown_member", {"accepted": True})
        self.client.remove_member(self.region, a.id, stranger)

    def _deleted_id_reuse(self, a: Image, ids_accepted: bool) -> None:
        if not ids_accepted:
            self.observe("deleted_id_reuse", skipped="client-chosen ids are not accepted")
            return
        if not self.scratch.delete(a.id):
            self.observe("deleted_id_reuse", error="the scratch image could not be deleted")
            return
        try:
            again = self.scratch.create(image_id=a.id)
        except CloudError as err:
            if not _refusal(err):
                raise
            assert isinstance(err, CloudApiError)
            self.observe("deleted_id_reuse", {"reusable": False, "status": err.status, "message": err.server_message})
            return
        self.observe("deleted_id_reuse", {"reusable": True})
        self.scratch.delete(again.id)


def check_region(
    client: CloudClient,
    region: str,
    run_id: str,
    *,
    protected_patch: str,
    warn: Callable[[str], None] = lambda line: None,
    **options: Any,
) -> RegionReport:
    """Clean a killed run's scratch images, run every check, delete this run's scratch images."""
    probe = RegionProbe(client, region, run_id, **options)
    earlier = Cleanup()
    finished = False
    try:
        earlier = _clean_earlier(client, region, run_id)
        probe.run()
        finished = True
    finally:
        probe.scratch.finish()
        if not finished:
            # The run stops with an error: say what it leaves behind, as the report will not be printed.
            for image in probe.scratch.undeletable:
                # The name and the error are the cloud's text: shown escaped, like the report (render.py).
                name, error = escape.text(str(image.name)), escape.text(str(image.error))
                warn(f"could not delete scratch image {escape.text(image.id)} ({name}) in {region}: {error}")
    return region_report(
        region, list(probe.observations.values()), probe.scratch.cleanup(earlier), protected_patch=protected_patch
    )


def _clean_earlier(client: CloudClient, region: str, run_id: str) -> Cleanup:
    try:
        return clean_earlier_runs(client, region, run_id, lambda: images_in_use(client, region))
    except FATAL_ERRORS:
        raise
    except CloudError as err:
        return Cleanup(notes=(f"scratch images of earlier runs not checked: {_message(err)}",))
