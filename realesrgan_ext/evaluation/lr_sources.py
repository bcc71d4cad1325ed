"""Where the LR of an HR photo comes from: a folder, a seeded degradation pipeline, or bicubic.

* ``LrFolder``: a folder of LR images, paired with the HR by relative path without extension
  (``a/img.png`` with ``a/img.jpg``);
* ``Degraded``: Real-ESRGAN's degradation pipeline of an option file, seeded per image from the
  seed and the image's relative path (``tools/pipeline_lr.py``), so every run and every model
  sees the same LR, the one ``scripts/make_lr.py --degradation`` makes;
* ``Bicubic``: MATLAB's antialiased bicubic ``imresize`` (``tools/bicubic_lr.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from realesrgan_ext.data.degradation_options import DegradationOptions, parse_degradation_options
from realesrgan_ext.evaluation.photos import EvaluationError
from realesrgan_ext.tools.image_files import DataToolError


@dataclass(frozen=True)
class LrFolder:
    """LR images in ``path``, paired with the HR by relative path without extension."""

    path: Path

    def describe(self, scale: int) -> str:
        return f"LR images from {self.path} (x{scale})"


@dataclass(frozen=True)
class Degraded:
    """LR made by the degradation pipeline ``options``, seeded per image from ``seed`` and its path."""

    options: DegradationOptions
    source: str  # the option file, for the report
    seed: int = 0

    def describe(self, scale: int) -> str:
        return f"LR made by the degradation pipeline of {self.source}, seed {self.seed} (x{scale})"


@dataclass(frozen=True)
class Bicubic:
    """LR made by MATLAB's antialiased bicubic downscaling."""

    def describe(self, scale: int) -> str:
        return f"LR made by bicubic downscaling (MATLAB imresize, antialiased, x{scale})"


LrSource = LrFolder | Degraded | Bicubic


def degradation_of(path: str | Path) -> tuple[DegradationOptions, int | None]:
    """The pipeline of an option file and its ``scale`` (None when absent).

    Reads a top-level ``degradation:`` section (a file that only describes the photos' damage) or
    a training option file's ``datasets.train.degradation`` (the published x4plus recipe where that
    is absent, as training takes it). An impossible range is an error naming the file and the key.
    """
    from realesrgan_ext.tools.pipeline_lr import read_option_file

    opt = read_option_file(path)
    train = (opt.get("datasets") or {}).get("train")
    if "degradation" in opt:
        where, section = "degradation", opt["degradation"]
    elif isinstance(train, dict):
        where, section = "datasets.train.degradation", train.get("degradation")
    else:
        raise EvaluationError(f"{path}: no degradation to make the LR with: add a top-level 'degradation:' section "
                              f"(or give a training option file, with datasets.train)")
    try:
        options = parse_degradation_options(section, where)
    except ValueError as err:
        raise EvaluationError(f"{path}: {err}") from err
    scale = opt.get("scale")
    return options, (int(scale) if scale is not None else None)


def lr_source(lr: str | Path | None, degradation: str | Path | None, bicubic: bool,
              seed: int = 0) -> tuple[LrSource, int | None]:
    """The one LR source asked for, and the scale it states (a degradation option file's)."""
    given = [name for name, value in (("lr", lr), ("degradation", degradation), ("bicubic", bicubic)) if value]
    if len(given) != 1:
        raise EvaluationError(f"with HR photos give exactly one LR source (--lr DIR, --degradation FILE or "
                              f"--bicubic), got {', '.join(given) or 'none'}")
    if lr:
        return LrFolder(Path(lr)), None
    if degradation:
        options, scale = degradation_of(degradation)
        return Degraded(options, str(degradation), seed), scale
    return Bicubic(), None


def min_hr_side(source: LrSource, scale: int) -> int:
    """Smallest HR side that can be scored: ST-LPIPS's backbone after a ``scale`` px border cut, and
    what the degradation pipeline needs (its kernels and first downscale)."""
    from realesrgan_ext.metrics.stlpips_metric import MIN_SIZE

    smallest = MIN_SIZE["alex"] + 2 * scale
    if isinstance(source, Degraded):
        from realesrgan_ext import compat

        compat.apply()  # the pipeline uses basicsr's primitives
        from realesrgan_ext.data.degradations import min_hr_side as pipeline_min_side

        smallest = max(smallest, pipeline_min_side(source.options, scale))
    return smallest


def make_lr(hr: np.ndarray, source: Degraded | Bicubic, scale: int, rel_path: str, name: str) -> np.ndarray:
    """The LR of ``hr`` (8-bit BGR, sides multiples of ``scale``) by the pipeline or bicubic.

    The pipeline's seed comes from ``source.seed`` and the HR's path relative to its folder, as
    ``scripts/make_lr.py --degradation`` seeds it: both make the same LR. ``name`` is for errors.
    """
    from realesrgan_ext.tools.bicubic_lr import bicubic_downscale

    if isinstance(source, Bicubic):
        return bicubic_downscale(hr, scale, name)
    from realesrgan_ext.tools.pipeline_lr import image_seed, pipeline_downscale

    try:
        return pipeline_downscale(hr, source.options, scale, image_seed(source.seed, rel_path), name)
    except DataToolError as err:
        raise EvaluationError(str(err)) from err
