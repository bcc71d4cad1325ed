"""The photos an evaluation scores: HR/LR pairs and real LR photos, checked before any model runs.

A *reference set* pairs every HR photo with an LR, which comes from one of three stated sources:

* ``LrFolder``: a folder of LR images, paired with the HR by relative path without extension
  (``a/img.png`` with ``a/img.jpg``); every HR side must be ``scale`` times its LR's, or at most
  ``scale - 1`` px more (the HR is then cropped at the bottom/right, BasicSR's ``mod_crop``);
* ``Degraded``: Real-ESRGAN's degradation pipeline of an option file, seeded per image from the
  seed and the image's name (``tools/pipeline_lr.py``), so every run and every model sees the same LR;
* ``Bicubic``: MATLAB's antialiased bicubic ``imresize`` (``tools/bicubic_lr.py``).

A *real set* is LR photos alone (no-reference scores). Sizes are read from the file headers
first, so a wrong scale or an over-large photo is reported before minutes of upscaling; a file
that cannot be read is listed in ``ImageSet.problems`` and the rest are still scored.

Images are scored as 8-bit BGR (BasicSR's metric convention): gray is replicated, alpha
dropped, 16-bit rounded to 8-bit; EXIF orientation is applied (as the image CLI does).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from realesrgan_ext.data.degradation_options import DegradationOptions, parse_degradation_options
from realesrgan_ext.data.image_io import ImageReadError
from realesrgan_ext.tools.image_files import DataToolError, list_images, strip_extension

# Largest output (HR-sized) image scored; larger ones are reported, not scored. ST-LPIPS, the costly
# part, runs its AlexNet's first layer at full resolution: measured on 2 CPU cores, 1.0 GB more
# memory and 27 s per megapixel (1024^2: 1.9 GB peak in all, 2048^2: 5.1 GB, 78 s).
DEFAULT_MAX_PIXELS = 2048 * 2048
_EXIF_ORIENTATION = 0x0112
_TRANSPOSED = (5, 6, 7, 8)  # EXIF orientations that swap width and height


class EvaluationError(ValueError):
    """The evaluation cannot start; the message names the file(s) or option and what to do."""


class UnreadableImage(ValueError):
    """One file that cannot be scored (``path``, ``reason``); the others still are."""

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = str(path), reason


@dataclass(frozen=True)
class LrFolder:
    """LR images in ``path``, paired with the HR by relative path without extension."""

    path: Path

    def describe(self, scale: int) -> str:
        return f"LR images from {self.path} (x{scale})"


@dataclass(frozen=True)
class Degraded:
    """LR made by the degradation pipeline ``options``, seeded per image from ``seed`` and its name."""

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


@dataclass(frozen=True)
class EvalImage:
    """One scored image: ``name`` (relative path without extension) and its files."""

    name: str
    lr_path: Path | None  # None: made from the HR
    hr_path: Path | None = None  # None: a real photo, no HR


@dataclass
class ImageSet:
    """The images to score, what they are, and the files left out (``(path, reason)``)."""

    kind: str  # "reference" or "real"
    images: list[EvalImage]
    description: str
    problems: list[tuple[str, str]] = field(default_factory=list)


def degradation_of(path: str | Path) -> tuple[DegradationOptions, int | None]:
    """The pipeline of an option file and its ``scale`` (None when absent).

    Reads ``datasets.train.degradation`` (a training option file) or a top-level ``degradation:``
    section (a file that only describes the photos' damage); an impossible range is an error
    naming the file and the key.
    """
    from realesrgan_ext.tools.pipeline_lr import read_option_file

    opt = read_option_file(path)
    train = (opt.get("datasets") or {}).get("train") or {}
    where, section = ("degradation", opt["degradation"]) if "degradation" in opt else \
        ("datasets.train.degradation", train.get("degradation"))
    try:
        options = parse_degradation_options(section, where)
    except ValueError as err:
        raise EvaluationError(f"{path}: {err}") from err
    scale = opt.get("scale")
    return options, (int(scale) if scale is not None else None)


def header_size(path: Path) -> tuple[int, int]:
    """(height, width) as displayed, read from the file's header without decoding the pixels."""
    try:
        with Image.open(path) as im:
            width, height = im.size
            orientation = int(im.getexif().get(_EXIF_ORIENTATION, 1) or 1)
    except Image.DecompressionBombError as err:
        raise UnreadableImage(path, str(err)) from err
    except (OSError, SyntaxError, ValueError) as err:
        raise UnreadableImage(path, "not a readable image (corrupt, truncated or unknown format)") from err
    return (width, height) if orientation in _TRANSPOSED else (height, width)


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


def _by_stem(root: Path) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for rel in list_images(root):
        stem = strip_extension(rel)
        if stem in files:
            raise EvaluationError(f"{root}: two images named {stem} ({files[stem].name}, {Path(rel).name}); "
                                  f"rename one, they would be paired with the same HR")
        files[stem] = root / rel
    return files


def _folder(path: str | Path, what: str) -> Path:
    path = Path(path)
    if not path.is_dir():
        raise EvaluationError(f"{what} {path}: not a folder")
    return path


def _folder_scale(hr_files: dict[str, Path], lr_files: dict[str, Path]) -> int:
    """The scale of the first pair whose headers read (unreadable files are reported later)."""
    for stem, hr in hr_files.items():
        try:
            return infer_scale(hr, lr_files[stem])
        except UnreadableImage:
            continue
    raise EvaluationError("no LR/HR pair could be read to find the scale; give --scale")


def infer_scale(hr: Path, lr: Path) -> int:
    """The integer HR/LR size ratio of one pair (both sides must agree)."""
    (hh, hw), (lh, lw) = header_size(hr), header_size(lr)
    scale = hh // max(lh, 1)
    if scale < 1 or hw // max(lw, 1) != scale:
        raise EvaluationError(f"{hr} ({hw}x{hh}) and {lr} ({lw}x{lh}): no integer scale fits both sides; "
                              f"give --scale")
    return scale


def plan_reference_set(hr_dir: str | Path, source: LrSource, scale: int | None,
                       max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[ImageSet, int]:
    """The HR/LR pairs to score and the scale (given, or inferred from the first LR folder pair)."""
    hr_files = _by_stem(_folder(hr_dir, "HR folder"))
    if not hr_files:
        raise EvaluationError(f"HR folder {hr_dir}: no images found")
    lr_files: dict[str, Path] = {}
    if isinstance(source, LrFolder):
        lr_files = _by_stem(_folder(source.path, "LR folder"))
        missing = sorted(set(hr_files) - set(lr_files))
        if missing:
            shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
            raise EvaluationError(f"LR folder {source.path}: no LR image for {len(missing)} HR image(s) of "
                                  f"{hr_dir}: {shown} (LR files are paired by name without extension)")
    if scale is None:
        if not isinstance(source, LrFolder):
            raise EvaluationError("no scale: give --scale (or a scale in the degradation option file)")
        scale = _folder_scale(hr_files, lr_files)
    if scale < 1:
        raise EvaluationError(f"scale must be >= 1, got {scale}")
    images, problems, mismatched = [], [], []
    for stem, hr_path in hr_files.items():
        lr_path = lr_files.get(stem)
        try:
            hh, hw = header_size(hr_path)
            expected = (hh // scale, hw // scale)
            if lr_path is not None and header_size(lr_path) != expected:
                lh, lw = header_size(lr_path)
                mismatched.append(f"{lr_path} is {lw}x{lh}; {hr_path} ({hw}x{hh}) at x{scale} needs "
                                  f"{expected[1]}x{expected[0]}")
                continue
        except UnreadableImage as err:
            problems.append((err.path, err.reason))
            continue
        reason = _size_problem(hh, hw, scale, min_hr_side(source, scale), max_pixels)
        if reason:
            problems.append((str(hr_path), reason))
            continue
        images.append(EvalImage(stem, lr_path, hr_path))
    if mismatched:
        shown = "\n  ".join(mismatched[:10]) + (f"\n  ... and {len(mismatched) - 10} more" if len(mismatched) > 10
                                                else "")
        raise EvaluationError(f"{len(mismatched)} LR/HR pair(s) do not match the scale {scale}:\n  {shown}\n"
                              f"give the right --scale, or remake the LR (scripts/make_lr.py)")
    return ImageSet("reference", images, source.describe(scale), problems), scale


def _size_problem(height: int, width: int, scale: int, smallest: int, max_pixels: int) -> str | None:
    if min(height, width) < smallest:
        return f"{width}x{height} is too small to score at x{scale} (at least {smallest} px a side)"
    if height * width > max_pixels:
        return (f"{width}x{height} is larger than the {max_pixels / 1e6:.1f} MP bound; crop it or raise "
                f"--max-megapixels")
    return None


def plan_real_set(real_dir: str | Path, scale: int, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageSet:
    """Real LR photos (no HR), each to be upscaled ``scale`` times and scored without reference."""
    images, problems = [], []
    for stem, path in _by_stem(_folder(real_dir, "real photo folder")).items():
        try:
            height, width = header_size(path)
        except UnreadableImage as err:
            problems.append((err.path, err.reason))
            continue
        if height * width * scale * scale > max_pixels:
            problems.append((str(path), f"{width}x{height} at x{scale} is larger than the {max_pixels / 1e6:.1f} MP "
                                        f"bound; crop it or raise --max-megapixels"))
            continue
        images.append(EvalImage(stem, path))
    if not images and not problems:
        raise EvaluationError(f"real photo folder {real_dir}: no images found")
    return ImageSet("real", images, f"real low-resolution photos from {real_dir} (x{scale}, no HR)", problems)


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


def load_pair(image: EvalImage, source: LrSource, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """(HR cropped to a multiple of ``scale``, LR) of a reference image, as 8-bit BGR."""
    from realesrgan_ext.tools.bicubic_lr import bicubic_downscale, mod_crop

    hr = mod_crop(read_bgr8(image.hr_path), scale)
    source_name = str(image.hr_path)
    if isinstance(source, LrFolder):
        lr = read_bgr8(image.lr_path)
    elif isinstance(source, Degraded):
        from realesrgan_ext.tools.pipeline_lr import image_seed, pipeline_downscale

        try:
            lr = pipeline_downscale(hr, source.options, scale, image_seed(source.seed, image.name), source_name)
        except DataToolError as err:
            raise EvaluationError(str(err)) from err
    else:
        lr = bicubic_downscale(hr, scale, source_name)
    if lr.shape[0] * scale != hr.shape[0] or lr.shape[1] * scale != hr.shape[1]:
        raise UnreadableImage(image.lr_path or source_name, f"decoded {lr.shape[1]}x{lr.shape[0]}, not HR/{scale} "
                                                            f"({hr.shape[1] // scale}x{hr.shape[0] // scale})")
    return hr, lr
