"""Real-ESRGAN's second-order degradation pipeline on batched tensors, on any device.

HR -> [blur, random resize, noise, JPEG] -> [blur (maybe), random resize, noise] ->
[resize to HR/scale + sinc, JPEG] in random order -> rounded to 8 bits. A single-stage pipeline
(``second_order: false``) is HR -> [blur, random resize, noise] -> [resize + sinc, JPEG]. Every primitive is
basicsr's (``filter2D``, ``random_add_gaussian_noise_pt``, ``random_add_poisson_noise_pt``,
``DiffJPEG``); what this module adds is the sequence, as one function with no ``.cuda()``
(basicsr's ``RealESRGANModel`` hard-codes it inline). Random choices are drawn from Python's
``random``, ``np.random`` and torch's generator in the order basicsr's model draws them, so
the same seeds reproduce its LR exactly. ``seed`` makes one call reproducible without touching
the global random streams.
"""

from __future__ import annotations

import contextlib
import math
import random
from collections.abc import Iterator

import numpy as np
import torch
from torch.nn import functional as F

from realesrgan_ext.data.degradation_kernels import sample_kernel_batch
from realesrgan_ext.data.degradation_options import RESIZE_MODES, DegradationOptions, FinalOptions, StageOptions

KERNEL_KEYS = ("kernel1", "kernel2", "sinc_kernel")


@contextlib.contextmanager
def seeded(seed: int | None, device: torch.device | str = "cpu") -> Iterator[None]:
    """Seed ``random``, ``np.random`` and torch (CPU and ``device``) inside, restore them after.

    ``seed=None`` uses the global streams unchanged (training: BasicSR seeds them once).
    """
    if seed is None:
        yield
        return
    py_state, np_state = random.getstate(), np.random.get_state()
    cuda_devices = [torch.device(device)] if torch.device(device).type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=cuda_devices):
            random.seed(seed)
            np.random.seed(seed)
            torch.manual_seed(seed)
            yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


def make_jpeger(device: torch.device | str = "cpu") -> torch.nn.Module:
    """basicsr's batched JPEG simulator (non-differentiable rounding, as Real-ESRGAN), on ``device``."""
    from basicsr.utils import DiffJPEG

    return DiffJPEG(differentiable=False).to(device)


