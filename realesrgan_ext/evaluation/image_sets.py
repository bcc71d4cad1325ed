"""The photos an evaluation scores: HR/LR pairs and real LR photos, checked before any model runs.

A *reference set* pairs every HR photo with an LR from one ``lr_sources`` source; with an LR
folder every HR side must be ``scale`` times its LR's, or at most ``scale - 1`` px more (the HR
is then cropped at the bottom/right, BasicSR's ``mod_crop``). A *real set* is LR photos alone
(no-reference scores). Sizes are read from the file headers first, so a wrong scale or an
over-large photo is reported before minutes of upscaling; a file that cannot be read is listed
in ``ImageSet.problems`` and the rest are still scored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from realesrgan_ext.evaluation.lr_sources import LrFolder, LrSource, make_lr, min_hr_side
from realesrgan_ext.evaluation.photos import EvaluationError, UnreadableImage, header_size, read_bgr8
from realesrgan_ext.tools.image_files import list_images, strip_extension

# Largest output (HR-sized) image scored; larger ones are reported, not scored. ST-LPIPS, the costly
# part, runs its AlexNet's first layer at full resolution: measured on 2 CPU cores, 1.0 GB more
# memory and 27 s per megapixel (1024^2: 1.9 GB peak in all, 2048^2: 5.1 GB, 78 s).
DEFAULT_MAX_PIXELS = 2048 * 2048


@dataclass(frozen=True)
class EvalImage:
    """One scored image: ``name`` (relative path without extension) and its files."""

    name: str
    lr_path: Path | None  # None: made from the HR
    hr_path: Path | None = None  # None: a real photo, no HR
    rel_path: str = ""  # the HR's path relative to its folder: seeds the degradation pipeline


@dataclass
class ImageSet:
    """The images to score, what they are, and the files left out (``(path, reason)``)."""

    kind: str  # "reference" or "real"
    images: list[EvalImage]
    description: str
    problems: list[tuple[str, str]] = field(default_factory=list)


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
    hr_root = _folder(hr_dir, "HR folder")
    hr_files = _by_stem(hr_root)
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
        images.append(EvalImage(stem, lr_path, hr_path, hr_path.relative_to(hr_root).as_posix()))
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


def load_pair(image: EvalImage, source: LrSource, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """(HR cropped to a multiple of ``scale``, LR) of a reference image, as 8-bit BGR."""
    from realesrgan_ext.tools.bicubic_lr import mod_crop

    hr = mod_crop(read_bgr8(image.hr_path), scale)
    if isinstance(source, LrFolder):
        lr = read_bgr8(image.lr_path)
    else:
        lr = make_lr(hr, source, scale, image.rel_path, str(image.hr_path))
    if lr.shape[0] * scale != hr.shape[0] or lr.shape[1] * scale != hr.shape[1]:
        raise UnreadableImage(image.lr_path or image.hr_path, f"decoded {lr.shape[1]}x{lr.shape[0]}, not HR/{scale} "
                                                              f"({hr.shape[1] // scale}x{hr.shape[0] // scale})")
    return hr, lr
