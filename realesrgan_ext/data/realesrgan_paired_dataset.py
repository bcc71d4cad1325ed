"""Real-ESRGAN's ``RealESRGANPairedDataset``: its option section, read by ``PairedLRHRDataset``.

For fine-tuning on your own LR/HR pairs (``finetune_realesrgan_x4plus_pairdata.yml``). Real-ESRGAN's
``meta_info`` lists ``gt_path, lq_path`` per line, relative to ``dataroot_gt`` / ``dataroot_lq``;
``mean`` / ``std`` normalise both images after cropping. Everything else is ``PairedLRHRDataset``
(the same crop, flips and checks). basicsr registers its copy only as ``RealESRGANPairedDataset_basicsr``.
"""

from __future__ import annotations

from typing import Any

import torch

from realesrgan_ext.data.paired_lrhr_dataset import PairedLRHRDataset
from realesrgan_ext.data.realesrgan_dataset import RENAMED_KEYS, renamed_options
from realesrgan_ext.data.realesrgan_flat_options import INERT_DATASET_KEYS, check_inert_keys
from realesrgan_ext.registry import register_part

NORMALIZE_KEYS = ("mean", "std")


@register_part("dataset")
class RealESRGANPairedDataset(PairedLRHRDataset):
    """LR/HR pairs configured by Real-ESRGAN's keys (``meta_info``, optional ``mean`` / ``std``)."""

    option_keys = frozenset({*RENAMED_KEYS, *NORMALIZE_KEYS, "use_shuffle"})

    def __init__(self, opt: dict[str, Any]):
        where = f"datasets.{opt.get('phase', 'train')}"
        check_inert_keys(opt, {"use_shuffle": INERT_DATASET_KEYS["use_shuffle"]}, where)
        super().__init__(renamed_options(opt, RENAMED_KEYS, where))
        self.mean, self.std = (opt.get(key) for key in NORMALIZE_KEYS)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = super().__getitem__(index)
        if self.mean is not None or self.std is not None:  # torchvision's normalize, per channel
            mean = torch.as_tensor(self.mean if self.mean is not None else 0.0, dtype=torch.float32).view(-1, 1, 1)
            std = torch.as_tensor(self.std if self.std is not None else 1.0, dtype=torch.float32).view(-1, 1, 1)
            item["lq"], item["gt"] = (item[key].sub(mean).div(std) for key in ("lq", "gt"))
        return item
