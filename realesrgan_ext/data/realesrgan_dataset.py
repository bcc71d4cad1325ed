"""Real-ESRGAN's ``RealESRGANDataset``: its option section, read by ``RealESRGANHRDataset``.

Option files written for Real-ESRGAN name this dataset with flat kernel keys (``kernel_list``,
``sinc_prob2``, ``final_sinc_prob`` ... see ``data.realesrgan_flat_options.DATASET_KEYS``) and
``meta_info`` (a list of HR paths relative to ``dataroot_gt``, first word per line). This class
translates them and is otherwise ``RealESRGANHRDataset``: the same reading, flips, 400 px
crop-or-pad and kernel draws, in Real-ESRGAN's random order. basicsr registers its own copy only
as ``RealESRGANDataset_basicsr``.
"""

from __future__ import annotations

from typing import Any

from realesrgan_ext.data.degradation_options import DegradationOptions
from realesrgan_ext.data.realesrgan_flat_options import (
    DATASET_KEYS,
    INERT_DATASET_KEYS,
    check_inert_keys,
    flat_degradation_options,
    layout_error,
)
from realesrgan_ext.data.realesrgan_hr_dataset import RealESRGANHRDataset
from realesrgan_ext.registry import register_part

# Real-ESRGAN's dataset keys that name this project's: theirs -> ours
RENAMED_KEYS = {"meta_info": "meta_info_file"}


def renamed_options(opt: dict[str, Any], renamed: dict[str, str], where: str) -> dict[str, Any]:
    """``opt`` with Real-ESRGAN's names of ``renamed`` replaced by this project's (both set: an error)."""
    opt = dict(opt)
    for theirs, ours in renamed.items():
        if theirs in opt:
            if opt.get(ours) is not None:
                raise layout_error(f"{where}: {theirs} (Real-ESRGAN's name) and {ours} (this project's) are both set")
            opt[ours] = opt.pop(theirs)
    return opt


@register_part("dataset")
class RealESRGANDataset(RealESRGANHRDataset):
    """HR images with per-image kernels, configured by Real-ESRGAN's flat keys."""

    option_keys = frozenset({*DATASET_KEYS, *INERT_DATASET_KEYS, *RENAMED_KEYS})

    def __init__(self, opt: dict[str, Any]):
        where = f"datasets.{opt.get('phase', 'train')}"
        check_inert_keys(opt, INERT_DATASET_KEYS, where)
        super().__init__(renamed_options(opt, RENAMED_KEYS, where))

    @classmethod
    def degradation_options(cls, opt: dict[str, Any]) -> DegradationOptions:
        """From the flat kernel keys; with the nested ``degradation`` section too, an error."""
        where = f"datasets.{opt.get('phase', 'train')}"
        flat = [key for key in opt if key in DATASET_KEYS]
        if flat and opt.get("degradation") is not None:
            raise layout_error(f"{where}: {flat[0]} (Real-ESRGAN's layout) and degradation (this project's) "
                               f"are both set; keep one")
        return flat_degradation_options(opt, DATASET_KEYS, where) if flat else super().degradation_options(opt)
