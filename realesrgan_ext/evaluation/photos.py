"""Reading the photos an evaluation scores, and the errors it reports.

Images are scored as 8-bit BGR (BasicSR's metric convention): gray is replicated, alpha
dropped, 16-bit rounded to 8-bit; EXIF orientation is applied (as the image CLI does). Sizes
can be read from a file's header alone, so a whole folder is checked before anything runs.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from realesrgan_ext.data.image_io import ImageReadError

_TRANSPOSED = (5, 6, 7, 8)  # EXIF orientations that swap width and height


class EvaluationError(ValueError):
    """The evaluation cannot start; the message names the file(s) or option and what to do."""


class UnreadableImage(ValueError):
    """One file that cannot be scored (``path``, ``reason``); the others still are."""

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = str(path), reason


def header_size(path: Path) -> tuple[int, int]:
    """(height, width) as displayed, from the file's header (``data.image_header``): nothing decoded yet,
    and a size over ``Limits.max_image_pixels`` refused."""
    from realesrgan_ext.data.image_header import read_header

    try:
        header = read_header(Path(path).read_bytes(), str(path))
    except OSError as err:
        raise UnreadableImage(path, err.strerror or str(err)) from err
    except ImageReadError as err:
        raise UnreadableImage(path, str(err).removeprefix(f"{path}: ")) from err
    return (header.width, header.height) if header.orientation in _TRANSPOSED else (header.height, header.width)


def read_bgr8(path: Path) -> np.ndarray:
    """A photo as BasicSR scores it: 8-bit BGR, orientation applied (``UnreadableImage`` for a bad file)."""
    from realesrgan_ext.inference.image_io import load_image

    try:
        pixels = load_image(path).pixels
    except ImageReadError as err:
        raise UnreadableImage(path, str(err).removeprefix(f"{path}: ")) from err
    if pixels.dtype == np.uint16:
        pixels = np.round(pixels / 257.0).astype(np.uint8)
    elif pixels.dtype != np.uint8:
        pixels = np.round(np.clip(pixels, 0, 1) * 255).astype(np.uint8)
    if pixels.ndim == 2 or pixels.shape[2] == 2:  # gray (+ alpha)
        gray = pixels if pixels.ndim == 2 else pixels[:, :, 0]
        return cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
    return np.ascontiguousarray(pixels[:, :, 2::-1])  # RGB(A) -> BGR
