"""Acceptance: a consumer root's `accept:` and `reject:` rules against the images other projects share with
this project (`snapshot.shared`, read only when the root has rules), and this project's member status on
each (docs/plan-format.md, "Accepting shared images").

An image wants `rejected` when any reject rule matches it, else `accepted` when any accept rule matches,
else it is left alone. A rule matches an image of its `owner` by `family` (the image's reconciler_family,
and reconciler_set when the rule names `set`), by `image` id, or by `name` (a glob over the whole name,
case-sensitive). A rule overrides a status set by hand. The actions have no key: `--target` and
`--exclude` never include them (a partial plan leaves this concern out).

`wanted_status` is also apply's execution-time guard for these actions (apply_guard.py): judged from the
root's rules and the image read just before the call, never from the plan.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from fnmatch import fnmatchcase

from reconciler import markers
from reconciler.cloud.records import Image
from reconciler.desired import ShareRule
from reconciler.live import UUID, SharedImage
from reconciler.plan import ActionId, Change, Reason, Ref
from reconciler.plan_kinds import MEMBER_STATUS

from .context import PlanContext, quoted

ACCEPTED, REJECTED, PENDING = "accepted", "rejected", "pending"
KIND_OF = {status: kind for kind, status in MEMBER_STATUS.items()}  # "accepted" -> "accept"
STATUS_CHANGE = "member_status"  # the `changes` entry of an accept or reject


def matches(rule: ShareRule, image: Image) -> bool:
    """Whether `rule` names `image`: its owner, and its family (and set), its id or its whole name."""
    if image.owner != rule.owner:
        return False
    props = image.properties
    if rule.family is not None:
        return props.get(markers.FAMILY) == rule.family and (rule.set is None or props.get(markers.SET) == rule.set)
    if rule.image is not None:
        return image.id.lower() == rule.image.lower()
    return rule.name is not None and image.name is not None and fnmatchcase(image.name, rule.name)


def matching(rules: Iterable[ShareRule], image: Image, wants: str) -> list[ShareRule]:
    return [rule for rule in rules if rule.wants == wants and matches(rule, image)]


def wanted_status(rules: Sequence[ShareRule], image: Image) -> str | None:
    """`rejected` if a reject rule matches, else `accepted` if an accept rule matches, else None (left alone)."""
    if matching(rules, image, REJECTED):
        return REJECTED
    return ACCEPTED if matching(rules, image, ACCEPTED) else None


def rule_source(rule: ShareRule) -> str:
    """Where a rule is written, `file:line`."""
    return f"{rule.location.file}:{rule.location.line}" if rule.location else rule.file


def _rule_words(rule: ShareRule) -> str:
    return f"{'reject' if rule.wants == REJECTED else 'accept'} rule at {rule_source(rule)}"


def _shared(ctx: PlanContext) -> list[SharedImage]:
    return [shared for region in ctx.snapshot.regions for shared in ctx.snapshot.shared.get(region, ())]


def plan_acceptance(ctx: PlanContext) -> None:
    """An accept or reject for each shared image whose status is not the one its rules want; a warning for
    an image both kinds of rule match, and for a rule that matches no shared image."""
    rules = ctx.desired.rules
    if not rules or ctx.scope.partial:
        return
    used: set[ShareRule] = set()
    for shared in _shared(ctx):
        accepts = matching(rules, shared.image, ACCEPTED)
        rejects = matching(rules, shared.image, REJECTED)
        used.update(accepts + rejects)
        if accepts and rejects:
            _warn_overlap(ctx, shared.image, accepts[0], rejects[0])
        winner = (rejects or accepts or [None])[0]
        if winner is not None and shared.status != winner.wants:
            _plan_status(ctx, shared, winner)
    for rule in rules:
        if rule not in used:
            ctx.warn(
                "rule_matched_nothing",
                None,
                None,
                f"the {_rule_words(rule)} matches no image project {rule.owner} shares with this project (it may "
                "not have shared it yet): nothing is planned for it",
                rule_source(rule),
            )


def _described(image: Image) -> str:
    name = quoted(image.name) if image.name is not None else "(no name)"
    return f"image {name} ({image.id}) of project {image.owner}"


def _warn_overlap(ctx: PlanContext, image: Image, accept: ShareRule, reject: ShareRule) -> None:
    ctx.warn(
        "rule_overlap",
        None,
        image.region,
        f"{_described(image)} matches the {_rule_words(accept)} and the {_rule_words(reject)}: reject wins",
        rule_source(reject),
    )


def _plan_status(ctx: PlanContext, shared: SharedImage, rule: ShareRule) -> None:
    """One member-status PUT, with this project's own token. An image id that is not a UUID (Glance's ids
    are) is never acted on: the action's id and the call's path are made of it."""
    image = shared.image
    if not UUID.fullmatch(image.id):
        ctx.warn(
            "invalid_shared_image",
            None,
            image.region,
            f"{_described(image)} has an id that is not a UUID: its member status is left alone",
            rule_source(rule),
        )
        return
    kind = KIND_OF[rule.wants]
    # The rule's line is the reason's source.
    said = f"{'an accept' if kind == 'accept' else 'a reject'} rule matches {_described(image)}"
    if shared.status == PENDING:
        reason = Reason(f"{kind}_rule", f"{said}: {PENDING} -> {rule.wants}", rule_source(rule))
    else:
        words = f"{said}: its status {quoted(shared.status)} was set by hand, and the rule overrides it"
        reason = Reason("status_overridden", words, rule_source(rule))
    step = ctx.graph.add(kind, "", image.region, reason, image.id, phase=image.id, owner=image.owner, name=image.name)
    assert step.id == str(ActionId.of_image(kind, image.id, image.region))
    step.changes[STATUS_CHANGE] = Change(shared.status, rule.wants)
    step.expects[str(Ref.image(image.region, image.id))] = {"owner": image.owner}


def accepted_unnamed(ctx: PlanContext) -> int:
    """The shared images this project has accepted that no rule names (left alone, counted for the reader)."""
    return sum(
        1
        for shared in _shared(ctx)
        if shared.status == ACCEPTED and wanted_status(ctx.desired.rules, shared.image) is None
    )
