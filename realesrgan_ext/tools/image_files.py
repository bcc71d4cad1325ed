"""Finding image files under a folder and writing PNGs: shared by the data tools.

Paths are handled as POSIX-style strings relative to the folder that was listed, sorted, so
every tool sees the same files in the same order on every platform.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

import cv2
import numpy as np

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pnm"})


class DataToolError(RuntimeError):
    """A data tool cannot go on; the message names the file(s) and what to do."""


def list_images(root: str | Path) -> list[str]:
    """Relative POSIX paths of the image files under ``root``, recursively, sorted.

    Files and folders whose names start with '.' (``.ipynb_checkpoints``, ``.DS_Store``) are
    skipped; so are files whose extension is not in ``IMAGE_EXTENSIONS`` (case-insensitive).
    """
    root = Path(root)
    if not root.is_dir():
        raise DataToolError(f"{root}: not a folder")
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if name.startswith(".") or os.path.splitext(name)[1].lower() not in IMAGE_EXTENSIONS:
                continue
            found.append(Path(dirpath, name).relative_to(root).as_posix())
    return sorted(found)


def strip_extension(rel_path: str) -> str:
    """``'a/b/img.png'`` -> ``'a/b/img'`` (folders kept, '/' separators)."""
    path = PurePosixPath(rel_path)
    return path.with_suffix("").as_posix()


def channels(img: np.ndarray) -> int:
    """Channel count of a decoded image (1 for HxW gray)."""
    return 1 if img.ndim == 2 else img.shape[2]


def encode_png(img: np.ndarray, compress_level: int, source: str) -> bytes:
    """PNG bytes of ``img`` as it is (8/16-bit, gray/BGR/BGRA); ``source`` names it in errors."""
    if img.dtype not in (np.uint8, np.uint16):
        raise DataToolError(f"{source}: pixel type {img.dtype} cannot be stored as PNG (8 or 16-bit only)")
    if not 0 <= compress_level <= 9:
        raise ValueError(f"PNG compress level must be 0..9, got {compress_level}")
    ok, buf = cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, int(compress_level)])
    if not ok:
        raise DataToolError(f"{source}: PNG encoding failed (shape {img.shape}, {img.dtype})")
    return buf.tobytes()


def write_png(path: str | Path, img: np.ndarray, compress_level: int = 3, source: str | None = None) -> None:
    """Write ``img`` to ``path`` as PNG, creating parent folders (works for non-ASCII paths)."""
    path = Path(path)
    data = encode_png(img, compress_level, source or str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def png_name(rel_path: str) -> str:
    """``'a/img.jpg'`` -> ``'a/img.png'``: the name a tool writes for a source image."""
    return strip_extension(rel_path) + ".png"
