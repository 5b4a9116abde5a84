"""Text the CLI did not write itself, in the lines the CLI prints (issue 17): an image name, a lock
claim's holder or a server's message may hold an ESC sequence (which clears or rewrites the terminal) or a
line break (which prints a fake plan line). Every such line shows them as escapes: `error:`/`hint:`, apply's
progress and failure lines, unlock's and import's output.

Anyone in the project can name an image or write a claim's properties in the console: the seed below
does what they could do. The plan itself is the renderers' (tests/test_hostile_input.py and the golden
cases); here only the lines cli.py prints are read."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from reconciler.cli import main
from reconciler.cloud.errors import BadRequest
from reconciler.cloud.nhn import NhnCloudClient
from reconciler.commands import output

CASES = Path(__file__).resolve().parent / "cases"
HOSTILE = "\x1b[2J\n  - delete x"
SHOWN = "\\x1b[2J\\x0a  - delete x"
CLAIM_ID = "00000000-0000-4000-8000-0000000000c1"
UNMANAGED_ID = "00000000-0000-4000-8000-0000000000d1"


def seeded_root(tmp_path: Path, *, claim: bool) -> Path:
    """rename-in-place, with its image named `web<HOSTILE>`, an unmanaged image named likewise, and
    (with `claim`) a live apply-lock claim whose holder is hostile."""
    root = tmp_path / "root"
    shutil.copytree(CASES / "rename-in-place" / "root", root)
    seed = yaml.safe_load((root / "seed.yaml").read_text())
    home = seed["images"][0]
    home["name"] = f"web{HOSTILE}"
    extra = [{"id": UNMANAGED_ID, "name": f"legacy{HOSTILE}", "properties": {}}]
    if claim:
        extra.append(
            {
                "id": CLAIM_ID,
                "name": "reconciler-lock-web-platform",
                "properties": {
                    "reconciler_lock_claim": "web-platform",
                    "reconciler_lock_holder": f"evil{HOSTILE}",
                    "reconciler_lock_state": "held",
                    "reconciler_lock_lease_s": "900",
                },
            }
        )
    for image in extra:
        seed["images"].append({"project": home["project"], "region": "KR1", "size_mb": 1, "content": "x", **image})
    (root / "seed.yaml").write_text(yaml.safe_dump(seed))
    return root


@pytest.fixture(autouse=True)
def no_credentials_from_the_environment(monkeypatch):
    for name in ("NHN_CLOUD_USERNAME", "NHN_CLOUD_API_PASSWORD", "OS_USERNAME", "OS_PASSWORD", "NO_COLOR"):
        monkeypatch.delenv(name, raising=False)


def assert_shown_not_obeyed(text: str) -> None:
    assert "\x1b" not in text, text
    assert not any(line.startswith("  - delete x") for line in text.splitlines()), text


def test_an_apply_turned_away_by_a_hostile_claim_escapes_the_error_line(tmp_path, capsys):
    root = seeded_root(tmp_path, claim=True)
    assert main(["apply", str(root), "--auto-approve"]) == 1
    err = capsys.readouterr().err
    assert_shown_not_obeyed(err)
    assert f"error: another apply of set web-platform has the lock: claim {CLAIM_ID} of holder evil{SHOWN}" in err


def test_unlock_shows_a_hostile_holder_escaped(tmp_path, capsys):
    root = seeded_root(tmp_path, claim=True)
    assert main(["unlock", str(root), "--claim", CLAIM_ID, "--auto-approve"]) == 0
    out = capsys.readouterr().out
    assert_shown_not_obeyed(out)
    assert f"claim {CLAIM_ID} of holder evil{SHOWN} (held" in out
    assert f"Deleted the claim {CLAIM_ID}." in out


def test_import_notes_show_a_hostile_name_escaped(tmp_path, capsys):
    root = seeded_root(tmp_path, claim=False)
    assert main(["import", str(root), "--region", "KR1"]) == 0
    err = capsys.readouterr().err
    assert_shown_not_obeyed(err)
    assert f"  left out legacy{SHOWN} ({UNMANAGED_ID}): no os_type" in err


def test_apply_progress_and_failure_lines_escape_a_servers_message(tmp_path, capsys, monkeypatch):
    """The rename of the hostile image fails, and the server's message quotes the name (as Glance quotes a
    value it refuses)."""

    def refuse(self, region, image_id, ops):
        raise BadRequest(400, f"name web{HOSTILE} is locked", service="image", method="PATCH", path="/v2/images")

    monkeypatch.setattr(NhnCloudClient, "update_image", refuse)
    root = seeded_root(tmp_path, claim=False)
    assert main(["apply", str(root), "--auto-approve"]) == 1
    captured = capsys.readouterr()
    # The whole output: the plan shown first (the renderer's) and apply's own lines after it.
    assert_shown_not_obeyed(captured.out)
    assert_shown_not_obeyed(captured.err)
    assert f"  failed  update web-base KR1: image PATCH /v2/images: 400 name web{SHOWN} is locked" in captured.out
    assert f"  failed: update:web-base:KR1: image PATCH /v2/images: 400 name web{SHOWN} is locked" in captured.out


def test_progress_lines_escape_notes_skips_and_copy_routes():
    stream = io.StringIO()
    show = output.progress_printer(stream)
    copy = SimpleNamespace(
        id="copy:web:JP1", kind="copy", key="web", region="JP1", details={"source_region": f"KR1{HOSTILE}"}
    )
    show("end", copy, SimpleNamespace(status="done", seconds=1.0, message=f"refused properties: p{HOSTILE}"))
    show("skip", copy, SimpleNamespace(status="skipped", message=f"after {HOSTILE}"))
    show("progress", copy, SimpleNamespace(copied=10, total=10, rate=1.0, eta=None))
    text = stream.getvalue()
    assert_shown_not_obeyed(text)
    assert f"; refused properties: p{SHOWN}" in text and f"skipped copy web JP1: after {SHOWN}" in text
    assert f"copying web KR1{SHOWN} -> JP1:" in text


def test_log_lines_show_what_they_quote_escaped():
    """Warnings print without -v and quote servers' text and property names (a copy's refused property, a
    lock claim's holder): the line is escaped, a traceback after it keeps its lines."""
    code = (
        "import logging; from reconciler import cli; cli._configure_logging(0)\n"
        "logging.getLogger('reconciler.x').warning('refused property %s', 'p\\x1b[2J\\n  - delete x')\n"
        "try:\n    raise ValueError('boom')\nexcept ValueError:\n    logging.getLogger('reconciler.x').exception('failed')\n"
    )
    err = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stderr
    assert "WARNING reconciler.x: refused property p\\x1b[2J\\x0a  - delete x\n" in err
    assert "\x1b" not in err and "Traceback (most recent call last):\n" in err
