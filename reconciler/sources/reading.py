"""Finding and reading an upload's bytes: the API apply and plan call (docs/manifest.md, "Images from a file
or a URL").

`open_source` gives the bytes of a `source.file` or `source.url` as a stream of CHUNK-sized pieces, never
whole in memory and never through a temporary file; `probe` says, at plan time, what can be known of them
without reading them (a file's presence and size; a URL's size only with --fetch-sources). The rules of
where a file may be read from live in reconciler.sources.files, those of what a URL may reach in
reconciler.sources.urls."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.desired import Source
from reconciler.errors import ReconcilerError
from reconciler.live import Artifact
from reconciler.sources.access import SourceAccess

CHUNK = 2**20  # 1 MiB: what one read returns, and so the most of an upload held in memory at once
# An image of no bytes is never one anybody meant: most likely a build that failed and still wrote its
# output (whose digest, e3b0c442… for sha256, nobody recognises in review).
EMPTY = "empty: 0 bytes"


class SourceError(ReconcilerError):
    """An upload's bytes cannot be read, or may not be: a missing or unsafe file, a refused address, a failed
    or broken download. The message names the file or URL; it never carries a header value or a proxy's
    credentials."""


@dataclass(eq=False)
class Opened:
    """An upload's bytes, open and not yet read. `where` is what is read, for humans: the file as found
    ("build/x.qcow2", or "<artifacts dir>/x.qcow2") or the URL as the manifest writes it. `size` is the
    byte count when known (a file's size, a response's Content-Length)."""

    where: str
    size: int | None
    _stream: Callable[[], Iterator[bytes]] = field(repr=False)
    _close: Callable[[], None] = field(repr=False)

    def chunks(self) -> Iterator[bytes]:
        """The bytes, at most CHUNK at a time, read as they are asked for. Raises SourceError when more come
        than --max-upload-bytes allows, or when a download breaks off."""
        return self._stream()

    def close(self) -> None:
        """Closes the file or the connection at once (a cancelled apply stops reading mid-stream)."""
        self._close()


@contextlib.contextmanager
def open_source(source: Source, root: Path, access: SourceAccess) -> Iterator[Opened]:
    """The bytes of an upload's source, closed when the block ends. Raises SourceError."""
    # Imported here: both modules build an Opened and raise SourceError, defined above.
    from reconciler.sources import files, urls

    if source.file is not None:
        opened = files.open_file(source.file, root, access)
    elif source.url is not None:
        opened = urls.open_url(source.url, access)
    else:
        raise ValueError("open_source needs a source with a file or a url")
    try:
        yield opened
    finally:
        opened.close()


def probe(source: Source, root: Path, access: SourceAccess) -> Artifact:
    """What plan time may know of an upload's bytes, for display and `source_not_built`. Never raises."""
    from reconciler.sources import files, urls

    if source.file is not None:
        found = files.probe_file(source.file, root, access)
    elif source.url is not None:
        found = urls.probe_url(source.url, access)
    else:
        raise ValueError("probe needs a source with a file or a url")
    if found.size == 0:
        return dataclasses.replace(found, note=f"{EMPTY} (apply will refuse it)")
    return found
