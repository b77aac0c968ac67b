"""C code generation from Jinja templates: the model library (header, layers, weights)."""

from .generate import CSource, generate_c

__all__ = ["CSource", "generate_c"]
