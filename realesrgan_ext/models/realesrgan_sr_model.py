"""Real-ESRNet / Real-ESRGAN training: ``AdversarialSRModel`` fed with LR synthesised from HR photos.

Only the data side differs from ESRGAN, so this class overrides two hooks and nothing of the
training step: ``feed_data`` degrades each HR batch on the model's device
(``data.degradations``), cuts the ``gt_size`` training patch and passes it through the
training-pair pool; ``loss_targets`` gives each loss the USM-sharpened or the plain HR as
``train.usm_sharpen`` says. Without ``network_d`` it is Real-ESRNet (the PSNR stage), with one
it is Real-ESRGAN. A batch that already has ``lq`` (validation, paired data) is used as is.
The pool goes into the training state (``training_state_extras`` / ``resume_training``).

Where the targets are sharpened follows basicsr, stage by stage: Real-ESRNet (its
``RealESRNetModel``, ``gt_usm``) sharpens the whole HR crop, degrades it and cuts the patch from
the sharpened image, so the pool holds sharpened targets; Real-ESRGAN (its ``RealESRGANModel``)
sharpens the patch that comes out of the pool. ``settings_of`` reads the options; a subclass
reading another layout (``models/realesrgan_model.py``) overrides only that.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from basicsr.data.transforms import paired_random_crop
from basicsr.utils import USMSharp, get_root_logger

from realesrgan_ext.data.degradation_options import DegradationOptions, degradation_options_of
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


@dataclass(frozen=True)
class SynthesisSettings:
    """How the model makes its training pairs, whichever option layout said so."""

    degradation: DegradationOptions
    gt_size: int | None  # the patch cut after degrading; None: the whole crop
    pool_size: int
    usm_sharpen: dict[str, bool]  # lr_input, pixel, perceptual, gan
    synthesise: bool = True  # False: the batches bring their LR (Real-ESRGAN's high_order_degradation)


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
    def settings_of(cls, opt: dict[str, Any]) -> SynthesisSettings:
        """The synthesis settings of ``opt`` (``ValueError`` naming the key when one is wrong)."""
        train = opt.get("train") or {}
        return SynthesisSettings(degradation=degradation_options_of(opt),
                                 gt_size=((opt.get("datasets") or {}).get("train") or {}).get("gt_size"),
                                 pool_size=int(train.get("pool_size", DEFAULT_POOL_SIZE)),
                                 usm_sharpen=usm_sharpen_options(train.get("usm_sharpen")))

    @classmethod
    def settings_parts(cls, opt: dict[str, Any]) -> list[Callable[[], object]]:
        """The readers ``settings_of`` is made of, each on its own so a check reports every wrong key."""
        train = opt.get("train") or {}
        return [lambda: degradation_options_of(opt), lambda: usm_sharpen_options(train.get("usm_sharpen"))]

    @classmethod
    def option_conflicts(cls, opt: dict[str, Any]) -> list[str]:
        problems, unreadable = super().option_conflicts(opt), False
        for read in cls.settings_parts(opt):
            try:
                read()
            except ValueError as error:
                problems.append(str(error))
                unreadable = True
        if unreadable:
            return problems
        settings = cls.settings_of(opt)
        train, usm = opt.get("train") or {}, settings.usm_sharpen
        if not opt.get("network_d") and train.get("pixel_opt") and train.get("perceptual_opt") \
                and usm["pixel"] != usm["perceptual"]:
            problems.append("train.usm_sharpen: pixel and perceptual must agree without network_d (Real-ESRNet "
                            "sharpens the HR before cutting the patch, so the pool holds one target)")
        return problems

    def __init__(self, opt: dict[str, Any]):
        super().__init__(opt)
        self.settings = self.settings_of(opt)
        self.degradation, self.gt_size = self.settings.degradation, self.settings.gt_size
        self.usm_sharpen = self.settings.usm_sharpen
        # Real-ESRNet: the pool holds the sharpened HR (basicsr's RealESRNetModel, gt_usm)
        self.pooled_gt_sharpened = not opt.get("network_d") and any(
            self.usm_sharpen[USM_TARGET_OF_LOSS[name]] for name in getattr(self, "generator_losses", {}))
        self.gt_sharpened = False  # self.gt already is the sharpened target (set by feed_data)
        self.pool = TrainingPairPool(self.settings.pool_size)
        self.usm_sharpener = USMSharp().to(self.device)
        self.jpeger = make_jpeger(self.device)

    @torch.no_grad()
    def feed_data(self, data: dict[str, Any]) -> None:
        self.gt_sharpened = False
        if "lq" in data:
            super().feed_data(data)
            return
        if not self.settings.synthesise:
            raise ValueError("high_order_degradation: False trains on given LR, but the training batch has only "
                             "HR: use a paired dataset (RealESRGANPairedDataset, PairedLRHRDataset)")
        gt = data["gt"].to(self.device)
        sharpened = self.usm_sharpener(gt) if self.usm_sharpen["lr_input"] or self.pooled_gt_sharpened else None
        source = sharpened if self.usm_sharpen["lr_input"] else gt
        kernels = {key: data[key] for key in KERNEL_KEYS}
        lq = degrade(source, self.degradation, self.opt["scale"], kernels, jpeger=self.jpeger)
        target = sharpened if self.pooled_gt_sharpened else gt  # sharpened before cutting, as basicsr
        if self.gt_size:
            target, lq = paired_random_crop(target, lq, self.gt_size, self.opt["scale"])
        lq, self.gt = self.pool.exchange(lq, target)
        self.lq = lq.contiguous()
        self.gt_sharpened = self.pooled_gt_sharpened

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
        if self.gt_sharpened or not any(self.usm_sharpen[key] for key in USM_TARGET_OF_LOSS.values()):
            return super().loss_targets()
        with torch.no_grad():
            sharpened = self.usm_sharpener(self.gt)
        return {loss: sharpened if self.usm_sharpen[key] else self.gt for loss, key in USM_TARGET_OF_LOSS.items()}
