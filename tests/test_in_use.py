"""The in-use guard end to end (issue 22): the CLI (`main([...])`, in-process) plans and applies golden
roots against their embedded simulator, and what happened is read back through the simulator's own API
(a fresh simulator on the root's state file, the project's token): whether the image is still there.
Users are gained and lost between two commands as anyone would: Nova `POST /servers` and `DELETE
/servers/{id}`, Cinder `POST /volumes`, over HTTP."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from support import CASES, CREDENTIAL_VARIABLES, OWNER, OWNER_USER, Api

from reconciler.cli import main
from reconciler.simulator.embedded import running_simulator

OLD = "00000000-0000-4000-8000-000000000012"  # web-base-old: undeclared in every in-use-* case
SERVER = "10000000-0000-4000-8000-000000000021"  # app-01, booted from OLD in in-use-by-server


@pytest.fixture(autouse=True)
def no_credentials(monkeypatch):
    for name in CREDENTIAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def copied(case: str, tmp_path: Path) -> Path:
    root = tmp_path / case
    shutil.copytree(CASES / case / "root", root, ignore=shutil.ignore_patterns(".reconciler"))
    return root


@contextmanager
def cloud(root: Path) -> Iterator[Api]:
    """The root's simulator (its state file, made from the seed if no command ran yet), as the owner sees it."""
    with running_simulator(root / ".reconciler" / "sim-state.json", seed_path=root / "seed.yaml") as server:
        yield Api(server, *OWNER_USER, OWNER)


def image_exists(root: Path, image_id: str = OLD, region: str = "KR1") -> bool:
    with cloud(root) as api:
        answer = api.image("GET", f"/v2/images/{image_id}", region)
    assert answer.status_code in (200, 404), answer.text
    return answer.status_code == 200


def through_the_api(root: Path, change: Callable[[Api], Any]) -> Any:
    with cloud(root) as api:
        return change(api)


def boot_from(api: Api, image_id: str, name: str = "booted-after-review") -> str:
    flavors = api.compute("GET", "/flavors/detail").json()["flavors"]
    flavor = next(f["id"] for f in flavors if f["name"] == "u2.c2m4")  # a local disk: image.id is the image
    answer = api.compute("POST", "/servers", json={"server": {"name": name, "flavorRef": flavor, "imageRef": image_id}})
    assert answer.status_code == 202, answer.text
    return answer.json()["server"]["id"]


