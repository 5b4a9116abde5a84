"""Whatever YAML a manifest holds, loading and validating ends in located problems or a valid model:
never a traceback, never unbounded time (Hypothesis), with libyaml's parser and with PyYAML's own."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from yaml_parsers import yaml_parser  # noqa: F401  (a fixture)

from reconciler.desired import DesiredState
from reconciler.validate import InvalidRootError, load_desired_state

ROOT_CONFIG = textwrap.dedent(
    """\
    version: 1
    set: fuzz
    cloud: {kind: nhn, project: 3f0c9d2e6b7a4f0e9a1b2c3d4e5f6a7b}
    defaults: {region: KR1}
    """
)
FIELDS = ["name", "description", "region", "source", "moved_from", "protected", "min_disk", "min_ram", "download",
          "properties", "copies", "share", "instance", "image", "running", "takeover", "version", "images", "KR1",
          "JP1", "web", "8989447062e04a818baf9e073fd04fa7"]  # fmt: skip

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 2**40), st.floats(allow_nan=True), st.sampled_from(FIELDS),
    st.text(max_size=12),
)  # fmt: skip
keys = st.one_of(st.sampled_from(FIELDS), st.text(min_size=1, max_size=8))
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=5),
    max_leaves=30,
)
# Mostly manifest-shaped documents, so validation goes deep, plus anything at all.
documents = st.one_of(
    st.fixed_dictionaries(
        {"version": st.sampled_from([1, 2, "1"]), "images": st.dictionaries(keys, values, max_size=4)}
    ),
    values,
)
raw_texts = st.one_of(
    documents.map(lambda doc: yaml.safe_dump(doc, allow_unicode=True)),
    st.text(max_size=200),
    st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
)


def check(tmp_path: Path, text: str) -> None:
    (tmp_path / "reconciler.yaml").write_text(ROOT_CONFIG)
    (tmp_path / "m.yaml").write_text(text, encoding="utf-8", errors="surrogateescape")
    started = time.monotonic()
    try:
        state = load_desired_state(tmp_path)
    except InvalidRootError as err:
        assert err.problems, "an invalid root must say why"
        for problem in err.problems:
            assert problem.location.file in ("m.yaml", "reconciler.yaml") and problem.location.line >= 1
    else:
        assert isinstance(state, DesiredState)
    assert time.monotonic() - started < 5, "validation took too long"


@pytest.mark.usefixtures("yaml_parser")
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw_texts)
def test_any_document_ends_in_located_problems_or_a_model(tmp_path, text):
    check(tmp_path, text)
