"""Real-ESRNet / Real-ESRGAN training: ``AdversarialSRModel`` fed with LR synthesised from HR photos.

Only the data side differs from ESRGAN, so this class overrides two hooks and nothing of the
training step: ``feed_data`` degrades each HR batch on the model's device
(``data.degradations``), cuts the ``gt_size`` training patch and passes it through the
training-pair pool; ``loss_targets`` gives each loss the USM-sharpened or the plain HR as
``train.usm_sharpen`` says. Without ``network_d`` it is Real-ESRNet (the PSNR stage), with one
it is Real-ESRGAN. A batch that already has ``lq`` (validation, paired data) is used as is.
The pool goes into the training state (``training_state_extras`` / ``resume_training``).
"""

from __future__ import annotations

from typing import Any

import torch
from basicsr.data.transforms import paired_random_crop
from basicsr.utils import USMSharp, get_root_logger

from realesrgan_ext.data.degradation_options import degradation_options_of
from realesrgan_ext.data.degradations import KERNEL_KEYS, degrade, make_jpeger
from realesrgan_ext.data.training_pair_pool import TrainingPairPool
from realesrgan_ext.models.adversarial_sr_model import AdversarialSRModel
from realesrgan_ext.registry import register_part

# train.usm_sharpen: which images are USM-sharpened (Real-ESRGAN's l1_gt_usm / percep_gt_usm / gan_gt_usm)
USM_DEFAULTS = {"lr_input": True, "pixel": True, "perceptual": True, "gan": False}
USM_TARGET_OF_LOSS = {"l_g_pix": "pixel", "l_g_percep": "perceptual", "gan": "gan"}
DEFAULT_POOL_SIZE = 180


def usm_sharpen_options(section: dict[str, Any] | None) -> dict[str, bool]:
    """``train.usm_sharpen`` with defaults; an unknown key is an error naming the allowed ones."""
    section = dict(section or {})
    unknown = sorted(set(section) - set(USM_DEFAULTS))
    if unknown:
        raise ValueError(f"train.usm_sharpen: unknown key(s) {', '.join(unknown)}; "
                         f"allowed: {', '.join(USM_DEFAULTS)}")
    return {key: bool(section.get(key, default)) for key, default in USM_DEFAULTS.items()}


@register_part("model")
class RealESRGANSRModel(AdversarialSRModel):
    """Generator (+ optional U-Net discriminator) trained on the second-order degradation pipeline.

    Options read besides ``AdversarialSRModel``'s: ``datasets.train.degradation`` and
    ``datasets.train.gt_size`` (the patch cut after degrading), ``train.pool_size`` (default
    180, a multiple of the batch size; 0 = off), ``train.usm_sharpen`` (``lr_input``,
    ``pixel``, ``perceptual``, ``gan``: default true, true, true, false as Real-ESRGAN); and
    ``path.pretrain_network_g`` may be ``realesrgan-x4plus`` (the bundled official generator).
    """

    option_keys = {"train": frozenset({"pool_size", "usm_sharpen"})}

    @classmethod
    def option_conflicts(cls, opt: dict[str, Any]) -> list[str]:
        problems = super().option_conflicts(opt)
        for check in (lambda: degradation_options_of(opt),
                      lambda: usm_sharpen_options((opt.get("train") or {}).get("usm_sharpen"))):
            try:
                check()
            except ValueError as error:
                problems.append(str(error))
        return problems

    def __init__(self, opt: dict[str, Any]):
        super().__init__(opt)
        train_dataset = (opt.get("datasets") or {}).get("train") or {}
        self.degradation = degradation_options_of(opt)
        self.gt_size = train_dataset.get("gt_size")
        self.usm_sharpen = usm_sharpen_options((opt.get("train") or {}).get("usm_sharpen"))
        self.pool = TrainingPairPool(int((opt.get("train") or {}).get("pool_size", DEFAULT_POOL_SIZE)))
        self.usm_sharpener = USMSharp().to(self.device)
        self.jpeger = make_jpeger(self.device)

    @torch.no_grad()
    def feed_data(self, data: dict[str, Any]) -> None:
        if "lq" in data:
            super().feed_data(data)
            return
        gt = data["gt"].to(self.device)
        source = self.usm_sharpener(gt) if self.usm_sharpen["lr_input"] else gt
        kernels = {key: data[key] for key in KERNEL_KEYS}
        lq = degrade(source, self.degradation, self.opt["scale"], kernels, jpeger=self.jpeger)
        if self.gt_size:
            gt, lq = paired_random_crop(gt, lq, self.gt_size, self.opt["scale"])
        lq, self.gt = self.pool.exchange(lq, gt)
        self.lq = lq.contiguous()

    def training_state_extras(self) -> dict[str, Any]:
        """``pools``: every process's training-pair pool, ``pools[rank]``, gathered to rank 0 (which
        writes the state), so a resume goes on with the pairs an uninterrupted run would draw."""
        pool = self.pool.state_dict()
        if not self.opt.get("dist"):
            return {"pools": [pool]}
        pools = [None] * self.opt["world_size"] if self.opt["rank"] == 0 else None
        torch.distributed.gather_object(pool, pools, dst=0)
        return {"pools": pools}

    def resume_training(self, resume_state: dict[str, Any]) -> None:
        """``AdversarialSRModel``'s resume, then this process's pool (``pools[rank]``).

        The pool starts empty, with a warning saying why, when the state has none (written before
        pools were saved), was saved by another number of processes, or for another ``pool_size``.
        """
        super().resume_training(resume_state)
        pools, world_size = resume_state.get("pools"), self.opt.get("world_size", 1)
        if pools is None:
            why = "the training state has none (saved before pools were)"
        elif len(pools) != world_size:
            why = f"the training state has the pools of {len(pools)} process(es), this run has {world_size}"
        else:
            try:
                self.pool.load_state_dict(pools[self.opt.get("rank", 0)], self.device)
            except ValueError as error:
                why = str(error)
            else:
                get_root_logger().info(f"Training-pair pool restored: {self.pool.filled} of {self.pool.size} pairs")
                return
        get_root_logger().warning(f"Training-pair pool starts empty: {why}")

    def loss_targets(self) -> dict[str, torch.Tensor]:
        if not any(self.usm_sharpen[key] for key in USM_TARGET_OF_LOSS.values()):
            return super().loss_targets()
        with torch.no_grad():
            sharpened = self.usm_sharpener(self.gt)
        return {loss: sharpened if self.usm_sharpen[key] else self.gt for loss, key in USM_TARGET_OF_LOSS.items()}
