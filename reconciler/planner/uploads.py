"""Uploading a declared image's bytes from a file or a URL (`source: {file | url, sha256 | sha512, disk_format}`):
the create, its refusal when NHN would refuse the image (no os_type), and the warning when the file is not
there yet. What plan time knows of the bytes (where the file is, its size) is snapshot data
(`Snapshot.artifacts`): this concern reads it and never looks at a disk or a network itself.

The create's details are what apply reads to upload: `file` or `url` exactly as the manifest writes it, the
`disk_format`, the `temporary_name` it is created under and the final `name`. `bytes`, `artifact` (where the
file was found) and `artifact_note` (why it was not, or why its size is unknown) are for the reader only
(plan_match.DISPLAY_ONLY): a plan made before the artifact was built matches one made after."""

from __future__ import annotations

from typing import Any

from reconciler import markers
from reconciler.desired import ImageSpec
from reconciler.live import Artifact
from reconciler.plan import Reason

from .context import PlanContext, src
from .graph import ImageState

OS_TYPE = "os_type"


def create(ctx: PlanContext, spec: ImageSpec) -> ImageState | None:
    """The upload that makes the key's image, or None with a refusal when NHN would refuse it."""
    assert spec.source.uploaded, spec.key
    if not _has_os_type(spec):
        ctx.refuse(
            "os_type_missing",
            spec.key,
            spec.region,
            "NHN requires os_type on an uploaded image: declare properties.os_type (linux or windows)",
            "add os_type: linux (or windows) under the image's properties",
            _at(spec, "source"),
        )
        return None
    artifact = ctx.snapshot.artifacts.get(spec.key)
    if artifact is not None and not artifact.found:
        _not_built(ctx, spec, artifact)
    name = spec.display_name
    step = ctx.graph.add(
        "create",
        spec.key,
        spec.region,
        Reason("image_missing", f"{spec.file} declares it; no image of this set has this key", src(spec)),
        None,
        **_details(spec, artifact, name, markers.temporary_name(name, ctx.set, spec.key, spec.region)),
    )
    assert spec.source.content is not None
    return ctx.made_by(step, spec, spec.source.content, name)


def _details(spec: ImageSpec, artifact: Artifact | None, name: str, temporary: str) -> dict[str, Any]:
    """The create's details: what apply uploads and names, then what the reader is shown of the bytes."""
    source = spec.source
    where: dict[str, Any] = {"file": source.file} if source.file is not None else {"url": source.url}
    return {
        **where,
        "disk_format": source.disk_format,
        # NHN refuses an image without os_type: the upload creates the image with it (the other declared
        # properties follow in the create's update, as for an instance's image).
        "os_type": (spec.properties or {}).get(OS_TYPE),
        "temporary_name": temporary,
        "name": name,
        "bytes": artifact.size if artifact is not None else None,
        "artifact": artifact.where if artifact is not None and artifact.found else None,
        "artifact_note": artifact.note if artifact is not None else None,
    }


def _has_os_type(spec: ImageSpec) -> bool:
    value = (spec.properties or {}).get(OS_TYPE)
    return isinstance(value, str) and value.strip() != ""


def _not_built(ctx: PlanContext, spec: ImageSpec, artifact: Artifact) -> None:
    """The file is not there (yet): the create is still planned, since in GitOps the apply job often builds
    the artifact the pull request's plan could not see."""
    looked = artifact.note or f"{spec.source.file} is not found"  # the note names the file and where it looked
    ctx.warn(
        "source_not_built",
        spec.key,
        spec.region,
        f"{looked}: apply fails this create unless the file exists by then (in GitOps the artifact is often "
        "built by the apply job)",
        _at(spec, "source.file"),
    )


def _at(spec: ImageSpec, field_path: str) -> str | None:
    """Where `field_path` is written, else where the source is, else the key's line."""
    return src(spec, field_path if field_path in spec.locations else "source")
