"""reconciler/image_upload.py against a recording client: the order of the calls (create, renew the token for
the transfer, stream, wait, verify, one final PATCH), and that any mismatch or failure deletes the image
and never names or marks it. The end-to-end behaviour against the simulator is in tests/test_upload_apply.py."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from reconciler.cloud.errors import CloudError
from reconciler.cloud.records import PatchOp
from reconciler.desired import Source
from reconciler.image_upload import Upload, upload_image
from reconciler.sources.access import SourceAccess

CONTENT = b"qcow2 or not, these are the bytes" * 1000


class Recording:
    """A CloudClient that records every call; `stored` is what the image reads back after the upload."""

    def __init__(self, **stored: Any) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.received = b""
        self.stored = stored
        self.fail_upload = False

    def create_image(self, region: str, attributes: dict[str, Any]) -> Any:
        self.calls.append(("create_image", dict(attributes)))
        return SimpleNamespace(id="img-1", region=region)

    def prepare_transfer(self, size: int | None) -> None:
        self.calls.append(("prepare_transfer", size))

    def upload_image_data(self, region: str, image_id: str, chunks: Iterable[bytes]) -> None:
        self.calls.append(("upload_image_data", image_id))
        for chunk in chunks:
            self.received += chunk
        if self.fail_upload:
            raise CloudError("the image service answered 500")

    def wait_for_image(self, region: str, image_id: str, *, status: str, timeout: float) -> Any:
        self.calls.append(("wait_for_image", status))
        defaults = {
            "size": len(self.received),
            "checksum": hashlib.md5(self.received, usedforsecurity=False).hexdigest(),
            "os_hash_algo": "sha512",
            "os_hash_value": hashlib.sha512(self.received).hexdigest(),
        }
        return SimpleNamespace(**{**defaults, **self.stored})

    def update_image(self, region: str, image_id: str, ops: list[PatchOp]) -> Any:
        self.calls.append(("update_image", [op.name for op in ops]))

    def delete_image(self, region: str, image_id: str) -> bool:
        self.calls.append(("delete_image", image_id))
        return True

    def kinds(self) -> list[str]:
        return [name for name, _ in self.calls]


def run(client: Recording, tmp_path: Path, digest: str | None = None) -> Any:
    (tmp_path / "x.raw").write_bytes(CONTENT)
    source = Source(file="x.raw", sha256=digest or hashlib.sha256(CONTENT).hexdigest(), disk_format="raw")
    upload = Upload(source=source, temporary_name="x~rc-0123456789abcdef", os_type="linux")
    return upload_image(
        client,
        "KR1",
        upload,
        root=tmp_path,
        access=SourceAccess(),
        timeout=60,
        ops=lambda live: [PatchOp("replace", "name", "x"), PatchOp("add", "reconciler_set", "s")],
    )


def test_the_image_is_created_unmarked_the_token_renewed_for_the_size_then_named_once_verified(tmp_path):
    client = Recording()
    result = run(client, tmp_path)
    assert client.kinds() == ["create_image", "prepare_transfer", "upload_image_data", "wait_for_image", "update_image"]
    created = client.calls[0][1]
    assert created["name"] == "x~rc-0123456789abcdef" and not any(k.startswith("reconciler_") for k in created)
    assert (created["disk_format"], created["os_type"], created["visibility"]) == ("raw", "linux", "private")
    assert client.calls[1] == ("prepare_transfer", len(CONTENT))
    assert client.received == CONTENT and result.bytes == len(CONTENT) and result.unchecked_algorithm is None


@pytest.mark.parametrize(
    "stored",
    [{"size": len(CONTENT) + 512}, {"checksum": "0" * 32}, {"os_hash_value": "0" * 128}],
    ids=["size", "checksum", "os_hash_value"],
)
def test_stored_bytes_that_differ_from_the_bytes_sent_delete_the_image_unnamed(tmp_path, stored):
    client = Recording(**stored)
    with pytest.raises(CloudError, match="does not hold the bytes sent"):
        run(client, tmp_path)
    assert client.kinds()[-1] == "delete_image" and "update_image" not in client.kinds()


def test_bytes_without_the_declared_digest_delete_the_image_before_waiting(tmp_path):
    client = Recording()
    with pytest.raises(CloudError, match="do not have the declared sha256"):
        run(client, tmp_path, digest="a" * 64)
    assert client.kinds() == ["create_image", "prepare_transfer", "upload_image_data", "delete_image"]


def test_a_failed_upload_deletes_the_image(tmp_path):
    client = Recording()
    client.fail_upload = True
    with pytest.raises(CloudError, match="500"):
        run(client, tmp_path)
    assert client.kinds()[-1] == "delete_image" and "update_image" not in client.kinds()


def test_a_hash_of_an_algorithm_not_computed_here_is_reported_unchecked(tmp_path):
    client = Recording(os_hash_algo="sha3_512", os_hash_value="f" * 128)
    assert run(client, tmp_path).unchecked_algorithm == "sha3_512"
