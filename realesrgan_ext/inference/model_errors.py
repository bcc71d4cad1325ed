"""The errors of loading a checkpoint, in their own file so every checker below the loader can raise them."""

from __future__ import annotations

from realesrgan_ext.limits import LimitError


class ModelLoadError(ValueError):
    """A checkpoint that cannot be turned into a model; the message names the file and what to do."""


class UnsafeCheckpointError(ModelLoadError):
    """A pickle that would import or call something other than tensors (it could run code)."""


class ModelTooLargeError(ModelLoadError, LimitError):
    """A checkpoint over one of the ``Limits`` (weights, inflated bytes, nesting); refused before it is built."""
