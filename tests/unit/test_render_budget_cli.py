"""Issue 19's case through the command: `reconciler plan --format markdown --max-chars 3000` on a root whose
450 images are made from 450 running instances (900 warnings) wrote 131,514 characters. The embedded
simulator serves the root; a few seconds."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.cli import main

PROJECT = "3f0c9d2e6b7a4f0e9a1b2c3d4e5f6a7b"
IMAGES = 450
CREDENTIAL_VARIABLES = ("NHN_CLOUD_USERNAME", "NHN_CLOUD_API_PASSWORD", "OS_USERNAME", "OS_PASSWORD")


def server(number: int) -> str:
    return (
        f"  - {{id: 00000000-0000-4000-8000-{number:012d}, project: {PROJECT}, region: KR1, "
        f"name: web-golden-{number:03d}, flavor: m2.c4m8, status: ACTIVE, os_type: linux, os_distro: ubuntu, "
        'os_version: "22.04", base_image: "Ubuntu Server 22.04 LTS (2024.01.16)"}'
    )


def image(number: int) -> str:
    return f"  web-{number:03d}:\n    source:\n      instance: web-golden-{number:03d}"


@pytest.fixture
def big_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in CREDENTIAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    root = tmp_path / "root"
    (root / "images").mkdir(parents=True)
    (root / "reconciler.yaml").write_text(
        "version: 1\nset: web-platform\ncloud: {kind: simulator, seed: seed.yaml}\ndefaults: {region: KR1}\n",
        encoding="utf-8",
    )
    servers = "\n".join(server(n) for n in range(1, IMAGES + 1))
    (root / "seed.yaml").write_text(
        f"regions: [KR1]\nprojects:\n  - id: {PROJECT}\n"
        f"    users: [{{username: dev@example.com, api_password: local-only}}]\nservers:\n{servers}\n",
        encoding="utf-8",
    )
    images = "\n".join(image(n) for n in range(1, IMAGES + 1))
    (root / "images" / "web.yaml").write_text(f"version: 1\nimages:\n{images}\n", encoding="utf-8")
    return root


def test_plan_max_chars_bounds_the_whole_comment(big_root: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["plan", str(big_root), "--format", "markdown", "--max-chars", "3000", "--no-color"]) == 0
    markdown = capsys.readouterr().out
    assert len(markdown) <= 0.95 * 3_000  # 5% is left for the CI recipe's wrapper
    assert "**Safe to apply**: 450 actions" in markdown
    assert "| KR1 | 450 |" in markdown
    assert "- 900 warnings: 450 linux_machine_id, 450 running_instance" in markdown
    assert "- `+ create` `web-001` KR1" in markdown and "<details>" not in markdown
    assert "_Left out to stay under 2,850 characters (95% of --max-chars 3,000;" in markdown
    assert "`reconciler plan --format text` show everything._" in markdown
    assert markdown.endswith("Plan: 450 to create (450 actions). 900 warnings.\n\nNothing was changed.\n")
