"""reconciler: declarative management of NHN Cloud Compute images from Git."""

__version__ = "0.1.0"
