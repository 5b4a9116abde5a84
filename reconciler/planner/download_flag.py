"""What a `reconciler_download_was` record restores the download flag to (docs/copies.md): the tool records
"true", "false" or "absent"; any other text was set by hand and is never written to the flag."""

from __future__ import annotations

from reconciler import markers

from .context import FALSE, PlanContext, quoted
from .graph import ImageState


def recorded_download(ctx: PlanContext, state: ImageState, was: str) -> str | None:
    """The flag value the record `was` on `state`'s image restores ("absent": the flag is removed); a record
    the tool never writes turns downloads off ("false"), with an invalid_download_was warning."""
    if was in markers.DOWNLOAD_RESTORE:
        return markers.DOWNLOAD_RESTORE[was]
    ctx.warn(
        "invalid_download_was",
        state.key,
        state.region,
        f"image {state.image_id} has {markers.DOWNLOAD_WAS} {quoted(was)}, which the tool never writes (it "
        f'records "true", "false" or "absent"): the download flag is restored to "false", not to that text',
        None,
    )
    return FALSE
