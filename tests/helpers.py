"""Tiny data builders shared by the tests."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def smooth_image(h: int, w: int, seed: int = 0, channels: int = 3) -> np.ndarray:
    """A deterministic uint8 image with structure at several scales (not plain noise)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (max(h // 4, 2), max(w // 4, 2), channels), dtype=np.uint8)
    img = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    return img if channels > 1 else img[:, :, None]


def write_pair_folders(root: Path, names: list[str], hr_size: int = 32, scale: int = 4,
                       lr_ext: str = ".png") -> tuple[Path, Path]:
    """``root/high_res`` and ``root/low_res`` with bicubic-downscaled partners."""
    hr_dir, lr_dir = root / "high_res", root / "low_res"
    for i, name in enumerate(names):
        hr = smooth_image(hr_size, hr_size, seed=i)
        lr = cv2.resize(hr, (hr_size // scale, hr_size // scale), interpolation=cv2.INTER_AREA)
        (hr_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (lr_dir / name).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(hr_dir / f"{name}.png"), hr)
        cv2.imwrite(str(lr_dir / f"{name}{lr_ext}"), lr)
    return hr_dir, lr_dir


def edited_ncnn_layers(files: tuple[Path, Path], old: str, new: str) -> list:
    """An ncnn model's layers with the first ``old`` in its ``.param`` text replaced by ``new``."""
    from realesrgan_ext.inference.ncnn_import import load_bin, parse_param

    param, weights = files
    text = param.read_text()
    assert old in text
    return load_bin(parse_param(text.replace(old, new, 1)), weights.read_bytes())
