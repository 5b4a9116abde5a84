"""Both parsers behind reconciler.yaml_source as one fixture: a test that uses `yaml_parser` runs once with
libyaml's (C, when PyYAML was built with it) and once with PyYAML's own (pure Python, the fallback)."""

from __future__ import annotations

import pytest
import yaml

PARSERS = ("libyaml", "pure")


@pytest.fixture(params=PARSERS)
def yaml_parser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The parser this run of the test uses; "pure" hides libyaml as a PyYAML built without it does."""
    if request.param == "libyaml" and not yaml.__with_libyaml__:
        pytest.skip("PyYAML was built without libyaml")
    monkeypatch.setattr(yaml, "__with_libyaml__", request.param == "libyaml")
    return request.param
