"""Decoding images to float arrays the way training and inference both need.

Images are decoded with OpenCV's IMREAD_UNCHANGED so 16-bit and alpha survive decoding;
``to_float`` then maps integers to [0, 1] by their own range (255 or 65535).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import cv2
import numpy as np


class ImageReadError(ValueError):
    """An image that cannot be decoded; the message names its source."""


def decode_image(data: bytes, source: str) -> np.ndarray:
    """Decode encoded image bytes as stored: HxW gray, HxWx3 BGR or HxWx4 BGRA; uint8/uint16/float32."""
    if not data:
        raise ImageReadError(f"{source}: empty file")
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ImageReadError(f"{source}: not a readable image (corrupt, truncated or unknown format)")
    return img


def read_image(path: str | Path) -> np.ndarray:
    """Read a file with ``decode_image``; errors name the path."""
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise ImageReadError(f"{path}: {err.strerror or err}") from err
    return decode_image(data, str(path))


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
    """Encoded bytes to float32 HxWx3 BGR in [0, 1] (BasicSR's training convention)."""
    img = decode_image(data, source)
    return to_float(to_bgr(img, source), source)
