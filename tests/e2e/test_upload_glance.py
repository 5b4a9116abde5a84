"""Uploads against two real Glance servers (issue 25): the installed CLI uploads a qcow2 file declared as
`source.file`, then copies the image to the second region; a wrong digest leaves nothing behind.

Every check reads Glance's own API (the `e2e` fixture's direct clients), never the tool's output; only exit
codes come from the tool. The file is a real qcow2 (Glance 33 inspects the bytes of a `disk_format: qcow2`
upload and answers 415 to anything else), made by the simulator's generator."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from reconciler.simulator.qcow2 import Qcow2Image

pytestmark = pytest.mark.e2e

FILE = "build/x.qcow2"


def ok(done) -> None:
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


def built(root: Path, content: str) -> bytes:
    """A 2 MiB (virtual) qcow2 at FILE under `root`; its bytes."""
    data = b"".join(Qcow2Image(2, content).iter_chunks())
    (root / "build").mkdir(exist_ok=True)
    (root / FILE).write_bytes(data)
    return data


def upload(sha256: str, **fields: object) -> dict[str, object]:
    return {
        "source": {"file": FILE, "sha256": sha256, "disk_format": "qcow2"},
        "properties": {"os_type": "linux"},
        **fields,
    }


def test_a_file_is_uploaded_then_copied_to_the_second_region(e2e):
    data = built(e2e.root, f"upload-{e2e.set_name}")
    sha256 = hashlib.sha256(data).hexdigest()
    e2e.write({"hardened": upload(sha256, copies=["JP1"])})
    ok(e2e.apply())

    homes, copies = e2e.managed("KR1"), e2e.managed("JP1")
    assert list(homes) == ["hardened"] and list(copies) == ["hardened"], (homes, copies)
    home, copy = homes["hardened"], copies["hardened"]
    assert home["id"] != copy["id"]
    for image in (home, copy):
        assert image["status"] == "active", image
        assert image["name"] == "hardened"
        assert image["reconciler_set"] == e2e.set_name and image["reconciler_key"] == "hardened"
        assert image["os_type"] == "linux"
        assert (image["disk_format"], image["container_format"]) == ("qcow2", "bare")
        assert image["size"] == len(data)
        assert image["checksum"] == hashlib.md5(data, usedforsecurity=False).hexdigest()
        assert (image["os_hash_algo"], image["os_hash_value"]) == ("sha512", hashlib.sha512(data).hexdigest())
    # The home records where its bytes came from; a copy records its home (and, like every copy, no source).
    assert home["reconciler_source"] == f"sha256:{sha256}" and "reconciler_copy_of" not in home
    assert copy["reconciler_copy_of"] == home["id"] and "reconciler_source" not in copy
    # Nothing else in either region: no temporary name (…~rc-…) is left behind.
    assert not [i for r in ("KR1", "JP1") for i in e2e.glance(r).owned().values() if "~rc-" in i["name"]]

    # Converged: the next plan has nothing to do, and does not upload again.
    again = e2e.run("plan", e2e.root, "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr


def test_a_wrong_digest_leaves_no_image_in_glance(e2e):
    data = built(e2e.root, f"wrong-{e2e.set_name}")
    wrong = hashlib.sha256(data + b"!").hexdigest()
    e2e.write({"hardened": upload(wrong, copies=["JP1"])})
    before = e2e.everything()
    failed = e2e.apply()
    assert failed.returncode == 1, failed.stdout + failed.stderr
    # The upload deleted its own image: the owner's images are exactly as before, in both regions.
    assert e2e.everything() == before
    assert e2e.managed("KR1") == {} and e2e.managed("JP1") == {}


def test_bytes_that_are_not_qcow2_are_refused_by_glance_and_leave_no_image(e2e):
    """Glance 33 inspects an upload's bytes: raw bytes declared qcow2 answer 415, and the tool deletes the
    image it made (the simulator answers the same; tests/test_upload_apply.py runs against it)."""
    data = b"raw bytes, not a qcow2 image\n" * 4096
    (e2e.root / "build").mkdir()
    (e2e.root / FILE).write_bytes(data)
    e2e.write({"hardened": upload(hashlib.sha256(data).hexdigest())})
    before = e2e.everything()
    failed = e2e.apply()
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "415" in failed.stdout + failed.stderr
    assert e2e.everything() == before
