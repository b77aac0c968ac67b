"""Graph -> Graph passes and the pipeline that runs them in order."""

from .canonicalize import canonicalize

__all__ = ["canonicalize"]
