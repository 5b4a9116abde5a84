"""What the operator allows an upload to read (docs/manifest.md, "Images from a file or a URL").

These come from the command line only, never from a manifest: a pull request can change a manifest, so a
manifest must not be able to widen where the tool reads from, which hosts it connects to, or what
credentials it sends."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_MAX_UPLOAD_BYTES = 256 * 2**30  # 256 GiB


@dataclass(frozen=True, slots=True)
class SourceAccess:
    # Directories a `source.file` is looked up in after the root itself, in this order (--artifacts).
    artifacts: tuple[Path, ...] = ()
    # Hosts (as written in a URL: a name or an address literal, lowercase) admitted whatever addresses they
    # resolve to (--allow-url-host): an artifact server on a private network.
    allowed_hosts: frozenset[str] = frozenset()
    # Plain http to a loopback address, for the manifest's URL itself, never for a redirect (tests).
    allow_http_loopback: bool = False
    # The NAME of an environment variable holding one `Header: value` line, sent to the manifest URL's
    # origin only (--url-header-env). The value is read when a URL is opened and never shown.
    header_env: str | None = None
    # A proxy for URL sources (--url-proxy); the environment's proxy variables are never used for them.
    proxy: str | None = None
    # Whether plan may contact a URL (one HEAD, for the size): pull-request recipes never pass it.
    fetch_sources: bool = False
    # The largest upload apply makes (--max-upload-bytes).
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
