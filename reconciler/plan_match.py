"""Does the fresh plan F still say what the reviewed, saved plan S said? Pure: no I/O.

`apply --plan FILE` never carries a saved plan out: a saved plan is a file a pull request can edit. It
computes a fresh plan F from the root at hand and the live cloud, and runs F only if F matches S
(docs/safety.md, "Saved plans"). Both are normalised first, then compared action by action:

(a) where S creates or copies (key, region), a reference in F to the live image that an earlier, partial
    run made for that (key, region) (this set's markers, or its temporary-name token) equals S's
    placeholder for the image that action makes;
(b) F's `adopt` of an interrupted create matches S's `create` of the same (key, region): only what the
    two set (`changes.after`) is compared;
(c) F's `protect` matches S's bracket-closing `protect` of the same (key, region) when S's opening
    `unprotect` is no longer in F (it ran);
(d) from `depends_on` and `compensates`, the ids of housekeeping actions and of S actions absent from F
    are dropped;
(e) with `--resume`, F's action may lack some of the `changes` of the S action of the same id: the
    interrupted run made them (a share whose visibility changed before adding the member failed). Every
    change F still has must be S's, before and after: F does a part of what was reviewed, never more;
(f) an S retirement (a `delete` naming the `family` it retires) that F does not plan while its image is
    still live was deferred by F (the image is in use now): matched, and reported as deferred. An F
    retirement that S deferred (S warned `retirement_deferred` for its key and region) is not run and is
    not a difference: it is left for the next plan (`Match.left`), which a new review sees. Any other F
    retirement S lacks is a difference: a delete nobody reviewed never runs;
(g) F's `accept` or `reject` (a consumer's own member status on an image another project shares) that S
    lacks is not run and is not a difference: the owner may have shared in between, and the next plan,
    which a new review sees, holds it (`Match.acceptances_left`).

Compared: kind, key, region, the id's phase, the image reference, `changes`, `expects` (references
normalised by (a)), `depends_on` as a set, `compensates`, and every other field except the display-only
ones (DISPLAY_ONLY) and `reason` (words for humans). Housekeeping actions (HOUSEKEEPING: finishing what
an interrupted run of this set left) may be in F without being in S. With `--plan`, every other F action
must match an S action and every S action must be matched; with `--resume`, only the first condition
applies, and S actions absent from F are reported as already done.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reconciler import markers
from reconciler.cloud.records import Image
from reconciler.plan import Action, ActionId, Ref
from reconciler.plan_codec import action_to_json
from reconciler.plan_kinds import KINDS, MEMBER_STATUS

# Fields that describe an action for a reader and never change what it does. An upload's `bytes`, `artifact`
# (where its file was found) and `artifact_note` are among them: a plan made before the artifact was built
# (size unknown, source_not_built) matches the plan made after; its `file`, `url`, `disk_format` and the
# digest it records (changes) are compared, so an edited saved plan never runs.
DISPLAY_ONLY = frozenset({"bytes", "server_name", "downtime", "flavor", "artifact", "artifact_note"})
NOT_COMPARED = DISPLAY_ONLY | {"reason"}


@dataclass(frozen=True, slots=True)
class Difference:
    """One way F and S disagree, in words: `saved` and `now` say what each plan has."""

    action_id: str
    saved: str
    now: str

    def line(self) -> str:
        return f"{self.action_id}: saved: {self.saved}; now: {self.now}"

    def to_json(self) -> dict[str, str]:
        return {"id": self.action_id, "saved": self.saved, "now": self.now}


@dataclass(frozen=True, slots=True)
class Match:
    """The outcome: `differences` empty means F may run. `housekeeping`: F's extra actions allowed
    without S; `already_done`: S actions F no longer needs (only with resume)."""

    differences: tuple[Difference, ...]
    housekeeping: tuple[str, ...] = ()
    already_done: tuple[str, ...] = ()
    matched: Mapping[str, str] = field(default_factory=dict)  # F action id -> S action id
    deferred: tuple[str, ...] = ()  # S retirements F defers (rule (f)): not run, not a difference
    left: tuple[str, ...] = ()  # F retirements S deferred (rule (f)): not run, left for the next plan
    # F accepts and rejects S lacks (rule (g)): not run, left for the next plan.
    acceptances_left: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.differences


def is_housekeeping(action: Action, saved_keys_made: set[tuple[str, str]]) -> bool:
    """The closed list of what F may add: the restart of an instance this set left stopped; the restore of
    a download flag this set left enabled; replacing an incomplete copy that S copies (its delete); deleting
    a leftover of this set's interrupted creates (reason `leftover`, key `~rc-<S><K>`) that is not `active`,
    as its `expects` says (an active leftover holds data someone may want: S must list its delete)."""
    code = action.reason.code
    if action.kind == "start_instance" and code == "left_stopped":
        return True
    if action.kind == "update" and ActionId.parse(action.id).phase == "download-restore":
        return True
    if action.kind == "delete" and code == "incomplete_copy":
        return (action.key, action.region) in saved_keys_made
    if action.kind == "delete" and code == "leftover" and action.key.startswith(markers.TOKEN_SEPARATOR):
        expected = action.expects.get(_image_ref(action), {})
        return "status" in expected and expected["status"] != "active"
    return False


def placeholders(saved: Sequence[Mapping[str, Any]], images: Iterable[Image], set_name: str) -> dict[str, str]:
    """Rule (a): `region/<live id>` -> `region/<S action id>` for each live image that S's create or copy
    of (key, region) would have made (this set's markers for that identity, or its temporary-name token)."""
    made: dict[tuple[str, str, bool], str] = {}
    for action in saved:
        if _makes_image(action.get("kind")):
            made[(str(action.get("key")), str(action.get("region")), action.get("kind") == "copy")] = str(action["id"])
    if not made:
        return {}
    tokens = {
        markers.name_token(set_name, key, region): action_id
        for (key, region, is_copy), action_id in made.items()
        if not is_copy
    }
    mapping: dict[str, str] = {}
    for image in images:
        props = image.properties
        action_id = None
        if props.get(markers.SET) == set_name and isinstance(props.get(markers.KEY), str):
            action_id = made.get((props[markers.KEY], image.region, markers.COPY_OF in props))
        elif (token := markers.token_of(image.name)) in tokens:
            action_id = tokens[token]
        if action_id is not None:
            mapping[str(Ref.image(image.region, image.id))] = str(Ref.made(image.region, action_id))
    return mapping


def _makes_image(kind: Any) -> bool:
    """Whether a saved action of this kind makes an image (a saved file may name any kind)."""
    return isinstance(kind, str) and kind in KINDS and KINDS[kind].makes_image


def _image_ref(action: Action) -> str:
    """The `expects` key of the live image an action acts on."""
    return str(Ref.image(action.region, str(action.image_id)))


def _normal_ref(ref: str, refs: Mapping[str, str]) -> str:
    return refs.get(ref, ref)


def _fresh_view(action: Action, refs: Mapping[str, str]) -> dict[str, Any]:
    """F's action as the comparable document S holds, references normalised by rule (a)."""
    doc = action_to_json(action)
    if action.image_id is not None:
        ref = refs.get(_image_ref(action))
        if ref is not None:
            doc["image_id"] = None  # S names an image it makes by the action that makes it
    doc["expects"] = {_normal_ref(k, refs): v for k, v in doc["expects"].items()}
    return doc


# On an image that S makes and an interrupted run already made, S could only predict these values (the
# download flag the new image got, the id of the home image a copy reads): their presence is compared,
# not their values.
PREDICTED = frozenset({markers.DOWNLOAD_FLAG, markers.DOWNLOAD_WAS, markers.COPY_OF})


def _about_made(doc: Mapping[str, Any]) -> bool:
    """Whether an action (normalised) acts on, or reads, an image the saved plan makes."""
    kind = KINDS.get(str(doc.get("kind")))
    return any(_is_made(ref) for ref in doc.get("expects", {})) or (
        doc.get("image_id") is None and (kind is None or kind.on_existing_image)
    )


def _is_made(ref: str) -> bool:
    """Whether an `expects` key names an image the plan makes (read from a saved file: any text)."""
    try:
        return Ref.parse(ref).made_by is not None
    except ValueError:
        return False


def _comparable(doc: Mapping[str, Any], dropped: set[str], *, resume: bool, made: bool) -> dict[str, Any]:
    out = {k: v for k, v in doc.items() if k not in NOT_COMPARED}
    out["depends_on"] = sorted({d.get("id") for d in doc.get("depends_on", []) if isinstance(d, Mapping)} - dropped)
    if resume:
        # After an interruption the fresh graph orders what is left from what is now live (a closed
        # bracket, a made image): the order may differ, what is done may not.
        del out["depends_on"]
    if out.get("compensates") in dropped:
        del out["compensates"]
    if made:
        changes = doc.get("changes", {})
        out["changes"] = {
            k: (None if k in PREDICTED else v.get("after") if isinstance(v, Mapping) else v)
            for k, v in changes.items()
            if k != markers.COPY_OF
        }
        out["expects"] = sorted(doc.get("expects", {}))
    return out


def _without_changes_made(saved_doc: dict[str, Any], fresh_doc: Mapping[str, Any]) -> dict[str, Any]:
    """Rule (e): S's action without the changes F no longer has (an interrupted run made them)."""
    saved_changes, fresh_changes = saved_doc.get("changes"), fresh_doc.get("changes")
    if not isinstance(saved_changes, Mapping) or not isinstance(fresh_changes, Mapping):
        return saved_doc
    return {**saved_doc, "changes": {k: v for k, v in saved_changes.items() if k in fresh_changes}}


def _describe(doc: Mapping[str, Any]) -> str:
    key = doc.get("key")
    what = f"{doc.get('kind')} of {key} in {doc.get('region')}" if key else f"{doc.get('kind')} in {doc.get('region')}"
    image = doc.get("image_id")
    return f"{what} ({str(image)[:8]}…)" if isinstance(image, str) and image else what


def _field_differences(action_id: str, saved: Mapping[str, Any], fresh: Mapping[str, Any]) -> list[Difference]:
    found = []
    for name in sorted(set(saved) | set(fresh)):
        if saved.get(name) != fresh.get(name):
            found.append(Difference(action_id, f"{name} {saved.get(name)!r}", f"{name} {fresh.get(name)!r}"))
    return found


def match(
    saved: Sequence[Mapping[str, Any]],
    fresh: Sequence[Action],
    images: Iterable[Image],
    set_name: str,
    *,
    resume: bool,
    saved_deferred: Collection[tuple[str, str]] = (),
) -> Match:
    """Match F (`fresh`) against S (`saved`, the saved document's actions as read). `images`: the live
    images F was planned from (for rule (a)). `saved_deferred`: the (key, region) of S's
    `retirement_deferred` warnings (rule (f))."""
    by_id = {str(a.get("id")): a for a in saved if isinstance(a, Mapping)}
    keys_made = {(str(a.get("key")), str(a.get("region"))) for a in by_id.values() if a.get("kind") == "copy"}
    housekeeping_ids = {a.id for a in fresh if is_housekeeping(a, keys_made)}
    pairs = _pairs(fresh, by_id)
    matched_saved = set(pairs.values())
    absent = {s_id for s_id in by_id if s_id not in matched_saved}
    compare = _Comparison(
        by_id, placeholders(list(by_id.values()), images, set_name), housekeeping_ids | absent, resume
    )

    differences: list[Difference] = []
    left: list[str] = []
    acceptances_left: list[str] = []
    for action in fresh:
        s_id = pairs.get(action.id)
        if s_id is None and _retirement_saved_deferred(action, saved_deferred):
            left.append(action.id)
        elif s_id is None and action.kind in MEMBER_STATUS:
            acceptances_left.append(action.id)  # rule (g)
        elif action.id in housekeeping_ids:
            # Allowed without S; but where S has it too, S must say the same of what it acts on.
            if s_id is not None:
                differences.extend(compare.housekeeping(action, s_id))
        elif s_id is None:
            differences.append(Difference(action.id, "not planned", _describe(action_to_json(action))))
        else:
            differences.extend(compare.paired(action, s_id))
    already_done: list[str] = []
    deferred = _deferred_retirements(by_id, absent - housekeeping_ids, images)
    for s_id in sorted(absent - housekeeping_ids - deferred):
        if resume:
            already_done.append(s_id)
        else:
            differences.append(Difference(s_id, _describe(by_id[s_id]), "not planned"))
    return Match(
        tuple(differences),
        tuple(sorted(housekeeping_ids)),
        tuple(already_done),
        pairs,
        tuple(sorted(deferred)),
        tuple(sorted(left)),
        tuple(sorted(acceptances_left)),
    )


def _retirement_saved_deferred(action: Action, saved_deferred: Collection[tuple[str, str]]) -> bool:
    """Rule (f): an F retirement of a key and region whose retirement S deferred."""
    return action.kind == "delete" and "family" in action.details and (action.key, action.region) in saved_deferred


def _deferred_retirements(
    by_id: Mapping[str, Mapping[str, Any]], absent: set[str], images: Iterable[Image]
) -> set[str]:
    """Rule (f): the S retirements F does not plan whose image is still live. F plans the retirement of every
    live image of a family's old version unless that image is in use now (a refusal would stop apply before
    matching), so such a retirement was deferred, not dropped."""
    live = {(image.region, image.id) for image in images}
    return {
        s_id
        for s_id in absent
        if by_id[s_id].get("kind") == "delete"
        and isinstance(by_id[s_id].get("family"), str)
        and (by_id[s_id].get("region"), by_id[s_id].get("image_id")) in live
    }


def _pairs(fresh: Sequence[Action], by_id: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """Each F action's id -> the id of the S action it stands for, where there is one."""
    fresh_ids = {a.id for a in fresh}
    pairs: dict[str, str] = {}
    for action in fresh:
        s_id = _stands_for(action, by_id, fresh_ids)
        if s_id is not None:
            pairs[action.id] = s_id
    return pairs


def _stands_for(action: Action, by_id: Mapping[str, Mapping[str, Any]], fresh_ids: set[str]) -> str | None:
    """The S action `action` stands for: the one with its id, else by rule (b) or (c); None if none."""
    if action.id in by_id:
        return action.id
    if action.kind == "adopt" and action.reason.code == "interrupted_create":
        candidate = str(ActionId("create", action.key, action.region))  # rule (b)
        return candidate if by_id.get(candidate, {}).get("kind") == "create" else None
    if action.kind == "protect":  # rule (c)
        for s_id, s_action in by_id.items():
            if (
                s_action.get("kind") == "protect"
                and (s_action.get("key"), s_action.get("region")) == (action.key, action.region)
                and s_action.get("compensates")
                and s_action.get("compensates") not in fresh_ids
                and s_id not in fresh_ids
            ):
                return s_id
    return None


@dataclass(frozen=True, slots=True)
class _Comparison:
    """What one F action is compared with its S action by: S's actions by id, rule (a)'s references, the
    ids dropped from `depends_on` and `compensates` (rule (d)), and whether this is a resume."""

    by_id: Mapping[str, Mapping[str, Any]]
    refs: Mapping[str, str]
    dropped: set[str]
    resume: bool

    def housekeeping(self, action: Action, s_id: str) -> list[Difference]:
        """A housekeeping action S has too. Its `expects` may differ: a run interrupted after S was made
        (a stop, say) marks the object."""
        fresh_view = _fresh_view(action, self.refs)
        made = self.resume and _about_made(fresh_view)
        fresh_doc = _comparable(fresh_view, self.dropped, resume=self.resume, made=made)
        saved_doc = _comparable(self.by_id[s_id], self.dropped, resume=self.resume, made=made)
        fresh_doc.pop("expects", None)
        saved_doc.pop("expects", None)
        return _field_differences(action.id, saved_doc, fresh_doc)

    def paired(self, action: Action, s_id: str) -> list[Difference]:
        fresh_view = _fresh_view(action, self.refs)
        made = self.resume and _about_made(fresh_view) and _about_made(self.by_id[s_id])
        fresh_doc = _comparable(fresh_view, self.dropped, resume=self.resume, made=made)
        saved_doc = _comparable(self.by_id[s_id], self.dropped, resume=self.resume, made=made)
        if self.resume and s_id == action.id:
            saved_doc = _without_changes_made(saved_doc, fresh_doc)
        if s_id != action.id:  # rules (b) and (c): what the two set, not how they are named
            if action.kind == "adopt":
                fresh_doc = {k: v.get("after") for k, v in fresh_doc.get("changes", {}).items()}
                saved_doc = {k: v.get("after") for k, v in saved_doc.get("changes", {}).items()}
            else:
                fresh_doc = {"changes": fresh_doc.get("changes"), "image_id": fresh_doc.get("image_id")}
                saved_doc = {"changes": saved_doc.get("changes"), "image_id": saved_doc.get("image_id")}
        return _field_differences(action.id, saved_doc, fresh_doc)
