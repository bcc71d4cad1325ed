"""HR photos alone for Real-ESRGAN training: crops, flips and per-image degradation kernels.

The LR is synthesised later, on the model's device, by ``data.degradations`` (a batched
tensor pipeline is much faster there than per image on the workers). This dataset does the
per-image part: decode, flip / rotate, crop (or reflect-pad) to ``crop_size``, and sample the
two blur kernels and the final sinc kernel from the ``degradation:`` section.
"""

from __future__ import annotations

import random
from typing import Any

import cv2
import numpy as np
from basicsr.data.transforms import augment
from basicsr.utils import img2tensor
from torch.utils.data import Dataset

from realesrgan_ext.data.degradation_kernels import sample_kernels
from realesrgan_ext.data.degradation_options import DegradationOptions, parse_degradation_options
from realesrgan_ext.data.degradations import min_hr_side
from realesrgan_ext.data.image_io import load_training_image
from realesrgan_ext.data.image_store import open_store
from realesrgan_ext.data.pairing import read_meta_info
from realesrgan_ext.registry import register_part

DEFAULT_CROP_SIZE = 400  # Real-ESRGAN's (hard-coded there): room for blur and resize before the gt_size crop


def crop_or_pad(img: np.ndarray, size: int) -> np.ndarray:
    """A random ``size`` x ``size`` window; smaller sides are first reflect-padded (bottom/right)."""
    h, w = img.shape[:2]
    if h < size or w < size:
        img = cv2.copyMakeBorder(img, 0, max(0, size - h), 0, max(0, size - w), cv2.BORDER_REFLECT_101)
    h, w = img.shape[:2]
    if h > size or w > size:
        top, left = random.randint(0, h - size), random.randint(0, w - size)
        img = img[top:top + size, left:left + size]
    return img


def list_keys(store, meta_info_file: str | None) -> list[str]:
    """Every HR key of the store, or those a meta-info file lists (each must exist)."""
    if not meta_info_file:
        keys = sorted(store.keys())
        if not keys:
            raise ValueError(f"no images found in {store.root}")
        return keys
    keys = [gt for gt, _ in read_meta_info(meta_info_file)]
    missing = sorted(set(keys) - set(store.keys()))
    if missing:
        raise FileNotFoundError(f"{meta_info_file}: {len(missing)} listed image(s) not in {store.root}, "
                                f"e.g. {missing[:5]}")
    return keys


@register_part("dataset")
class RealESRGANHRDataset(Dataset):
    """HR images (folder, ``.lmdb`` or a meta-info list) for on-the-fly Real-ESRGAN degradation.

    Options: ``dataroot_gt``, ``io_backend: {type: disk|lmdb}`` (auto by suffix),
    ``meta_info_file``, ``crop_size`` (default 400), ``gt_size`` (the training patch the model
    cuts after degrading; a multiple of ``scale``, at most ``crop_size``), ``use_hflip``,
    ``use_rot``, ``degradation`` (see ``degradation_options``). Returns ``{'gt', 'kernel1',
    'kernel2', 'sinc_kernel', 'gt_path'}``: RGB float ``gt`` in [0, 1], float32 kernels.
    """

    # Keys read beyond BasicSR's dataloader keys (checked by ``realesrgan_ext.option_validation``).
    option_keys = frozenset({"dataroot_gt", "io_backend", "meta_info_file", "crop_size", "gt_size", "use_hflip",
                             "use_rot", "degradation"})

    def __init__(self, opt: dict[str, Any]):
        self.opt = opt
        self.scale = int(opt.get("scale", 4))
        self.crop_size = int(opt.get("crop_size", DEFAULT_CROP_SIZE))
        gt_size = int(opt.get("gt_size", self.crop_size))
        if gt_size % self.scale or not 0 < gt_size <= self.crop_size:
            raise ValueError(f"gt_size must be a positive multiple of scale {self.scale} and at most crop_size "
                             f"{self.crop_size}, got {gt_size}")
        self.degradation = self.degradation_options(opt)
        smallest = min_hr_side(self.degradation, self.scale)
        if self.crop_size < smallest:
            raise ValueError(f"crop_size {self.crop_size} is too small for the degradation pipeline: at least "
                             f"{smallest} px with kernels up to {self.degradation.max_kernel_size} px")
        backend = (opt.get("io_backend") or {}).get("type", "auto")
        self.store = open_store(opt["dataroot_gt"], backend)
        self.keys = list_keys(self.store, opt.get("meta_info_file"))

    @classmethod
    def degradation_options(cls, opt: dict[str, Any]) -> DegradationOptions:
        """The kernels' settings: the ``degradation`` section (a subclass may read another layout)."""
        return parse_degradation_options(opt.get("degradation"), "datasets.train.degradation")

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, index: int) -> dict[str, Any]:
        key = self.keys[index]
        source = self.store.source(key)
        gt = load_training_image(self.store.read(key), source)
        gt = augment(gt, self.opt.get("use_hflip", True), self.opt.get("use_rot", False))
        gt = crop_or_pad(gt, self.crop_size)
        kernels = sample_kernels(self.degradation)
        gt_t = img2tensor([gt], bgr2rgb=True, float32=True)[0]
        return {"gt": gt_t.contiguous(), **kernels, "gt_path": source}