def blur(img: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Each image convolved with its own ``(K, K)`` kernel (reflect padding, size kept)."""
    from basicsr.utils.img_process_util import filter2D

    return filter2D(img.contiguous(), kernel)


def _draw_resize_factor(stage: StageOptions) -> float:
    updown = random.choices(["up", "down", "keep"], stage.resize_prob)[0]
    low, high = stage.resize_range
    if updown == "up":  # uniform in [1, high] (Real-ESRGAN), or [low, high] when low > 1
        return np.random.uniform(max(1.0, low), high)
    if updown == "down":  # uniform in [low, 1], or [low, high] when high < 1 (e.g. [0.25, 0.25]: exactly 1/4)
        return np.random.uniform(low, min(1.0, high))
    return 1.0


def random_resize(img: torch.Tensor, stage: StageOptions,
                  base_size: tuple[int, int] | None = None) -> torch.Tensor:
    """Resize by a random factor (up / down / keep) with a random mode (area, bilinear, bicubic).

    Without ``base_size`` the factor applies to the input; with it, the output is
    ``base_size x factor`` (the second round resizes relative to the target LR size).
    """
    factor = _draw_resize_factor(stage)
    mode = random.choice(RESIZE_MODES)
    if base_size is None:
        return F.interpolate(img, scale_factor=factor, mode=mode)
    size = (max(1, int(base_size[0] * factor)), max(1, int(base_size[1] * factor)))
    return F.interpolate(img, size=size, mode=mode)


def random_noise(img: torch.Tensor, stage: StageOptions) -> torch.Tensor:
    """Gaussian noise (with ``gaussian_noise_prob``) or Poisson noise, gray with ``gray_noise_prob``; clipped."""
    from basicsr.data.degradations import random_add_gaussian_noise_pt, random_add_poisson_noise_pt

    if np.random.uniform() < stage.gaussian_noise_prob:
        return random_add_gaussian_noise_pt(img, sigma_range=stage.noise_range, clip=True, rounds=False,
                                            gray_prob=stage.gray_noise_prob)
    return random_add_poisson_noise_pt(img, scale_range=stage.poisson_scale_range, gray_prob=stage.gray_noise_prob,
                                       clip=True, rounds=False)


def random_jpeg(img: torch.Tensor, jpeg_range: tuple[float, float], jpeger: torch.nn.Module) -> torch.Tensor:
    """JPEG at a random quality per image, drawn from ``jpeg_range`` (input clamped to [0, 1] first)."""
    quality = img.new_zeros(img.size(0)).uniform_(*jpeg_range)
    return jpeger(torch.clamp(img, 0, 1), quality=quality)


def degradation_round(img: torch.Tensor, kernel: torch.Tensor, stage: StageOptions, jpeger: torch.nn.Module,
                      base_size: tuple[int, int] | None = None, with_jpeg: bool = True,
                      draw_blur: bool = True) -> torch.Tensor:
    """One round: blur (with ``stage.blur_prob``), random resize, noise, then JPEG when ``with_jpeg``.

    ``draw_blur=False`` blurs without drawing a number (basicsr's first round); otherwise the draw
    is made even at probability 1, as basicsr's second round makes it, so the streams stay in step.
    """
    if not draw_blur or np.random.uniform() < stage.blur_prob:
        img = blur(img, kernel)
    img = random_noise(random_resize(img, stage, base_size), stage)
    return random_jpeg(img, stage.jpeg_range, jpeger) if with_jpeg else img


def final_step(img: torch.Tensor, sinc_kernel: torch.Tensor, final: FinalOptions, jpeg_range: tuple[float, float],
               lr_size: tuple[int, int], jpeger: torch.nn.Module) -> torch.Tensor:
    """Resize to ``lr_size`` + sinc filter, and JPEG, in a random order (other orders twist lines)."""

    def resize_and_sinc(x: torch.Tensor) -> torch.Tensor:
        return blur(F.interpolate(x, size=lr_size, mode=random.choice(RESIZE_MODES)), sinc_kernel)

    if np.random.uniform() < final.resize_sinc_first_prob:
        return random_jpeg(resize_and_sinc(img), jpeg_range, jpeger)
    return resize_and_sinc(random_jpeg(img, jpeg_range, jpeger))


def quantize(img: torch.Tensor) -> torch.Tensor:
    """Clamp to [0, 1] and round to 8-bit levels, as a saved LR image would be.

    ``abs`` turns the -0.0 that rounding a tiny negative gives into 0.0, so ``levels / 255`` is the
    result bit for bit (the training-pair pool saves it as uint8 levels).
    """
    return torch.clamp((img * 255.0).round(), 0, 255).abs() / 255.0


def min_hr_side(options: DegradationOptions, scale: int) -> int:
    """The smallest HR side the pipeline can take: every blur pads by half a kernel with reflection,
    so the image must stay wider than that after the first downscale and at LR size."""
    half = options.max_kernel_size // 2 + 1
    return max(math.ceil(half / options.first.resize_range[0]), half * scale)


def degrade(hr: torch.Tensor, options: DegradationOptions, scale: int,
            kernels: dict[str, torch.Tensor] | None = None, *, jpeger: torch.nn.Module | None = None,
            seed: int | None = None) -> torch.Tensor:
    """LR of exactly HR/scale made from ``hr`` (``(B, 3, H, W)`` RGB in [0, 1]) by the whole pipeline.

    ``kernels``: the dataset's per-image ``kernel1`` / ``kernel2`` / ``sinc_kernel``
    (``(B, K, K)``); sampled here when omitted. ``seed``: reproducible without changing the
    global random state. Runs on ``hr``'s device; returns float in [0, 1] on 8-bit levels.
    """
    b, _, h, w = hr.shape
    if h % scale or w % scale:
        raise ValueError(f"HR size {w}x{h} is not a multiple of the scale {scale}")
    if min(h, w) < min_hr_side(options, scale):
        raise ValueError(f"HR size {w}x{h} is too small for the degradation pipeline: sides of at least "
                         f"{min_hr_side(options, scale)} px are needed with kernels up to {options.max_kernel_size} "
                         f"px and a first downscale to {options.first.resize_range[0]}")
    jpeger = jpeger if jpeger is not None else make_jpeger(hr.device)
    with seeded(seed, hr.device):
        if kernels is None:
            kernels = sample_kernel_batch(options, b)
        k1, k2, sinc = (kernels[key].to(hr.device) for key in KERNEL_KEYS)
        lr_size = (h // scale, w // scale)
        # basicsr always blurs in round 1 (no draw); a first.blur_prob below 1 needs one
        out = degradation_round(hr, k1, options.first, jpeger, with_jpeg=options.second_order,
                                draw_blur=options.first.blur_prob < 1)
        if options.second_order:
            out = degradation_round(out, k2, options.second, jpeger, base_size=lr_size, with_jpeg=False)
        out = final_step(out, sinc, options.final, options.final_jpeg_range, lr_size, jpeger)
    return quantize(out)