def json_out(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    return json.loads(capsys.readouterr().out)


def test_plan_and_apply_refuse_to_delete_an_image_a_server_was_booted_from(tmp_path, capsys):
    root = copied("in-use-by-server", tmp_path)

    assert main(["plan", str(root), "--format", "json"]) == 3
    plan = json_out(capsys)
    assert plan["actions"] == [] and [r["code"] for r in plan["refusals"]] == ["image_in_use"]
    assert f"server app-01 ({SERVER})" in plan["refusals"][0]["message"]

    assert main(["apply", str(root), "--auto-approve", "--format", "json"]) == 3
    capsys.readouterr()
    assert image_exists(root)
    with cloud(root) as api:
        (server,) = api.compute("GET", "/servers/detail").json()["servers"]
    assert (server["id"], server["image"]["id"]) == (SERVER, OLD), "the server is untouched too"


def test_apply_refuses_to_delete_an_image_a_detached_volume_was_made_from(tmp_path, capsys):
    root = copied("in-use-by-detached-volume", tmp_path)
    with cloud(root) as api:
        (volume,) = api.volume("GET", "/volumes/detail").json()["volumes"]
    assert volume["status"] == "available" and volume["volume_image_metadata"]["image_id"] == OLD

    assert main(["apply", str(root), "--auto-approve"]) == 3
    capsys.readouterr()
    assert image_exists(root)


def test_with_allow_apply_deletes_the_image_and_leaves_the_server(tmp_path, capsys):
    root = copied("in-use-allow", tmp_path)

    assert main(["apply", str(root), "--auto-approve", "--format", "json"]) == 0
    report = json_out(capsys)
    assert [(r["id"], r["status"]) for r in report["results"]] == [("delete:web-base-old:KR1", "done")]
    assert not image_exists(root)
    with cloud(root) as api:
        assert [s["id"] for s in api.compute("GET", "/servers/detail").json()["servers"]] == [SERVER]


def test_a_server_booted_after_the_review_stops_the_saved_plan_and_its_deletion_lets_it_go(tmp_path, capsys):
    root = copied("in-use-nobody", tmp_path)
    plan_file = tmp_path / "plan.json"
    assert main(["plan", str(root), "--out", str(plan_file)]) == 0
    capsys.readouterr()
    assert [a["id"] for a in json.loads(plan_file.read_text())["actions"]] == ["delete:web-base-old:KR1"]

    booted = through_the_api(root, lambda api: boot_from(api, OLD))

    assert main(["apply", "--plan", str(plan_file), str(root), "--auto-approve", "--format", "json"]) == 3
    captured = capsys.readouterr()
    assert json.loads(captured.out)["outcome"] == "refused"
    assert "[image_in_use]" in captured.err and booted in captured.err, "the fresh plan's refusal names the server"
    assert image_exists(root)

    answer = through_the_api(root, lambda api: api.compute("DELETE", f"/servers/{booted}"))
    assert answer.status_code == 204, answer.text
    assert main(["plan", str(root), "--format", "json"]) == 0
    assert [(a["kind"], a["image_id"]) for a in json_out(capsys)["actions"]] == [("delete", OLD)]
    assert main(["apply", str(root), "--auto-approve"]) == 0
    capsys.readouterr()
    assert not image_exists(root)


def test_a_volume_made_after_the_plan_stops_a_fresh_apply(tmp_path, capsys):
    root = copied("in-use-nobody", tmp_path)
    assert main(["plan", str(root), "--format", "json"]) == 0
    assert [a["kind"] for a in json_out(capsys)["actions"]] == ["delete"]

    answer = through_the_api(
        root, lambda api: api.volume("POST", "/volumes", json={"volume": {"size": 10, "imageRef": OLD}})
    )
    assert answer.status_code == 202, answer.text

    assert main(["apply", str(root), "--auto-approve", "--format", "json"]) == 3
    captured = capsys.readouterr()
    assert json.loads(captured.out) | {"summary": None} == {
        "format_version": "1", "outcome": "refused", "results": [], "summary": None
    }  # fmt: skip
    assert f"volume {answer.json()['volume']['id']}" in captured.err
    assert image_exists(root)


# -- what the hostile review found ------------------------------------------------------------------------------

LEFTOVER_KR1 = "00000000-0000-4000-8000-0000000000a1"
LEFTOVER_JP1 = "00000000-0000-4000-8000-0000000000a2"
NEW = "00000000-0000-4000-8000-000000000011"


def leftovers_in_use_root(tmp_path: Path, setting: str) -> Path:
    """Two active leftovers of the set (temporary names no declared key explains), one in KR1 and one in JP1,
    each booted from by a server, and a deletion budget of one: the first plan keeps JP1's for the budget,
    so JP1's usage is read only once KR1's leftover is kept for being in use."""
    root = tmp_path / f"leftovers-{setting}"
    (root / "images").mkdir(parents=True)
    (root / "reconciler.yaml").write_text(
        "version: 1\nset: web-platform\ncloud: {kind: simulator, seed: seed.yaml}\ndefaults: {region: KR1}\n"
        f"settings: {{max_deletions: 1, delete_in_use: {setting}}}\n",
        encoding="utf-8",
    )
    (root / "images" / "web.yaml").write_text(
        f"version: 1\nimages:\n  web-base:\n    source: {{image: {NEW}}}\n", encoding="utf-8"
    )
    marks = f"os_type: linux, reconciler_set: web-platform, reconciler_key: web-base, reconciler_source: 'image:{NEW}'"
    (root / "seed.yaml").write_text(
        f"""regions: [KR1, JP1]
projects:
  - id: {OWNER}
    users: [{{username: {OWNER_USER[0]}, api_password: {OWNER_USER[1]}}}]
images:
  - {{id: {NEW}, project: {OWNER}, region: KR1, name: web-base, properties: {{{marks}}}}}
  - {{id: {LEFTOVER_KR1}, project: {OWNER}, region: KR1, name: "junk~rc-abb27d082a6bec51", properties: {{os_type: linux}}}}
  - {{id: {LEFTOVER_JP1}, project: {OWNER}, region: JP1, name: "junk~rc-abb27d08fa2086a0", properties: {{os_type: linux}}}}
servers:
  - {{project: {OWNER}, region: KR1, name: kr-app, flavor: u2.c2m4, os_type: linux, image: {LEFTOVER_KR1}}}
  - {{project: {OWNER}, region: JP1, name: jp-app, flavor: u2.c2m4, os_type: linux, image: {LEFTOVER_JP1}}}
""",
        encoding="utf-8",
    )
    return root


@pytest.mark.parametrize("setting", ["allow", "refuse"])
def test_a_leftover_kept_for_the_budget_is_still_checked_once_the_budget_frees(tmp_path, capsys, setting):
    root = leftovers_in_use_root(tmp_path, setting)
    code = main(["plan", str(root), "--format", "json"])
    plan = json.loads(capsys.readouterr().out)
    assert code == 0
    assert [a for a in plan["actions"] if a["kind"] == "delete"] == []
    kept = sorted(w["region"] for w in plan["warnings"] if w["code"] == "leftover_kept")
    assert kept == ["JP1", "KR1"], plan["warnings"]
    assert main(["apply", str(root), "--auto-approve"]) == 0
    capsys.readouterr()
    assert image_exists(root, LEFTOVER_KR1) and image_exists(root, LEFTOVER_JP1, "JP1")


def test_a_volume_rooted_servers_root_volume_names_its_server(tmp_path, capsys):
    root = copied("in-use-by-server", tmp_path)
    seed = root / "seed.yaml"
    text = seed.read_text(encoding="utf-8")
    # The same server, rooted on a volume made from the image: Nova shows image "", the volume carries it.
    assert "flavor: u2.c2m4" in text
    seed.write_text(
        text.replace("flavor: u2.c2m4", "flavor: m2.c4m8").replace(
            f"image: {OLD}", "image: ''\n    base_image: web-base-old"
        ),
        encoding="utf-8",
    )
    code = main(["plan", str(root), "--format", "json"])
    plan = json.loads(capsys.readouterr().out)
    assert code == 3
    (refusal,) = [r for r in plan["refusals"] if r["code"] == "image_in_use"]
    assert "attached to server app-01" in refusal["message"], refusal
