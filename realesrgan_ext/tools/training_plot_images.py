"""Validation images of an experiment: LR/HR pairs from its option file, SR images BasicSR saved.

BasicSR copies the option YAML into ``experiments/NAME/``; its ``datasets: val*`` entries name
``dataroot_gt`` / ``dataroot_lq`` folders (relative paths are taken from the experiment root,
then from the working directory). With ``val.save_img: true``, ``SRModel.nondist_validation``
writes ``visualization/<img_name>/<img_name>_<iter>.png`` where ``img_name`` is the LQ file's
stem. Images are compared the way BasicSR validates: uint8, HR cut to ``scale`` times the LR
size, with the ``crop_border`` / ``test_y_channel`` of the option file's ``val.metrics``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml

from realesrgan_ext.data.image_io import read_image, to_bgr, to_float

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
BASELINE_METRICS = {"calculate_psnr", "calculate_ssim"}  # full-reference metrics the baseline repeats


@dataclass
class ValImage:
    """One validation pair; ``name`` is the stem BasicSR names its saved SR images by."""

    name: str
    hr_path: Path
    lr_path: Path | None  # None: the dataset makes LR on the fly; bicubic-downscaled HR stands in


@dataclass
class ValSet:
    name: str
    images: list[ValImage]
    scale: int
    metric_opts: dict[str, dict[str, Any]] = field(default_factory=dict)  # val.metrics of the option file


def load_options(exp_dir: str | Path) -> dict[str, Any] | None:
    """The option file BasicSR copied into the experiment folder (newest one naming datasets)."""
    files = sorted(Path(exp_dir).glob("*.yml"), key=lambda p: p.stat().st_mtime, reverse=True)
    for path in files + sorted(Path(exp_dir).glob("*.yaml")):
        opt = yaml.safe_load(path.read_text(encoding="utf-8"))
        if isinstance(opt, dict) and isinstance(opt.get("datasets"), dict):
            return opt
    return None


def _resolve(folder: str | None, root: Path) -> Path | None:
    if not folder:
        return None
    path = Path(folder).expanduser()
    for candidate in ((path,) if path.is_absolute() else (root / path, path)):
        if candidate.is_dir():
            return candidate
    return None


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)


def validation_sets(opt: dict[str, Any], root: str | Path) -> list[ValSet]:
    """The ``datasets: val*`` entries of ``opt`` whose folders exist, GT matched to LQ by stem."""
    root = Path(root)
    scale = int(opt.get("scale") or (opt.get("network_g") or {}).get("upscale") or 4)
    metric_opts = (opt.get("val") or {}).get("metrics") or {}
    sets = []
    for phase, dopt in opt["datasets"].items():
        if not phase.startswith("val") or not isinstance(dopt, dict):
            continue
        gt_dir = _resolve(dopt.get("dataroot_gt"), root)
        if gt_dir is None:
            continue
        lq_dir = _resolve(dopt.get("dataroot_lq"), root)
        tmpl = dopt.get("filename_tmpl", "{}")
        lq_by_stem = {p.stem: p for p in _images(lq_dir)} if lq_dir else {}
        images = []
        for gt in _images(gt_dir):
            stem = tmpl.format(gt.stem)
            if lq_dir is None:
                images.append(ValImage(gt.stem, gt, None))
            elif stem in lq_by_stem:
                images.append(ValImage(stem, gt, lq_by_stem[stem]))
        if images:
            sets.append(ValSet(str(dopt.get("name", phase)), images, scale, dict(metric_opts)))
    return sets


def experiment_val_sets(exp_dir: str | Path) -> list[ValSet]:
    """``validation_sets`` of the experiment's copied option file; [] without one."""
    exp_dir = Path(exp_dir).resolve()
    opt = load_options(exp_dir)
    return validation_sets(opt, exp_dir.parent.parent) if opt else []


def read_uint8(path: str | Path) -> np.ndarray:
    """HxWx3 BGR uint8, as BasicSR's ``tensor2img`` makes it from a [0, 1] float image."""
    return np.round(to_float(to_bgr(read_image(path), str(path)), str(path)) * 255.0).astype(np.uint8)


@dataclass
class Pair:
    lr: np.ndarray  # uint8 BGR
    hr: np.ndarray  # uint8 BGR, cut to scale * LR size like PairedImageDataset does for validation
    bicubic: np.ndarray  # uint8 BGR, LR resized to HR size with cv2.INTER_CUBIC


def load_pair(image: ValImage, scale: int) -> Pair:
    hr = read_uint8(image.hr_path)
    if image.lr_path is not None:
        lr = read_uint8(image.lr_path)
    else:
        h, w = hr.shape[0] // scale, hr.shape[1] // scale
        lr = np.round(np.clip(cv2.resize(hr.astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC), 0, 255))
        lr = lr.astype(np.uint8)
    hr = hr[: lr.shape[0] * scale, : lr.shape[1] * scale]
    bic = cv2.resize(lr.astype(np.float32) / 255.0, (lr.shape[1] * scale, lr.shape[0] * scale),
                     interpolation=cv2.INTER_CUBIC)
    bicubic = np.round(np.clip(bic, 0, 1) * 255.0).astype(np.uint8)
    return Pair(lr, hr, bicubic)


def sr_checkpoints(exp_dir: str | Path, name: str) -> dict[int, Path]:
    """``{iteration: path}`` of the SR images BasicSR saved for validation image ``name``."""
    folder = Path(exp_dir) / "visualization" / name
    pattern = re.compile(rf"{re.escape(name)}_(\d+)$")
    found = {}
    if folder.is_dir():
        for path in folder.glob(f"{name}_*.png"):
            if m := pattern.match(path.stem):
                found[int(m.group(1))] = path
    return dict(sorted(found.items()))


def image_metric(img: np.ndarray, hr: np.ndarray, metric_opt: dict[str, Any]) -> float:
    """One full-reference metric of ``img`` against ``hr`` (uint8 BGR), through basicsr's registry."""
    from realesrgan_ext import compat

    compat.apply()  # basicsr imports only once patched
    from basicsr.metrics import calculate_metric

    return float(calculate_metric({"img": img, "img2": hr}, dict(metric_opt)))


def psnr_opt(val_set: ValSet) -> dict[str, Any]:
    """The option file's PSNR settings (its ``crop_border`` / ``test_y_channel``), else BasicSR's usual ones."""
    for opt in val_set.metric_opts.values():
        if opt.get("type") == "calculate_psnr":
            return opt
    return {"type": "calculate_psnr", "crop_border": val_set.scale, "test_y_channel": False}


def bicubic_baseline(val_sets: list[ValSet]) -> dict[str, dict[str, float]]:
    """Mean bicubic score per val set and metric (only PSNR and SSIM), settings from the option file.

    PSNR is always computed, with ``psnr_opt`` when the option file names no PSNR metric.
    """
    baseline: dict[str, dict[str, float]] = {}
    for vs in val_sets:
        opts = {name: o for name, o in vs.metric_opts.items() if o.get("type") in BASELINE_METRICS}
        if not any(o["type"] == "calculate_psnr" for o in opts.values()):
            opts["psnr"] = psnr_opt(vs)
        sums = dict.fromkeys(opts, 0.0)
        for image in vs.images:
            pair = load_pair(image, vs.scale)
            for name, opt in opts.items():
                sums[name] += image_metric(pair.bicubic, pair.hr, opt)
        baseline[vs.name] = {name: total / len(vs.images) for name, total in sums.items()}
    return baseline
