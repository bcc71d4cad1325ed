"""Cutting large images into overlapping crops (the BasicSR / Real-ESRGAN ``extract_subimages`` recipe).

Along each side the crop starts at ``0, step, 2*step, ...`` while the crop fits, plus one last
crop flush with the far edge when the rest (``length - last_end``) is larger than
``thresh_size``; with ``thresh_size=0`` every pixel is in at least one crop. Crops are written
as ``{stem}_s{index:03d}.png`` (index from 001, row by row, like BasicSR) into the same
subfolder as the source relative to the input folder.

A side shorter than ``crop_size`` is kept whole (``small="keep"``, the default: the crop spans
the whole side, so a 300x1000 image gives 300x480 crops), or the image is skipped
(``small="skip"``). Both cases are counted and listed in the result.

Paired mode (``input_lr``/``output_lr``/``scale``) crops LR and HR at consistent positions:
positions are laid out on the LR grid with ``crop_size/scale``, ``step/scale`` and
``thresh_size/scale``, and the HR crop is the LR crop times ``scale``, so every written pair
satisfies HR == LR * scale.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from multiprocessing import Pool
from pathlib import Path

from tqdm import tqdm

from realesrgan_ext.data.image_io import ImageReadError, read_image
from realesrgan_ext.tools.image_files import DataToolError, list_images, strip_extension, write_png

SMALL_POLICIES = ("keep", "skip")


def crop_positions(length: int, crop: int, step: int, thresh_size: int = 0) -> list[int]:
    """Start offsets of the crops along one side of ``length`` pixels ([0] when length <= crop)."""
    if crop < 1 or step < 1:
        raise ValueError(f"crop size and step must be positive, got {crop} and {step}")
    if length <= crop:
        return [0]
    positions = list(range(0, length - crop + 1, step))
    if length - (positions[-1] + crop) > thresh_size:
        positions.append(length - crop)
    return positions


def crop_boxes(height: int, width: int, crop: int, step: int, thresh_size: int = 0) -> list[tuple[int, int, int, int]]:
    """(top, left, crop height, crop width) of every crop, row by row: the order of the ``_sNNN`` index."""
    return [(top, left, min(crop, height), min(crop, width))
            for top in crop_positions(height, crop, step, thresh_size)
            for left in crop_positions(width, crop, step, thresh_size)]


@dataclass
class SubimageResult:
    images: int = 0
    crops: int = 0
    small_kept: list[str] = field(default_factory=list)  # images with a side < crop size, kept whole
    small_skipped: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Job:
    rel: str
    hr_path: str
    hr_out: str  # output path without the "_sNNN.png" ending
    lr_path: str | None
    lr_out: str | None
    crop: int
    step: int
    thresh_size: int
    scale: int
    small: str
    compress_level: int


def _extract_one(job: _Job) -> tuple[str, int, str | None, str | None]:
    """Crop one image (pair); returns (rel, crops written, 'small'|'skipped'|None, error)."""
    try:
        hr = read_image(job.hr_path)
        lr = read_image(job.lr_path) if job.lr_path else None
    except ImageReadError as err:
        return job.rel, 0, None, str(err)
    scale = job.scale if lr is not None else 1
    grid = lr if lr is not None else hr
    height, width = grid.shape[:2]
    if lr is not None and hr.shape[:2] != (height * scale, width * scale):
        return job.rel, 0, None, (f"{job.hr_path} is {hr.shape[1]}x{hr.shape[0]} but {job.lr_path} is "
                                  f"{width}x{height}: HR must be exactly {scale}x LR")
    crop, step, thresh = job.crop // scale, job.step // scale, job.thresh_size // scale
    small = "small" if min(height, width) < crop else None
    if small and job.small == "skip":
        return job.rel, 0, "skipped", None
    boxes = crop_boxes(height, width, crop, step, thresh)
    try:
        for index, (top, left, h, w) in enumerate(boxes, start=1):
            name = f"_s{index:03d}.png"
            write_png(job.hr_out + name, hr[top * scale:(top + h) * scale, left * scale:(left + w) * scale],
                      job.compress_level, job.hr_path)
            if lr is not None:
                write_png(job.lr_out + name, lr[top:top + h, left:left + w], job.compress_level, job.lr_path)
    except DataToolError as err:
        return job.rel, 0, None, str(err)
    return job.rel, len(boxes), small, None


def _pair_files(hr_dir: Path, lr_dir: Path) -> list[tuple[str, str]]:
    """(hr rel, lr rel) matched by path without extension; every image needs its partner."""
    hr = {strip_extension(rel): rel for rel in list_images(hr_dir)}
    lr = {strip_extension(rel): rel for rel in list_images(lr_dir)}
    if set(hr) != set(lr):
        raise DataToolError(f"{hr_dir} and {lr_dir} hold different images: only HR {sorted(set(hr) - set(lr))[:5]},"
                            f" only LR {sorted(set(lr) - set(hr))[:5]}")
    return [(hr[key], lr[key]) for key in sorted(hr)]


def extract_subimages(input_dir: str | Path, output_dir: str | Path, crop_size: int = 480, step: int = 240,
                      thresh_size: int = 0, *, workers: int = 1, compress_level: int = 3, small: str = "keep",
                      input_lr: str | Path | None = None, output_lr: str | Path | None = None, scale: int = 1,
                      progress: bool = True) -> SubimageResult:
    """Crop every image under ``input_dir`` (recursively) into ``output_dir``; see the module doc.

    An unreadable image stops the run with a ``DataToolError`` naming it.
    """
    if small not in SMALL_POLICIES:
        raise ValueError(f"small must be one of {SMALL_POLICIES}, got {small!r}")
    if crop_size < 1 or step < 1 or thresh_size < 0:
        raise DataToolError(f"need crop size >= 1, step >= 1, thresh size >= 0 "
                            f"(got {crop_size}, {step}, {thresh_size})")
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    if (input_lr is None) != (output_lr is None):
        raise DataToolError("paired mode needs both --input-lr and --output-lr")
    if input_lr is not None:
        if any(v % scale for v in (crop_size, step, thresh_size)):
            raise DataToolError(f"crop size, step and thresh size must be multiples of the scale {scale} "
                                f"(got {crop_size}, {step}, {thresh_size})")
        pairs = _pair_files(input_dir, Path(input_lr))
    else:
        pairs = [(rel, None) for rel in list_images(input_dir)]
    if not pairs:
        raise DataToolError(f"{input_dir}: no image files found")
    jobs = [_Job(rel=hr_rel, hr_path=str(input_dir / hr_rel), hr_out=str(output_dir / strip_extension(hr_rel)),
                 lr_path=str(Path(input_lr) / lr_rel) if lr_rel else None,
                 lr_out=str(Path(output_lr) / strip_extension(lr_rel)) if lr_rel else None,
                 crop=crop_size, step=step, thresh_size=thresh_size, scale=scale if lr_rel else 1, small=small,
                 compress_level=compress_level) for hr_rel, lr_rel in pairs]
    result = SubimageResult()
    pool = Pool(min(workers, len(jobs))) if workers > 1 and len(jobs) > 1 else None
    try:
        outcomes = pool.imap_unordered(_extract_one, jobs) if pool else map(_extract_one, jobs)
        for rel, crops, status, error in tqdm(outcomes, total=len(jobs), unit="img", desc="crop",
                                              disable=not progress):
            if error is not None:
                raise DataToolError(error)
            result.images += 1
            result.crops += crops
            if status == "small":
                result.small_kept.append(rel)
            elif status == "skipped":
                result.small_skipped.append(rel)
    finally:
        if pool is not None:
            pool.terminate()
    result.small_kept.sort()
    result.small_skipped.sort()
    return result
