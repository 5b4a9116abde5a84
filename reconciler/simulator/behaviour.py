"""The simulator's knobs: timing, NHN behaviours the research could not confirm, and fault injection.

Defaults are what the docs (docs/simulator.md) say NHN does. Every behaviour that NHN does not document is a knob
here, so a test can exercise the client against each possible answer of the real cloud.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from typing import Any

import jsonschema

from reconciler.schemas import load_schema

PROTECTED_PATCH_MODES = ("permissive", "strict")
ACCEPT_OR_REFUSE = ("accept", "refuse")
FAULT_KINDS = ("status", "drop", "lose_answer", "cut_after_bytes", "stall_s", "hold")
# A held call waits at most this long for the others of its group (the `hold` fault).
HOLD_TIMEOUT_S = 10.0


def describe_error(error: jsonschema.ValidationError) -> str:
    """A schema error about the behaviour section, in words (a fault's oneOf is opaque otherwise)."""
    if error.validator == "oneOf" and "faults" in error.absolute_path:
        return f"a fault needs exactly one of {', '.join(FAULT_KINDS)}"
    return error.message


@functools.cache
def _behaviour_validator() -> jsonschema.Draft202012Validator:
    seed = load_schema("seed")
    # The behaviour sub-schema, with the seed's $defs so its references resolve.
    return jsonschema.Draft202012Validator({**seed["properties"]["behaviour"], "$defs": seed["$defs"]})


@dataclass(frozen=True, slots=True)
class Fault:
    """Misbehave on the `on_call`-th call(s) to `route` (1-based, counted per server process).

    Exactly one of: `status` (answer with it; with `retry_after` a Retry-After header is sent, as for 429
    or 503), `drop` (close the connection without carrying the request out), `lose_answer` (carry it
    out, then close without answering: the answer is lost), `cut_after_bytes` (break the connection
    mid-stream: after that many bytes of an upload's body, or of a download's answer) or `stall_s` (wait
    that long, then answer normally, so a client with a shorter timeout gives up) or `hold` (keep the call
    waiting until `hold` calls of this fault are waiting, or HOLD_TIMEOUT_S passed, then carry them all out
    and answer them together once all are done: a race of calls in the same second). `route` is a route
    template as `GET /_simulator/stats` names it, e.g. `GET /image/{region}/v2/images`.
    """

    route: str
    on_call: tuple[int, ...]
    status: int | None = None
    retry_after: int | None = None
    drop: bool = False
    stall_s: float | None = None
    lose_answer: bool = False
    cut_after_bytes: int | None = None
    hold: int | None = None

    @property
    def kind(self) -> str:
        return next(k for k in FAULT_KINDS if getattr(self, k) not in (None, False))

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Fault:
        """A fault from an already validated mapping (see `Behaviour.from_dict`)."""
        on_call = raw.get("on_call", 1)
        calls = tuple(on_call) if isinstance(on_call, list) else (int(on_call),)
        fault = cls(
            route=str(raw["route"]),
            on_call=calls,
            status=raw.get("status"),
            retry_after=raw.get("retry_after"),
            drop=bool(raw.get("drop", False)),
            stall_s=raw.get("stall_s"),
            lose_answer=bool(raw.get("lose_answer", False)),
            cut_after_bytes=raw.get("cut_after_bytes"),
            hold=raw.get("hold"),
        )
        return fault

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"route": self.route, "on_call": list(self.on_call)}
        for name in ("status", "retry_after", "stall_s", "cut_after_bytes", "hold"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        if self.drop:
            out["drop"] = True
        if self.lose_answer:
            out["lose_answer"] = True
        return out


@dataclass(frozen=True, slots=True)
class Behaviour:
    latency_ms: int = 0
    image_ready_after_polls: int = 2
    server_ready_after_polls: int = 2
    # A local-disk createImage: polls each of Nova's image_snapshot and image_pending_upload task states lasts.
    image_task_polls: int = 2
    token_lifetime_s: int = 12 * 3600  # NHN's examples show tokens of about 12 h
    protected_patch: str = "permissive"
    # [inferred] NHN does not document these answers gives the defaults.
    create_image_running_status: int = 409
    create_image_volume_root_status: int = 400
    download_refused_status: int = 403
    upload_keeps_bytes: bool = True
    # What a `doctor` run checks. Defaults: what the reconciler assumes of NHN.
    deleted_ids_reusable: bool = False  # Glance 33: never (soft delete)
    clock_skew_s: float = 0  # the Date header minus the simulator's clock, which stamps created_at/updated_at
    listing_lag_s: float = 0  # 0: read-after-write listings
    name_filter: bool = True  # false: `name=` is ignored by the image list
    patch_moves_updated_at: bool = True
    unprotect_allowed: bool = True  # false: PATCH protected -> false is 403
    client_image_ids: str = "accept"  # "refuse": a create with an `id` is 403
    property_filters: bool = False  # Glance 33 filters on custom properties; NHN unverified, so assumed not
    os_type_required: bool = True  # NHN [doc]; Glance does not require it
    download_gating: bool = True  # NHN [doc]: downloads need nhncloud_allow_download "true"; Glance has no gate
    unknown_member: str = "accept"  # Glance 33 accepts any member id; "refuse": 404 for an unknown project
    faults: tuple[Fault, ...] = field(default_factory=tuple)
    # {"rate": 0.1, "seed": 4711, "statuses": [500, 502, 503], "routes": [...]}: see the seed schema.
    random_faults: dict[str, Any] | None = None
    revoke_tokens_every: int | None = None

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> Behaviour:
        """Knobs from a seed's `behaviour:` section or `serve` flags, checked against the seed schema."""
        raw = dict(raw or {})
        problems = sorted(
            f"{'.'.join(str(p) for p in error.absolute_path) or 'behaviour'}: {describe_error(error)}"
            for error in _behaviour_validator().iter_errors(raw)
        )
        if problems:
            raise ValueError("; ".join(problems))
        faults = tuple(Fault.from_dict(f) for f in raw.pop("faults", []) or [])
        if raw.get("random_faults") is not None:
            raw["random_faults"] = {"seed": 0, "statuses": [500, 502, 503], "kinds": ["status"], **raw["random_faults"]}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(f"unknown behaviour setting(s): {', '.join(unknown)}")
        behaviour = cls(faults=faults, **raw)
        if behaviour.protected_patch not in PROTECTED_PATCH_MODES:
            raise ValueError(f"protected_patch must be one of {', '.join(PROTECTED_PATCH_MODES)}")
        for name in ("client_image_ids", "unknown_member"):
            if getattr(behaviour, name) not in ACCEPT_OR_REFUSE:
                raise ValueError(f"{name} must be one of {', '.join(ACCEPT_OR_REFUSE)}")
        return behaviour

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "faults"}
        for optional in ("random_faults", "revoke_tokens_every"):
            if out[optional] is None:
                del out[optional]
        out["faults"] = [f.to_dict() for f in self.faults]
        return out

    def with_overrides(self, **overrides: Any) -> Behaviour:
        """A copy with the given settings replaced, validated like a seed's; `None` means not given.
        Faults are added to the existing ones."""
        raw = self.to_dict()
        for name, value in overrides.items():
            if value is None:
                continue
            raw[name] = raw["faults"] + list(value) if name == "faults" else value
        return Behaviour.from_dict(raw)

    def fault_for(self, route: str, call: int) -> Fault | None:
        for fault in self.faults:
            if fault.route == route and call in fault.on_call:
                return fault
        return None
