"""Real-ESRGAN's ``RealESRGANModel`` and ``RealESRNetModel``: its option files, run on this project's pipeline.

Option files written for Real-ESRGAN (``train_realesrnet_x4plus.yml``, ``finetune_realesrgan_x4plus.yml``
...) name these models and spell the pipeline with flat top-level keys (``resize_prob``,
``noise_range2``, ``queue_size``, ``gt_size``, ``l1_gt_usm`` ...). Each class here is
``RealESRGANSRModel`` reading those keys instead (``settings_of``): the same pipeline, pool and
training step, nothing implemented twice. basicsr registers its own copies only as
``RealESRGANModel_basicsr`` / ``RealESRNetModel_basicsr``, so the plain names are free.

Meaning, key by key as in Real-ESRGAN's code: ``MODEL_KEYS`` of ``data.realesrgan_flat_options``
(the first round unsuffixed, the second with ``2``); ``gt_size`` (the patch cut after degrading);
``queue_size`` (the pool, default 180); ``high_order_degradation`` (default true; false trains on
the LR a paired dataset gives). Sharpening: ``RealESRGANModel`` always degrades the sharpened HR,
and ``l1_gt_usm`` / ``percep_gt_usm`` / ``gan_gt_usm`` choose each loss's target;
``RealESRNetModel``'s ``gt_usm`` sharpens the HR for both (on paired data its targets stay
plain, as basicsr's ``SRModel`` step reads the unsharpened ``gt``). A key left out takes the
published value.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from realesrgan_ext.data.realesrgan_flat_options import MODEL_KEYS, flat_degradation_options, layout_error
from realesrgan_ext.models.realesrgan_sr_model import RealESRGANSRModel, SynthesisSettings
from realesrgan_ext.registry import register_part

# Real-ESRGAN's top-level keys besides the pipeline's, and what each replaces in this project's layout
LAYOUT_KEYS = {"gt_size": "datasets.train.gt_size", "queue_size": "train.pool_size",
               "high_order_degradation": None}


def _flag(opt: dict[str, Any], key: str) -> bool | None:
    value = opt.get(key)
    if value is not None and not isinstance(value, bool):
        raise layout_error(f"{key}: expected true or false, got {value!r}")
    return value


class RealESRGANLayoutModel(RealESRGANSRModel):
    """``RealESRGANSRModel`` reading Real-ESRGAN's flat keys (not registered: the two below are)."""

    # flag key -> the train.usm_sharpen entries it sets; and the entries set whatever the flags say
    usm_keys: dict[str, tuple[str, ...]] = {}
    usm_always: tuple[str, ...] = ()

    option_keys = {"": frozenset({*MODEL_KEYS, *LAYOUT_KEYS})}

    @classmethod
    def _layout_clashes(cls, opt: dict[str, Any]) -> None:
        """Each setting in one layout only: Real-ESRGAN's key or this project's, never both."""
        train = opt.get("train") or {}
        dataset = (opt.get("datasets") or {}).get("train") or {}
        ours = {"datasets.train.degradation": dataset.get("degradation") is not None,
                "train.pool_size": "pool_size" in train, "train.usm_sharpen": "usm_sharpen" in train}
        theirs = {"datasets.train.degradation": [k for k in opt if k in MODEL_KEYS],
                  "train.pool_size": [k for k in ("queue_size",) if k in opt],
                  "train.usm_sharpen": [k for k in cls.usm_keys if k in opt]}
        for nested, flat in theirs.items():
            if flat and ours[nested]:
                raise layout_error(f"{flat[0]} (Real-ESRGAN's layout) and {nested} (this project's) are both "
                                   f"set; keep one")

    @classmethod
    def settings_parts(cls, opt: dict[str, Any]) -> list[Callable[[], object]]:
        return [lambda: cls._layout_clashes(opt), lambda: flat_degradation_options(opt, MODEL_KEYS, ""),
                lambda: cls._usm_of(opt, {}, True), lambda: _flag(opt, "high_order_degradation"),
                *super().settings_parts(opt)]

    @classmethod
    def settings_of(cls, opt: dict[str, Any]) -> SynthesisSettings:
        cls._layout_clashes(opt)
        nested = super().settings_of(opt)
        high_order = _flag(opt, "high_order_degradation")
        synthesise = high_order is not False
        degradation = flat_degradation_options(opt, MODEL_KEYS, "") if any(k in opt for k in MODEL_KEYS) \
            else nested.degradation
        return SynthesisSettings(degradation=degradation, gt_size=opt.get("gt_size", nested.gt_size),
                                 pool_size=int(opt.get("queue_size", nested.pool_size)),
                                 usm_sharpen=cls._usm_of(opt, nested.usm_sharpen, synthesise), synthesise=synthesise)

    @classmethod
    def _usm_of(cls, opt: dict[str, Any], usm: dict[str, bool], synthesise: bool) -> dict[str, bool]:
        usm = dict(usm)
        for key, targets in cls.usm_keys.items():
            value = _flag(opt, key)
            if value is not None:
                usm.update(dict.fromkeys(targets, value))
        if "usm_sharpen" not in (opt.get("train") or {}):  # this project's section, when given, says it all
            usm.update(dict.fromkeys(cls.usm_always, True))
        return usm

    @classmethod
    def option_conflicts(cls, opt: dict[str, Any]) -> list[str]:
        problems = super().option_conflicts(opt)
        try:
            synthesise = cls.settings_of(opt).synthesise
        except ValueError:
            return problems  # already listed, each by its part
        paired = "dataroot_lq" in ((opt.get("datasets") or {}).get("train") or {})
        if synthesise and paired:
            problems.append(str(layout_error(
                "high_order_degradation: true (the default) synthesises LR from HR, but datasets.train gives LR "
                "(dataroot_lq); set high_order_degradation: False to train on it")))
        return problems


@register_part("model")
class RealESRGANModel(RealESRGANLayoutModel):
    """Real-ESRGAN's GAN stage by its name and keys; needs ``network_d``."""

    usm_keys = {"l1_gt_usm": ("pixel",), "percep_gt_usm": ("perceptual",), "gan_gt_usm": ("gan",)}
    usm_always = ("lr_input",)  # Real-ESRGAN degrades the sharpened HR whatever the flags say
    option_keys = {"": frozenset(usm_keys)}

    @classmethod
    def option_conflicts(cls, opt: dict[str, Any]) -> list[str]:
        problems = super().option_conflicts(opt)
        if not opt.get("network_d"):
            problems.append(str(layout_error("network_d: missing; RealESRGANModel trains a discriminator "
                                             "(RealESRNetModel is the stage without one)")))
        return problems


@register_part("model")
class RealESRNetModel(RealESRGANLayoutModel):
    """Real-ESRGAN's first (PSNR) stage by its name and keys: no discriminator."""

    usm_keys = {"gt_usm": ("lr_input", "pixel", "perceptual")}
    option_keys = {"": frozenset(usm_keys)}

    @classmethod
    def _usm_of(cls, opt: dict[str, Any], usm: dict[str, bool], synthesise: bool) -> dict[str, bool]:
        usm = super()._usm_of(opt, usm, synthesise)
        return usm if synthesise else dict.fromkeys(usm, False)  # paired: basicsr's SRModel step, plain gt

    @classmethod
    def option_conflicts(cls, opt: dict[str, Any]) -> list[str]:
        problems = super().option_conflicts(opt)
        if opt.get("network_d"):
            problems.append(str(layout_error("network_d: RealESRNetModel trains no discriminator; remove it, "
                                             "or use RealESRGANModel")))
        return problems
