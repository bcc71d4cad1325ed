"""Paired LR/HR images for supervised super-resolution training and validation."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
from basicsr.data.transforms import augment
from basicsr.utils import img2tensor
from torch.utils.data import Dataset

from realesrgan_ext.data.image_io import load_training_image
from realesrgan_ext.data.image_store import FolderStore, ImageStore, open_store
from realesrgan_ext.data.pairing import pair_images
from realesrgan_ext.registry import register_part


def check_pair_sizes(gt: np.ndarray, lq: np.ndarray, scale: int, gt_source: str, lq_source: str) -> None:
    """Every LR must be exactly HR / scale; the error names the pair and both sizes."""
    h, w = gt.shape[:2]
    lh, lw = lq.shape[:2]
    if (lh * scale, lw * scale) != (h, w):
        raise ValueError(
            f"LR/HR size mismatch for x{scale}: HR {gt_source} is {w}x{h}, LR {lq_source} is {lw}x{lh} "
            f"(expected {w / scale:g}x{h / scale:g}). Re-make the LR with scripts/make_lr.py.")


def _header_size(path: str) -> tuple[int, int] | None:
    """(width, height) from the file's header (no decoding); None when PIL cannot tell."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            return img.size
    except (OSError, UnidentifiedImageError):
        return None


def check_folder_pair_sizes(gt_store: ImageStore, lq_store: ImageStore, pairs: list[tuple[str, str]],
                            scale: int, shown: int = 10) -> None:
    """Every LR of two folders is exactly HR / scale, read from the file headers when the dataset is
    built: a mismatch stops training before its first step (or, for a validation set, before hours
    of training end in a failed validation). The error lists the pairs (first ``shown``) and sizes."""
    if not (isinstance(gt_store, FolderStore) and isinstance(lq_store, FolderStore)):
        return  # an LMDB's images are checked as they are read (check_pair_sizes)
    bad = []
    for gt_key, lq_key in pairs:
        gt_size, lq_size = _header_size(gt_store.source(gt_key)), _header_size(lq_store.source(lq_key))
        if gt_size and lq_size and (lq_size[0] * scale, lq_size[1] * scale) != gt_size:
            bad.append(f"HR {gt_key} {gt_size[0]}x{gt_size[1]}, LR {lq_key} {lq_size[0]}x{lq_size[1]}")
    if bad:
        more = f"\n  ... and {len(bad) - shown} more" if len(bad) > shown else ""
        raise ValueError(f"{len(bad)} of {len(pairs)} LR/HR pairs in {gt_store.root} and {lq_store.root} do not "
                         f"match the scale x{scale} (each LR must be exactly HR / {scale}):\n  "
                         + "\n  ".join(bad[:shown]) + more
                         + "\nRe-make the LR with scripts/make_lr.py, or set the scale the pairs were made for.")


def paired_random_crop(gt: np.ndarray, lq: np.ndarray, gt_size: int, scale: int,
                       source: str) -> tuple[np.ndarray, np.ndarray]:
    """The same random region of both images: ``gt_size`` HR pixels, ``gt_size // scale`` LR pixels."""
    lq_size = gt_size // scale
    lh, lw = lq.shape[:2]
    if lh < lq_size or lw < lq_size:
        raise ValueError(f"{source}: HR {gt.shape[1]}x{gt.shape[0]} is smaller than gt_size {gt_size}")
    top, left = random.randint(0, lh - lq_size), random.randint(0, lw - lq_size)
    lq_crop = lq[top:top + lq_size, left:left + lq_size]
    gt_crop = gt[top * scale:(top + lq_size) * scale, left * scale:(left + lq_size) * scale]
    return gt_crop, lq_crop


@register_part("dataset")
class PairedLRHRDataset(Dataset):
    """LR/HR pairs from two folders, two LMDBs, or a meta-info file.

    Options (BasicSR style): ``dataroot_gt``, ``dataroot_lq`` (folders or ``*.lmdb``),
    ``io_backend: {type: disk|lmdb}`` (auto by suffix when omitted), ``meta_info_file``,
    ``filename_tmpl`` ('{}' = same names), ``scale``, ``phase``; for training ``gt_size``,
    ``use_hflip``, ``use_rot``. Returns BasicSR's ``{'lq', 'gt', 'lq_path', 'gt_path'}`` with
    RGB float tensors in [0, 1].
    """

    # The option keys it reads are found in its source (``realesrgan_ext.option_reads``).

    def __init__(self, opt: dict[str, Any]):
        self.opt = opt
        self.scale = int(opt["scale"])
        self.is_train = opt.get("phase", "train") == "train"
        self.gt_size = opt.get("gt_size")
        if self.is_train and (not self.gt_size or self.gt_size % self.scale):
            raise ValueError(f"gt_size must be a positive multiple of scale {self.scale}, got {self.gt_size}")
        backend = (opt.get("io_backend") or {}).get("type", "auto")
        self.gt_store = open_store(opt["dataroot_gt"], backend)
        self.lq_store = open_store(opt["dataroot_lq"], backend)
        self.pairs = pair_images(self.gt_store, self.lq_store, opt.get("filename_tmpl", "{}"),
                                 opt.get("meta_info_file"))
        check_folder_pair_sizes(self.gt_store, self.lq_store, self.pairs, self.scale)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, Any]:
        gt_key, lq_key = self.pairs[index]
        gt_source, lq_source = self.gt_store.source(gt_key), self.lq_store.source(lq_key)
        gt = load_training_image(self.gt_store.read(gt_key), gt_source)
        lq = load_training_image(self.lq_store.read(lq_key), lq_source)
        check_pair_sizes(gt, lq, self.scale, gt_source, lq_source)
        if self.is_train:
            gt, lq = paired_random_crop(gt, lq, self.gt_size, self.scale, gt_source)
            gt, lq = augment([gt, lq], self.opt.get("use_hflip", True), self.opt.get("use_rot", True))
        gt_t, lq_t = img2tensor([gt, lq], bgr2rgb=True, float32=True)
        return {"lq": lq_t.contiguous(), "gt": gt_t.contiguous(), "lq_path": lq_source, "gt_path": gt_source}


