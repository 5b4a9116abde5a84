"""Fixtures of the end-to-end tier (marker `e2e`): the installed `reconciler` CLI, run as a subprocess
against two real Glance servers (regions KR1 and JP1) behind an identity front (front.py).

`.ci/glance.sh start` starts the servers; RECONCILER_GLANCE_URL and RECONCILER_GLANCE_URL_2 name them.
Without both, every test here is skipped. Each test acts as fresh random projects (the Glance databases
live for the whole run), so tests never see each other's images.

Fixtures: `glance_urls` (region -> URL), `front` (the IdentityFront, one per session), `e2e` (an E2E:
one test's projects, root, runner and bystander images; see its docstring).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from front import IdentityFront
from glance_api import LOCK_NAME_PREFIX, Glance

REGIONS = ("KR1", "JP1")
URL_VARIABLES = {"KR1": "RECONCILER_GLANCE_URL", "JP1": "RECONCILER_GLANCE_URL_2"}
CLI_TIMEOUT_S = 180


@pytest.fixture(scope="session")
def glance_urls() -> dict[str, str]:
    urls = {region: os.environ.get(name, "") for region, name in URL_VARIABLES.items()}
    missing = [URL_VARIABLES[r] for r, url in urls.items() if not url]
    if missing:
        pytest.skip(f"no real Glance servers: set {' and '.join(missing)} (.ci/glance.sh start starts both)")
    return urls


@pytest.fixture(scope="session")
def front(glance_urls: dict[str, str]) -> Iterator[IdentityFront]:
    server = IdentityFront(glance=dict(glance_urls)).start()
    yield server
    server.stop()


class E2E:
    """One test's world: three fresh projects with a user each (`owner`, `partner`, `outsider`), a root
    folder of set `set_name` for the owner (`write` its manifests), and bystanders: unmanaged images of
    the owner's in both regions, one protected, one shared with the partner, one of another set.

    - `glance(region, project=None)`: a Glance client straight to the server (trusted headers), as the
      owner unless another project is named: set images up, change them behind the tool's back, check;
    - `run(*args)`: the installed `reconciler` with the owner's NHN_CLOUD_* environment; a
      CompletedProcess (text). After each run, `assert_bystanders_untouched()`, and no lock claim is left;
    - `apply(*extra)`: `run("apply", root, "--auto-approve", *extra)`; `popen(*args)` starts one;
    - `reads_as(project, region, image_id)`: whether that project, through the front with its own token,
      can read the image;
    - `managed(region)`: this set's images in the region (Glance's view), by `reconciler_key`;
    - `claims()`: the apply lock's claims that exist now, as (region, image);
    - `everything()`: every image of the owner in both regions, with its members (before/after checks).
    """

    def __init__(self, front: IdentityFront, urls: dict[str, str], tmp_path: Path) -> None:
        self.front = front
        self.urls = urls
        self.owner, self.partner, self.outsider = (uuid.uuid4().hex for _ in range(3))
        self.credentials: dict[str, tuple[str, str]] = {}
        for role, project in (("owner", self.owner), ("partner", self.partner), ("outsider", self.outsider)):
            username, password = f"{role}-{project[:8]}@example.com", uuid.uuid4().hex
            front.add_user(username, password, project)
            self.credentials[project] = (username, password)
        self.set_name = f"e2e-{uuid.uuid4().hex[:8]}"
        self.root = tmp_path / "root"
        self.root.mkdir()
        self.write({})
        self.bystanders = self._make_bystanders()
        self._bystander_view = self._bystander_state()

    # -- clients --------------------------------------------------------------------------------------

    def glance(self, region: str, project: str | None = None) -> Glance:
        return Glance(self.urls[region], project or self.owner)

    def reads_as(self, project: str, region: str, image_id: str) -> bool:
        import requests

        token = self.front.token_for(*self.credentials[project], project)
        answer = requests.get(
            f"{self.front.image_endpoint(region)}/v2/images/{image_id}",
            headers={"X-Auth-Token": token, "Accept": "application/json"},
            timeout=30,
        )
        assert answer.status_code in (200, 404), (answer.status_code, answer.text[:300])
        return answer.status_code == 200 and answer.json()["id"] == image_id

    def managed(self, region: str) -> dict[str, dict[str, Any]]:
        return {
            image["reconciler_key"]: image
            for image in self.glance(region).owned().values()
            if image.get("reconciler_set") == self.set_name
        }

    def claims(self) -> list[tuple[str, dict[str, Any]]]:
        """The apply lock's claims (images named reconciler-lock-<set>) that exist now, with their region."""
        name = f"{LOCK_NAME_PREFIX}{self.set_name}"
        return [(region, image) for region in REGIONS for image in self.glance(region).images(name=name)]

    def everything(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Every image the owner has in each region (without lock claims), and the members of each."""
        view: dict[str, dict[str, Any]] = {}
        for region in REGIONS:
            glance = self.glance(region)
            for image_id, image in glance.owned().items():
                members = glance.members(image_id) if image["visibility"] == "shared" else {}
                view[f"{region}/{image_id}"] = {**image, "members": members}
        return view

    # -- the root -------------------------------------------------------------------------------------

    def write(self, images: dict[str, Any], *, cloud: dict[str, Any] | None = None, **settings: Any) -> None:
        """reconciler.yaml (with `settings`, and `cloud` options such as protected_patch, if any) and
        images/images.yaml declaring `images`."""
        config: dict[str, Any] = {
            "version": 1,
            "set": self.set_name,
            "cloud": {"kind": "nhn", "project": self.owner, "regions": list(REGIONS), **(cloud or {})},
            "defaults": {"region": REGIONS[0]},
        }
        if settings:
            config["settings"] = settings
        (self.root / "reconciler.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        shutil.rmtree(self.root / "images", ignore_errors=True)
        if images:
            (self.root / "images").mkdir()
            manifest = {"version": 1, "images": images}
            (self.root / "images" / "images.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False), "utf-8")

    # -- the CLI --------------------------------------------------------------------------------------

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("NHN_CLOUD_", "OS_", "RECONCILER_"))}
        username, password = self.credentials[self.owner]
        env.update(
            NHN_CLOUD_USERNAME=username,
            NHN_CLOUD_API_PASSWORD=password,
            NHN_CLOUD_TENANT_ID=self.owner,
            NHN_CLOUD_IDENTITY_URL=self.front.identity_url,
            NO_PROXY="127.0.0.1,localhost",
            no_proxy="127.0.0.1,localhost",
            NO_COLOR="1",
        )
        return env

    def command(self, *args: Any) -> list[str]:
        executable = shutil.which("reconciler")
        assert executable, "the reconciler CLI is not installed (pip install -e '.[test]')"
        return [executable, *(str(a) for a in args)]

    def run(self, *args: Any) -> subprocess.CompletedProcess[str]:
        started = time.monotonic()
        done = subprocess.run(
            self.command(*args), env=self.env, capture_output=True, text=True, timeout=CLI_TIMEOUT_S, check=False
        )
        if os.environ.get("RECONCILER_E2E_ECHO") == "1":  # a debugging aid: every run's command, time and output
            print(
                f"\n$ reconciler {' '.join(map(str, args))}  # exit {done.returncode}, {time.monotonic() - started:.2f} s"
            )
            print(done.stdout + done.stderr)
        when = f"after `reconciler {' '.join(map(str, args))}` (exit {done.returncode})"
        self.assert_bystanders_untouched(when)
        # A finished run never leaves a lock claim behind: it would block the set's next apply.
        assert self.claims() == [], f"a lock claim is left {when}: {self.claims()}\n{done.stderr[-2000:]}"
        return done

    def apply(self, *extra: Any) -> subprocess.CompletedProcess[str]:
        return self.run("apply", self.root, "--auto-approve", *extra)

    def popen(self, *args: Any) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.command(*args), env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    # -- bystanders -----------------------------------------------------------------------------------

    def _make_bystanders(self) -> list[tuple[str, str]]:
        kr1, jp1 = self.glance("KR1"), self.glance("JP1")
        other_set = {"reconciler_set": "another-set", "reconciler_key": "legacy-app", "reconciler_source": "image:x"}
        made = [
            ("KR1", kr1.create("bystander-plain", os_type="linux")["id"]),
            ("KR1", kr1.create("bystander-protected", os_type="linux", protected=True)["id"]),
            ("KR1", kr1.create("bystander-other-set", os_type="linux", **other_set)["id"]),
            ("JP1", jp1.create("bystander-jp1", os_type="linux")["id"]),
        ]
        shared = kr1.create("bystander-shared", os_type="linux")["id"]
        kr1.share(shared, self.partner)
        return [*made, ("KR1", shared)]

    def _bystander_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {}
        for region, image_id in self.bystanders:
            glance = self.glance(region)
            image = glance.get(image_id)
            state[image_id] = image
            if image is not None and image["visibility"] == "shared":
                state[f"{image_id}/members"] = glance.members(image_id)
        return state

    def assert_bystanders_untouched(self, when: str = "") -> None:
        now = self._bystander_state()
        changed = [key for key in self._bystander_view if now.get(key) != self._bystander_view[key]]
        assert not changed, f"unmanaged images changed {when}: " + "; ".join(
            f"{key}: {self._bystander_view[key]} -> {now.get(key)}" for key in changed
        )


@pytest.fixture
def e2e(front: IdentityFront, glance_urls: dict[str, str], tmp_path: Path) -> E2E:
    return E2E(front, glance_urls, tmp_path)
