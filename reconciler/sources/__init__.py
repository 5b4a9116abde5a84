"""Images uploaded from a file or a URL (`source: {file | url, sha256 | sha512, disk_format}`): the operator's
options (access.py), and the I/O that finds and reads the bytes. The planner never imports this package: what
plan time learns of an upload's bytes reaches it as snapshot data (reconciler.live.Artifact)."""
