"""The errors of reading an image, in their own file so the header check and the decoders share them."""

from __future__ import annotations

from realesrgan_ext.limits import LimitError


class ImageReadError(ValueError):
    """An image that cannot be decoded; the message names its source."""


class ImageTooLargeError(ImageReadError, LimitError):
    """An image whose header declares more pixels or frames than ``Limits`` allow; nothing was decoded."""
