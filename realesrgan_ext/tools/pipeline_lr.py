"""LR images made by the Real-ESRGAN degradation pipeline, reproducibly: validation sets, bug reports.

``pipeline_downscale`` degrades one whole HR image with ``data.degradations.degrade`` under a
seed; ``PipelineDownscaler`` derives that seed from a base seed and the image's relative path,
so an image gets the same LR whatever else is in the folder and in whatever order it is run.
The pipeline's settings come from an option file (``datasets.train.degradation``; defaults
when absent) and its ``scale``.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from realesrgan_ext.data.degradation_options import DegradationOptions, degradation_options_of
from realesrgan_ext.data.image_io import to_bgr, to_float
from realesrgan_ext.tools.image_files import DataToolError


def read_option_file(path: str | Path) -> dict[str, Any]:
    """A YAML option file as a dict; errors name the file."""
    try:
        opt = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as err:
        raise DataToolError(f"{path}: cannot read the option file ({err})") from err
    if not isinstance(opt, dict):
        raise DataToolError(f"{path}: not an option file (a YAML mapping)")
    return opt


def degradation_of_file(path: str | Path) -> tuple[DegradationOptions, int]:
    """The pipeline settings and scale of an option file."""
    opt = read_option_file(path)
    try:
        return degradation_options_of(opt), int(opt.get("scale", 4))
    except ValueError as err:
        raise DataToolError(f"{path}: {err}") from err


def bgr_to_tensor(img: np.ndarray, source: str = "image") -> torch.Tensor:
    """Any decoded image as a ``(1, 3, H, W)`` RGB float tensor in [0, 1]."""
    rgb = to_float(to_bgr(img, source), source)[:, :, ::-1]
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None]


def tensor_to_bgr_uint8(img: torch.Tensor) -> np.ndarray:
    """A ``(1, 3, H, W)`` RGB tensor in [0, 1] as an 8-bit BGR image."""
    rgb = img[0].permute(1, 2, 0).clamp(0, 1).mul(255).round().to(torch.uint8).numpy()
    return np.ascontiguousarray(rgb[:, :, ::-1])


def pipeline_downscale(img: np.ndarray, options: DegradationOptions, scale: int, seed: int,
                       source: str = "image") -> np.ndarray:
    """8-bit BGR LR of exactly HR/scale made from ``img`` (sides multiples of ``scale``) by the pipeline."""
    from realesrgan_ext import compat

    compat.apply()  # the pipeline uses basicsr's primitives
    from realesrgan_ext.data.degradations import degrade

    try:
        lr = degrade(bgr_to_tensor(img, source), options, scale, seed=seed)
    except ValueError as err:
        raise DataToolError(f"{source}: {err}") from err
    return tensor_to_bgr_uint8(lr)


def image_seed(seed: int, rel_path: str) -> int:
    """A per-image seed from a base seed and the image's relative path (stable across runs and folders)."""
    return (seed * 1_000_003 + zlib.crc32(rel_path.encode("utf-8"))) % 2**32


@dataclass(frozen=True)
class PipelineDownscaler:
    """``make_lr_folder``'s ``downscale``: the pipeline with a per-image seed."""

    options: DegradationOptions
    seed: int = 0

    def __call__(self, img: np.ndarray, scale: int, source: str, rel_path: str) -> np.ndarray:
        return pipeline_downscale(img, self.options, scale, image_seed(self.seed, rel_path), source)


def make_pipeline_val_set(hr_dir: str | Path, out_dir: str | Path, options: DegradationOptions, scale: int,
                          copies: int = 4, seed: int = 0) -> int:
    """A paired validation set of pipeline-degraded LR: ``copies`` LR draws of every HR image.

    Writes ``out_dir/high_res/<stem>_d<k>.png`` (the HR, cropped to a multiple of ``scale``) and
    ``out_dir/low_res/<stem>_d<k>.png`` (its LR, seeded by ``seed`` and the name). Several draws
    per photo steady the score of a small set. Built in ``out_dir.partial`` and renamed when
    complete, so an interrupted run never leaves a finished-looking set. Returns the pair count.
    """
    import shutil

    from realesrgan_ext.data.image_io import read_image
    from realesrgan_ext.tools.bicubic_lr import mod_crop
    from realesrgan_ext.tools.image_files import list_images, strip_extension, write_png

    out_dir, hr_dir = Path(out_dir), Path(hr_dir)
    rels = list_images(hr_dir)
    if not rels:
        raise DataToolError(f"{hr_dir}: no image files found")
    partial = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    downscale = PipelineDownscaler(options, seed)
    for rel in rels:
        source = str(hr_dir / rel)
        hr = mod_crop(read_image(source), scale)
        for k in range(copies):
            name = f"{strip_extension(rel)}_d{k}.png"
            write_png(partial / "high_res" / name, hr, 3, source)
            write_png(partial / "low_res" / name, downscale(hr, scale, source, name), 3, source)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    partial.rename(out_dir)
    return len(rels) * copies
