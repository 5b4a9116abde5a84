"""One vocabulary of action kinds (reconciler/plan_kinds.py): the plan schema's kind enum names exactly its
kinds, in its order; every kind has every fact; and the modules that act on kinds (apply's executors, the
renderers) cover each kind from the table rather than from a list of their own. Action ids and `expects`
references each have one parser, which reads back what it writes."""

from __future__ import annotations

import json
import re
from dataclasses import fields
from pathlib import Path

import pytest

from reconciler import plan_kinds
from reconciler.plan import ActionId, Ref
from reconciler.plan_kinds import ACTION_KINDS, IMAGE, KINDS, RANK, RISKY_KINDS, SERVER

SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "plan.schema.json"
CASES = Path(__file__).resolve().parents[1] / "cases"
OPTIONAL = {"makes", "removes", "risk"}  # a kind may make, or take away, nothing


def schema_kinds() -> list[str]:
    return json.loads(SCHEMA.read_text(encoding="utf-8"))["$defs"]["kind"]["enum"]


def test_the_vocabulary_is_the_schemas_kind_enum_in_its_order():
    assert list(KINDS) == schema_kinds()
    assert ACTION_KINDS == tuple(schema_kinds())


@pytest.mark.parametrize("name", schema_kinds())
def test_every_kind_has_every_fact(name):
    kind = KINDS[name]
    assert kind.name == name
    for fact in fields(kind):
        if fact.name not in OPTIONAL:
            assert getattr(kind, fact.name) not in (None, ""), f"{name}: no {fact.name}"
    assert kind.symbol in ("+", "~", "-")
    assert kind.subject in (IMAGE, SERVER)
    assert isinstance(kind.rank, int) and 0 <= kind.rank
    # Risk is what a reviewer weighs: exactly the kinds that take something away, with both words.
    assert (kind.risk is not None) == (kind.removes is not None), name
    if kind.risk is not None:
        assert kind.risk.noun and kind.risk.verb
    assert kind.symbol != "-" or kind.removes, f"{name} is shown as taking away but removes nothing"


def test_the_risky_kinds_are_the_ones_the_markdown_verdict_counts():
    assert RISKY_KINDS == ("delete", "unshare", "unprotect", "stop_instance")
    assert set(RISKY_KINDS) == {name for name, kind in KINDS.items() if kind.risk}


def test_rank_makes_before_it_breaks():
    # An instance stops before it is imaged; images are made before anything reads them; what takes away runs last.
    assert RANK["stop_instance"] < RANK["create"] == RANK["adopt"] < RANK["copy"] < RANK["share"]
    assert RANK["start_instance"] < RANK["unshare"] < RANK["delete"] == max(RANK.values())


def test_the_kinds_table_is_read_only():
    with pytest.raises(TypeError):
        plan_kinds.KINDS["create"] = KINDS["delete"]  # type: ignore[index]


def test_apply_has_one_executor_per_kind():
    from reconciler.apply import EXECUTORS

    assert set(EXECUTORS) == set(KINDS)


def test_the_renderers_read_symbols_and_words_from_the_vocabulary():
    """No renderer keeps its own table of kinds: adding a kind to the vocabulary is enough for them."""
    from reconciler.render import markdown, text

    for module in (text, markdown):
        for own in ("SYMBOLS", "SUMMARY_WORDS", "RISKY_WORDS"):
            assert not hasattr(module, own), f"{module.__name__} keeps its own {own}"


# -- ids and references ---------------------------------------------------------------------------


def golden_documents() -> list[dict]:
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(CASES.glob("*/plan.json"))]


def test_an_action_id_reads_as_kind_key_region_and_phase():
    assert ActionId.parse("update:web:KR1:release") == ActionId("update", "web", "KR1", "release")
    assert ActionId.parse("create:web:KR1") == ActionId("create", "web", "KR1", None)
    leftover = ActionId.parse("delete:~rc-abb27d0858870cb0:KR1:abcdef12-0000-4000-8000-000000000000")
    assert (leftover.key, leftover.phase) == ("~rc-abb27d0858870cb0", "abcdef12-0000-4000-8000-000000000000")
    # The phase is everything after the third colon.
    assert ActionId.parse("update:web:KR1:a:b").phase == "a:b"
    for bad in ("", "create", "create:web"):
        with pytest.raises(ValueError):
            ActionId.parse(bad)


def test_an_expects_reference_reads_as_an_image_a_made_image_or_a_server():
    assert Ref.parse("KR1/00000000-0000-4000-8000-000000000011") == Ref.image(
        "KR1", "00000000-0000-4000-8000-000000000011"
    )
    assert Ref.parse("KR1/<create:web:KR1>") == Ref.made("KR1", "create:web:KR1")
    assert Ref.parse("KR1/server/abc") == Ref.server("KR1", "abc")
    for bad in ("", "KR1", "KR1/", "/abc"):
        with pytest.raises(ValueError):
            Ref.parse(bad)


def test_every_golden_id_and_reference_reads_back_as_written():
    ids = refs = 0
    for document in golden_documents():
        for action in document["actions"]:
            parsed = ActionId.parse(action["id"])
            assert str(parsed) == action["id"]
            assert (parsed.kind, parsed.key, parsed.region) == (action["kind"], action["key"], action["region"])
            for dependency in action["depends_on"]:
                assert str(ActionId.parse(dependency["id"])) == dependency["id"]
            for ref in action["expects"]:
                assert str(Ref.parse(ref)) == ref
                refs += 1
            ids += 1
    assert ids > 100 and refs > 50, "the golden cases hold ids and references to read"


# Ways ids and references were read by hand before ActionId.parse and Ref.parse: none may come back.
AD_HOC_PARSING = (
    re.compile(r"""\.partition\(\s*["']/server/["']"""),  # an expects key's server
    re.compile(r"""["']/server/["']\s+in\b"""),
    re.compile(r"""["']/<["']\s+in\b"""),  # an expects key naming an image the plan makes
    re.compile(r"""\.(?:r?split|partition)\(\s*["']:["'](?:\s*,\s*3)?\s*\)(?:\[3\])?"""),  # an id's parts
    re.compile(r"""\.count\(\s*["']:["']\s*\)\s*>=\s*3"""),  # an id's phase
    re.compile(r"""\.endswith\(\s*["']:[a-z-]+["']\s*\)"""),  # an id's phase, by its end
)
# The one parser of each; and colons that are not in an action id (a Glance list filter, "in:a,b").
NOT_IDS = {"reconciler/plan.py", "reconciler/simulator/images.py"}


def test_no_module_reads_an_id_or_a_reference_by_hand():
    package = Path(__file__).resolve().parents[2] / "reconciler"
    found = []
    for path in sorted(package.rglob("*.py")):
        if str(path.relative_to(package.parent)) in NOT_IDS:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if any(pattern.search(line) for pattern in AD_HOC_PARSING):
                found.append(f"{path.relative_to(package.parent)}:{number}: {line.strip()}")
    assert not found, "use ActionId.parse / Ref.parse (reconciler/plan.py):\n" + "\n".join(found)
