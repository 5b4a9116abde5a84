"""A root written to a folder for validation tests: reconciler.yaml and manifests from strings, and the
located problems that loading it reports. Shared by the validation tests of each kind of manifest entry."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.validate import InvalidRootError, load_desired_state


def write_root(folder: Path, config: str, files: dict[str, str]) -> Path:
    """`folder` as a root: `config` as reconciler.yaml, each of `files` (relative path -> text) beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "reconciler.yaml").write_text(config)
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return folder


def problems_loading(folder: Path) -> list[str]:
    """Every located problem loading the root at `folder` reports (it must be invalid)."""
    with pytest.raises(InvalidRootError) as caught:
        load_desired_state(folder)
    return [str(p) for p in caught.value.problems]
