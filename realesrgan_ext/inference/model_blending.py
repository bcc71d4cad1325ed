"""Network interpolation: one checkpoint between two of the same architecture.

ESRGAN's network interpolation blends every parameter, ``(1 - alpha) * A + alpha * B``: between
a PSNR-oriented model (faithful, smooth) and a GAN model (sharp, some artefacts) it gives a
smooth trade-off without training; Real-ESRGAN's denoise strength (``-dn``) is the same blend
between realesr-general-x4v3 and its ``wdn`` variant. Alpha 0 is A, alpha 1 is B.

    from realesrgan_ext.inference.model_blending import blend_checkpoints, load_blended_model

    model = load_blended_model("psnr.pth", "gan.pth", 0.3)   # a LoadedModel, ready for Upscaler
    torch.save(blend_checkpoints("psnr.pth", "gan.pth", 0.3), "blend.pth")

Both checkpoints must load (``model_loader.load_model``) as the same network: the same weight
names and shapes, and the same architecture settings (``global_skip``, ``resize_output``...,
which the weights alone do not show). Anything else is refused with ``BlendError`` naming both
files and the first difference.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from realesrgan_ext.archs.rrdb_arch import RRDBGenerator
from realesrgan_ext.inference.checkpoint_structure import check_structure, short_repr
from realesrgan_ext.inference.model_loader import (
    LoadedModel,
    ModelLoadError,
    extract_state_dict,
    load_model,
    read_checkpoint,
)
from realesrgan_ext.inference.model_size import check_weights
from realesrgan_ext.limits import Limits

# Checkpoint entries other than weights that describe the network; the blend keeps A's.
ARCH_RECORD_KEYS = ("arch", "resize_output", "scale")
BLEND_RECORD_KEY = "blend"  # {'a': file, 'b': file, 'alpha': float}: where a blended checkpoint came from


class BlendError(ModelLoadError):
    """Two checkpoints that cannot be blended (different networks, or a bad alpha)."""


def check_alpha(alpha: float) -> float:
    """``alpha`` as a float in [0, 1] (interpolation, not extrapolation), else ``BlendError``."""
    try:
        value = float(alpha)
    except (TypeError, ValueError) as err:
        raise BlendError(f"blend alpha must be a number from 0 to 1, got {alpha!r}") from err
    if not 0.0 <= value <= 1.0:
        raise BlendError(f"blend alpha must be from 0 (all A) to 1 (all B), got {value}")
    return value


def blend_state_dicts(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor], alpha: float,
                      names: tuple[str, str] = ("A", "B")) -> dict[str, torch.Tensor]:
    """``(1 - alpha) * a + alpha * b`` per floating-point tensor, in A's key order and dtypes.

    Computed in float32 (float64 stays float64), so alpha 0 gives A's and alpha 1 B's values
    exactly. Integer tensors (e.g. BatchNorm's ``num_batches_tracked``) must be equal and are
    copied. Raises ``BlendError`` naming ``names`` and the first key that is missing from one
    side or has another shape or kind.
    """
    alpha = check_alpha(alpha)
    _check_same_weights(a, b, names)
    blended = {}
    for key, ta in a.items():
        tb = b[key]
        if ta.is_floating_point():
            work = torch.promote_types(ta.dtype, torch.float32)
            mixed = (1.0 - alpha) * ta.detach().to(work) + alpha * tb.detach().to(work)
            blended[key] = mixed.to(ta.dtype)
        elif torch.equal(ta, tb):
            blended[key] = ta.detach().clone()
        else:
            raise BlendError(f"cannot blend {names[0]} and {names[1]}: {short_repr(key)} is a {ta.dtype} tensor that "
                             "differs between them (only floating-point weights are interpolated)")
    return blended


def blend_checkpoints(a: str | Path, b: str | Path, alpha: float, limits: Limits | None = None) -> dict[str, Any]:
    """The checkpoint of the blend of files ``a`` and ``b``, ready for ``torch.save``.

    ``{'params': blended weights, 'blend': {'a', 'b', 'alpha'}}`` plus A's architecture record
    (``arch``, ``resize_output``, ``scale``), so ``load_model``, BasicSR's ``load_network`` and
    spandrel read it as they read A. Raises ``BlendError`` for mismatched networks and
    ``ModelLoadError`` for a file that does not load (``limits``: as ``load_model``'s).
    """
    names = (str(a), str(b))
    alpha = check_alpha(alpha)
    limits = Limits.from_env()
    raws, states = [], []
    for path, name in zip((a, b), names, strict=True):  # bounded as load_model bounds them, before any arithmetic
        raw = read_checkpoint(path, limits)
        check_structure(raw, name, limits)
        states.append(extract_state_dict(raw, name))
        check_weights(states[-1], name, limits)
        raws.append(raw)
    raw_a = raws[0]
    state = blend_state_dicts(states[0], states[1], alpha, names)
    _check_same_architecture(load_model(a, limits=limits), load_model(b, limits=limits), names)
    records = {key: raw_a[key] for key in ARCH_RECORD_KEYS if key in raw_a}
    return {"params": state, **records, BLEND_RECORD_KEY: {"a": names[0], "b": names[1], "alpha": alpha}}


def load_blended_model(a: str | Path, b: str | Path, alpha: float, limits: Limits | None = None) -> LoadedModel:
    """The network between checkpoint files ``a`` and ``b`` (alpha 0: A, 1: B), loaded for inference.

    Alpha 0 and 1 load that file as it is. Raises ``BlendError`` / ``ModelLoadError`` as
    ``blend_checkpoints`` does.
    """
    alpha = check_alpha(alpha)
    if alpha in (0.0, 1.0):
        _check_same_architecture(load_model(a, limits=limits), load_model(b, limits=limits), (str(a), str(b)))
        return load_model(a if alpha == 0.0 else b, limits=limits)
    loaded = load_model(blend_checkpoints(a, b, alpha, limits), limits=limits)
    return replace(loaded, source=f"{a} blended with {b} (alpha {alpha:g})")


def parse_blend_spec(spec: str) -> tuple[str, float]:
    """``'B:ALPHA'`` (the ``--blend`` argument) -> ``('B', ALPHA)``; the last ``:`` splits, so paths may hold one."""
    model, sep, alpha = spec.rpartition(":")
    if not sep or not model:
        raise BlendError(f"--blend expects MODEL:ALPHA (e.g. gan.pth:0.3), got {spec!r}")
    return model, check_alpha(alpha)


def _check_same_weights(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor], names: tuple[str, str]) -> None:
    for key in [*a, *(k for k in b if k not in a)]:
        if key not in a or key not in b:
            has, lacks = (names[0], names[1]) if key in a else (names[1], names[0])
            raise BlendError(f"cannot blend {names[0]} and {names[1]}: not the same architecture; the first "
                             f"mismatched key {short_repr(key)} is in {has} but not in {lacks}")
        ta, tb = a[key], b[key]
        if ta.shape != tb.shape or ta.is_floating_point() != tb.is_floating_point():
            raise BlendError(f"cannot blend {names[0]} and {names[1]}: not the same architecture; the first "
                             f"mismatched key {short_repr(key)} is {ta.dtype} {tuple(ta.shape)} in {names[0]} and "
                             f"{tb.dtype} {tuple(tb.shape)} in {names[1]}")


def _check_same_architecture(a: LoadedModel, b: LoadedModel, names: tuple[str, str]) -> None:
    """Equal weights can still mean different networks (``global_skip``, ``resize_output``)."""
    desc_a, desc_b = _architecture(a), _architecture(b)
    for key in [*desc_a, *(k for k in desc_b if k not in desc_a)]:
        if desc_a.get(key) != desc_b.get(key):
            raise BlendError(f"cannot blend {names[0]} and {names[1]}: not the same architecture; {key} is "
                             f"{desc_a.get(key)!r} in {names[0]} and {desc_b.get(key)!r} in {names[1]}")
    _check_same_weights(a.module.state_dict(), b.module.state_dict(), names)


def _architecture(model: LoadedModel) -> dict[str, Any]:
    """What the network is: loader name, scale, channels and settings (RRDB's filled with the defaults)."""
    defaults = {}
    if model.name == "RRDB":
        defaults = {p.name: p.default for p in inspect.signature(RRDBGenerator).parameters.values()}
    return {"architecture": model.name, "scale": model.scale, "in_channels": model.in_channels,
            "out_channels": model.out_channels, **defaults, **model.settings}
