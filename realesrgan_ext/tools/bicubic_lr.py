"""Bicubic LR images from HR: MATLAB's antialiased ``imresize``, as BasicSR's paired datasets expect.

``bicubic_downscale`` runs ``basicsr.utils.matlab_functions.imresize`` on the image mapped to
[0, 1] by its own range and rounds back to the input dtype, so 16-bit stays 16-bit and gray /
alpha channels are kept. Paired training needs LR == HR / scale exactly; HR sides that are not
multiples of the scale are cropped at the bottom/right (BasicSR's ``mod_crop``) in ``crop``
mode, or refused in ``error`` mode.

``make_lr_folder`` writes ``LR_DIR/<same relative path>.png`` for every HR image. The LR is
the downscaled *cropped* HR, so when some HR must be cropped the cropped HR has to be written
as well: give ``hr_output`` (every HR is then written there as PNG, cropped or not, giving a
consistent pair of PNG folders); without it an HR that needs cropping is an error naming it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from realesrgan_ext.data.image_io import read_image, to_float
from realesrgan_ext.tools.image_files import DataToolError, list_images, png_name, write_png

MODES = ("crop", "error")


def mod_crop(img: np.ndarray, scale: int) -> np.ndarray:
    """Crop bottom/right so both sides are multiples of ``scale``."""
    h, w = img.shape[:2]
    return img[:h - h % scale, :w - w % scale]


def bicubic_downscale(img: np.ndarray, scale: int, source: str = "image") -> np.ndarray:
    """``img`` (uint8/uint16/float32 in [0,1]; HxW or HxWxC) downscaled by ``scale``; same dtype.

    Both sides must be multiples of ``scale`` (see ``mod_crop``).
    """
    from realesrgan_ext import compat

    compat.apply()  # basicsr imports only once patched
    from basicsr.utils.matlab_functions import imresize

    h, w = img.shape[:2]
    if scale < 1 or h % scale or w % scale:
        raise DataToolError(f"{source}: {w}x{h} is not a multiple of the scale {scale}")
    if scale == 1:
        return img.copy()
    lr = imresize(to_float(img, source), 1 / scale)
    lr = np.asarray(lr, dtype=np.float32)
    if img.dtype == np.uint8 or img.dtype == np.uint16:
        top = np.iinfo(img.dtype).max
        return np.clip(np.round(lr * top), 0, top).astype(img.dtype)
    return np.clip(lr, 0, 1).astype(np.float32)


@dataclass
class LrResult:
    written: int = 0
    cropped: list[tuple[str, tuple[int, int], tuple[int, int]]] = field(default_factory=list)  # rel, (w,h) before/after


def bicubic_lr(img: np.ndarray, scale: int, source: str, rel_path: str) -> np.ndarray:
    """``make_lr_folder``'s default ``downscale``: ``bicubic_downscale``."""
    return bicubic_downscale(img, scale, source)


def make_lr_folder(hr_dir: str | Path, lr_dir: str | Path, scale: int = 4, *, mode: str = "crop",
                   hr_output: str | Path | None = None, compress_level: int = 3,
                   progress: bool = True,
                   downscale: Callable[[np.ndarray, int, str, str], np.ndarray] = bicubic_lr) -> LrResult:
    """Write the LR of every HR image under ``hr_dir`` (recursively) to ``lr_dir``.

    Names keep the HR's relative path with a ``.png`` extension. See the module doc for
    ``mode`` and ``hr_output``. Unreadable images raise ``ImageReadError`` naming the file.
    ``downscale(hr, scale, source, rel_path)`` makes each LR: bicubic by default, or e.g.
    ``tools.pipeline_lr.PipelineDownscaler`` (Real-ESRGAN's degradations, seeded per image).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if scale < 1:
        raise DataToolError(f"scale must be >= 1, got {scale}")
    hr_dir, lr_dir = Path(hr_dir), Path(lr_dir)
    rels = list_images(hr_dir)
    if not rels:
        raise DataToolError(f"{hr_dir}: no image files found")
    result = LrResult()
    for rel in tqdm(rels, unit="img", desc=f"x{scale} LR", disable=not progress):
        source = str(hr_dir / rel)
        hr = read_image(source)
        h, w = hr.shape[:2]
        if h % scale or w % scale:
            if mode == "error":
                raise DataToolError(f"{source}: {w}x{h} is not a multiple of the scale {scale} "
                                    f"(use --mode crop with --hr-output, or crop it)")
            if hr_output is None:
                raise DataToolError(f"{source}: {w}x{h} is not a multiple of the scale {scale}; its LR must come "
                                    f"from a cropped HR: pass --hr-output DIR to write the cropped HR copies")
            hr = mod_crop(hr, scale)
            result.cropped.append((rel, (w, h), (hr.shape[1], hr.shape[0])))
        if h < scale or w < scale:
            raise DataToolError(f"{source}: {w}x{h} is smaller than the scale {scale}")
        write_png(lr_dir / png_name(rel), downscale(hr, scale, source, rel), compress_level, source)
        if hr_output is not None:
            write_png(Path(hr_output) / png_name(rel), hr, compress_level, source)
        result.written += 1
    return result
