"""Per-image blur and sinc kernels of Real-ESRGAN's pipeline, sampled with basicsr's primitives.

The dataset calls ``sample_kernels`` for every HR crop on the DataLoader workers (kernel
synthesis is numpy work, cheap on CPU); the model then applies them on its device. Every
kernel is zero-padded to ``max_kernel_size`` so a batch stacks, and sums to 1. The draws use
Python's ``random`` and ``np.random`` in the order of basicsr's ``RealESRGANDataset``, so the
same seeds give the same kernels as there.
"""

from __future__ import annotations

import math
import random

import numpy as np
import torch

from realesrgan_ext.data.degradation_options import BlurOptions, DegradationOptions


def _sinc_cutoff(kernel_size: int) -> float:
    """Real-ESRGAN's cutoff range: small kernels cannot hold the lowest cutoffs without truncation."""
    return np.random.uniform(np.pi / 3, np.pi) if kernel_size < 13 else np.random.uniform(np.pi / 5, np.pi)


def _pad_to(kernel: np.ndarray, size: int) -> np.ndarray:
    pad = (size - kernel.shape[0]) // 2
    return np.pad(kernel, ((pad, pad), (pad, pad)))


def sample_blur_kernel(blur: BlurOptions, kernel_sizes: list[int], pad_to: int) -> np.ndarray:
    """One blur kernel: a circular low-pass (sinc) with ``blur.sinc_prob``, else a random mixed kernel."""
    from basicsr.data.degradations import circular_lowpass_kernel, random_mixed_kernels

    kernel_size = random.choice(kernel_sizes)
    if np.random.uniform() < blur.sinc_prob:
        kernel = circular_lowpass_kernel(_sinc_cutoff(kernel_size), kernel_size, pad_to=False)
    else:
        kernel = random_mixed_kernels(list(blur.kernel_list), list(blur.kernel_prob), kernel_size,
                                      blur.blur_sigma, blur.blur_sigma, [-math.pi, math.pi],
                                      blur.betag_range, blur.betap_range, noise_range=None)
    return _pad_to(kernel, pad_to)


def identity_kernel(size: int) -> np.ndarray:
    """A centred unit impulse: filtering with it changes nothing."""
    kernel = np.zeros((size, size))
    kernel[size // 2, size // 2] = 1
    return kernel


def sample_final_sinc_kernel(options: DegradationOptions) -> np.ndarray:
    """The final sinc kernel with ``final.sinc_prob``, else the identity."""
    from basicsr.data.degradations import circular_lowpass_kernel

    if np.random.uniform() < options.final.sinc_prob:
        kernel_size = random.choice(options.kernel_sizes)
        omega_c = np.random.uniform(np.pi / 3, np.pi)
        return circular_lowpass_kernel(omega_c, kernel_size, pad_to=options.max_kernel_size)
    return identity_kernel(options.max_kernel_size)


def sample_kernels(options: DegradationOptions) -> dict[str, torch.Tensor]:
    """``{'kernel1', 'kernel2', 'sinc_kernel'}``: float32 ``(K, K)`` tensors for one image."""
    size = options.max_kernel_size
    kernels = {"kernel1": sample_blur_kernel(options.first, options.kernel_sizes, size),
               "kernel2": sample_blur_kernel(options.second, options.kernel_sizes, size),
               "sinc_kernel": sample_final_sinc_kernel(options)}
    return {name: torch.as_tensor(k, dtype=torch.float32) for name, k in kernels.items()}


def sample_kernel_batch(options: DegradationOptions, batch: int) -> dict[str, torch.Tensor]:
    """``sample_kernels`` for ``batch`` images, stacked to ``(batch, K, K)``."""
    samples = [sample_kernels(options) for _ in range(batch)]
    return {name: torch.stack([s[name] for s in samples]) for name in samples[0]}
