"""`python -m reconciler` runs the same entry point as the `reconciler` console script."""

from reconciler.cli import entry

entry()
