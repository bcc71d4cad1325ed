"""Decoding images to float arrays the way training and inference both need.

``decode_image`` uses OpenCV's IMREAD_UNCHANGED so 16-bit and alpha survive decoding (inference
keeps both). Training images are decoded as basicsr's ``imfrombytes`` decodes them (IMREAD_COLOR),
EXIF orientation applied, except that 16-bit depth is kept. ``to_float`` then maps integers to
[0, 1] by their own range (255 or 65535). Before decoding, the header's size and frames are
checked against ``Limits`` (``image_header.read_header``).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import cv2
import numpy as np

from realesrgan_ext.data.image_errors import ImageReadError, ImageTooLargeError
from realesrgan_ext.data.image_header import ImageHeader, check_decoded, read_header
from realesrgan_ext.limits import Limits

__all__ = ["ImageReadError", "ImageTooLargeError", "decode_image", "decode_with_header", "load_training_image",
           "read_image", "to_bgr", "to_float"]


# OpenCV applies EXIF orientation for every flag but IMREAD_UNCHANGED; these two keep the depth and
# gray as stored and drop alpha, as IMREAD_COLOR (basicsr's imfrombytes) does.
TRAINING_DECODE_FLAGS = cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR


def decode_image(data: bytes, source: str, limits: Limits | None = None,
                 flags: int = cv2.IMREAD_UNCHANGED) -> np.ndarray:
    """Decode encoded image bytes: HxW gray, HxWx3 BGR or HxWx4 BGRA; uint8/uint16/float32.

    The default flag decodes the pixels as stored (no EXIF rotation, alpha kept). Raises
    ``ImageTooLargeError`` (an ``ImageReadError``) before decoding when the header declares more
    than ``limits`` allow, ``ImageReadError`` for anything unreadable.
    """
    return decode_with_header(data, source, limits, flags)[0]


def decode_with_header(data: bytes, source: str, limits: Limits | None = None,
                       flags: int = cv2.IMREAD_UNCHANGED) -> tuple[np.ndarray, ImageHeader]:
    """``decode_image``, and the header it was checked against (mode, EXIF orientation, frames)."""
    header = read_header(data, source, limits)
    try:
        img = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    except cv2.error as err:  # OpenCV's own limits (OPENCV_IO_MAX_IMAGE_PIXELS) and decoder failures
        raise ImageReadError(f"{source}: OpenCV refused to decode {header.width}x{header.height} px "
                             f"({_opencv_reason(err)})") from err
    if img is None:
        raise ImageReadError(f"{source}: not a readable image (corrupt, truncated or unknown format)")
    stored = img.shape[1::-1] if flags != cv2.IMREAD_UNCHANGED and img.shape[:2] == (header.width, header.height) \
        else img.shape  # EXIF orientation 5..8 applied: height and width swapped
    check_decoded(tuple(stored), header, source)
    return img, header


def read_image(path: str | Path, limits: Limits | None = None) -> np.ndarray:
    """Read a file with ``decode_image``; errors name the path."""
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise ImageReadError(f"{path}: {err.strerror or err}") from err
    return decode_image(data, str(path), limits)


def _opencv_reason(err: Exception) -> str:
    """OpenCV's assertion in words: its pixel limit, or the first line of what it said."""
    text = str(err)
    if "CV_IO_MAX_IMAGE" in text:
        return ("more than OpenCV's decoder accepts; set OPENCV_IO_MAX_IMAGE_PIXELS (default 2^30) in the "
                "environment before starting to raise it")
    return next((line.strip() for line in text.splitlines() if line.strip()), type(err).__name__)[:200]


def to_float(img: np.ndarray, source: str = "image") -> np.ndarray:
    """Integer image to float32 in [0, 1] by its dtype's range (uint8 / 255, uint16 / 65535)."""
    if img.dtype == np.uint8:
        return img.astype(np.float32) / 255.0
    if img.dtype == np.uint16:
        return img.astype(np.float32) / 65535.0
    if img.dtype in (np.float32, np.float64):
        return np.clip(img, 0, 1).astype(np.float32)
    raise ImageReadError(f"{source}: unsupported pixel type {img.dtype}")


def to_bgr(img: np.ndarray, source: str = "image") -> np.ndarray:
    """Any decoded image as 3-channel BGR: gray is replicated, alpha dropped with a warning."""
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    if img.shape[2] == 1:
        return cv2.cvtColor(img[:, :, 0], cv2.COLOR_GRAY2BGR)
    if img.shape[2] == 4:
        warnings.warn(f"{source}: alpha channel dropped for training", stacklevel=2)
        return np.ascontiguousarray(img[:, :, :3])
    if img.shape[2] == 3:
        return img
    raise ImageReadError(f"{source}: unsupported channel count {img.shape[2]}")


def load_training_image(data: bytes, source: str) -> np.ndarray:
    """Encoded bytes to float32 HxWx3 BGR in [0, 1] (BasicSR's training convention).

    As basicsr's ``imfrombytes``: EXIF orientation applied (a portrait photo stored sideways
    trains upright), alpha dropped, gray replicated to 3 channels; 16-bit keeps its precision.
    """
    img = decode_image(data, source, flags=TRAINING_DECODE_FLAGS)
    return to_float(to_bgr(img, source), source)
