"""Real-ESRGAN's degradation pipeline: options, kernels, each step and the whole chain."""

import dataclasses
import random

import numpy as np
import pytest
import torch

from realesrgan_ext.data.degradation_kernels import identity_kernel, sample_kernel_batch, sample_kernels
from realesrgan_ext.data.degradation_options import (
    DegradationOptions,
    StageOptions,
    degradation_options_of,
    parse_degradation_options,
)
from realesrgan_ext.data.degradations import (
    blur,
    degrade,
    make_jpeger,
    min_hr_side,
    quantize,
    random_jpeg,
    random_noise,
    random_resize,
    seeded,
)

SMALL = {"kernel_size_range": [3, 7]}  # tiny images need small kernels (reflect padding)


def smooth_batch(b=2, h=48, w=48, seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    small = torch.rand(b, 3, h // 8, w // 8, generator=g)
    return torch.nn.functional.interpolate(small, size=(h, w), mode="bilinear", align_corners=False).clamp(0, 1)


# ---- options ------------------------------------------------------------------------------
def test_defaults_are_the_published_x4plus_recipe():
    opt = parse_degradation_options(None)
    assert opt.kernel_sizes == [7, 9, 11, 13, 15, 17, 19, 21]
    assert opt.first.kernel_prob == (0.45, 0.25, 0.12, 0.03, 0.12, 0.03) and opt.first.sinc_prob == 0.1
    assert opt.first.blur_sigma == (0.2, 3.0) and opt.second.blur_sigma == (0.2, 1.5)
    assert opt.first.resize_prob == (0.2, 0.7, 0.1) and opt.first.resize_range == (0.15, 1.5)
    assert opt.second.resize_prob == (0.3, 0.4, 0.3) and opt.second.resize_range == (0.3, 1.2)
    assert opt.first.noise_range == (1, 30) and opt.second.noise_range == (1, 25)
    assert opt.first.poisson_scale_range == (0.05, 3) and opt.second.poisson_scale_range == (0.05, 2.5)
    assert opt.first.gray_noise_prob == opt.second.gray_noise_prob == 0.4
    assert opt.first.gaussian_noise_prob == opt.second.gaussian_noise_prob == 0.5
    assert opt.first.jpeg_range == opt.second.jpeg_range == (30, 95)
    assert opt.first.blur_prob == 1 and opt.second.blur_prob == 0.8
    assert opt.final.sinc_prob == 0.8 and opt.final.resize_sinc_first_prob == 0.5
    assert degradation_options_of({"datasets": {"train": {}}}) == opt


def test_overrides_keep_the_other_defaults():
    opt = parse_degradation_options({"second": {"noise_range": [2, 3]}, "final": {"sinc_prob": 0}})
    assert opt.second.noise_range == (2, 3) and opt.second.blur_sigma == (0.2, 1.5) and opt.final.sinc_prob == 0


@pytest.mark.parametrize("section, names", [
    ({"frist": {}}, ["frist", "first, second, final"]),
    ({"second": {"noise_rnage": [1, 2]}}, ["degradation.second", "noise_rnage", "noise_range"]),
    ({"final": {"sinc": 0.5}}, ["degradation.final", "sinc", "resize_sinc_first_prob"]),
])
def test_misspelt_key_names_itself_and_the_allowed_ones(section, names):
    with pytest.raises(ValueError) as err:
        parse_degradation_options(section)
    for name in names:
        assert name in str(err.value)


@pytest.mark.parametrize("section", [
    {"first": {"sinc_prob": 1.5}},
    {"first": {"noise_range": [30, 1]}},
    {"first": {"kernel_list": ["iso", "box"]}},
    {"first": {"kernel_prob": [0.5, 0.5]}},
    {"second": {"resize_range": [1.1, 1.2]}},
    {"kernel_size_range": [8, 21]},
    {"first": {"jpeg_range": [0, 25]}},
    {"second": {"jpeg_range": [50, 101]}},
    {"first": {"jpeg_range": [25, 5]}},
    {"second_order": "no"},
    {"second_order": False, "second": {"noise_range": [1, 2]}},
])
def test_bad_values_are_errors(section):
    with pytest.raises(ValueError, match="degradation"):
        parse_degradation_options(section)


# ---- kernels ------------------------------------------------------------------------------
def test_every_kernel_sums_to_one_and_is_padded():
    options = parse_degradation_options({"first": {"sinc_prob": 0.5}, "second": {"sinc_prob": 0.5}})
    with seeded(3):
        batch = sample_kernel_batch(options, 40)
    for name, kernels in batch.items():
        assert kernels.shape == (40, 21, 21) and kernels.dtype == torch.float32, name
        torch.testing.assert_close(kernels.sum(dim=(1, 2)), torch.ones(40), atol=1e-5, rtol=0)
    assert identity_kernel(21).sum() == 1
    sinc_used = (batch["sinc_kernel"] != torch.as_tensor(identity_kernel(21), dtype=torch.float32)).any(dim=(1, 2))
    assert 0 < sinc_used.sum() < 40  # final sinc with probability 0.8


def test_kernels_are_reproducible_under_a_seed():
    options = DegradationOptions()
    with seeded(7):
        a = sample_kernels(options)
    with seeded(7):
        b = sample_kernels(options)
    for name in a:
        assert torch.equal(a[name], b[name])


# ---- steps --------------------------------------------------------------------------------
def test_blur_keeps_size_and_mean_and_identity_keeps_image():
    img = smooth_batch()
    with seeded(1):
        kernels = sample_kernel_batch(DegradationOptions(), 2)["kernel1"]
    out = blur(img, kernels)
    assert out.shape == img.shape
    torch.testing.assert_close(out.mean(), img.mean(), atol=5e-3, rtol=0)
    assert (out - img).abs().max() > 1e-3
    identity = torch.as_tensor(identity_kernel(21), dtype=torch.float32).expand(2, 21, 21)
    torch.testing.assert_close(blur(img, identity), img)


@pytest.mark.parametrize("sigma", [5.0, 20.0])
def test_gaussian_noise_adds_variance_sigma_squared(sigma):
    stage = StageOptions(gaussian_noise_prob=1.0, noise_range=(sigma, sigma), gray_noise_prob=0.0)
    img = torch.full((2, 3, 128, 128), 0.5)
    with seeded(0):
        noisy = random_noise(img, stage)
    variance = (noisy - img).var().item()
    assert abs(variance - (sigma / 255) ** 2) < 0.05 * (sigma / 255) ** 2


def test_gray_noise_is_the_same_in_every_channel():
    stage = StageOptions(gaussian_noise_prob=1.0, noise_range=(10.0, 10.0), gray_noise_prob=1.0)
    img = torch.full((1, 3, 32, 32), 0.5)
    with seeded(0):
        noise = random_noise(img, stage) - img
    torch.testing.assert_close(noise[:, 0], noise[:, 1])
    assert noise.abs().max() > 0


def test_poisson_noise_is_unbiased_and_grows_with_scale():
    img = quantize(0.3 + 0.4 * smooth_batch(b=1, h=128, w=128))  # many gray levels, away from clipping
    spreads = []
    for scale in (0.5, 3.0):
        stage = StageOptions(gaussian_noise_prob=0.0, poisson_scale_range=(scale, scale), gray_noise_prob=0.0)
        with seeded(0):
            noise = random_noise(img, stage) - img
        assert abs(noise.mean().item()) < 0.01
        spreads.append(noise.std().item())
    assert spreads[1] > 4 * spreads[0] > 0


def test_jpeg_at_30_differs_more_than_at_95():
    img = smooth_batch(b=1, h=64, w=64)
    jpeger = make_jpeger()
    errors = []
    for quality in (30.0, 95.0):
        out = random_jpeg(img, (quality, quality), jpeger)
        assert out.shape == img.shape
        errors.append((out - img).abs().mean().item())
    assert errors[0] > 1.5 * errors[1] > 0  # chroma subsampling costs both alike


def test_random_resize_ranges():
    img = smooth_batch()
    for prob, low, high in [((1, 0, 0), 48, 72), ((0, 1, 0), 7, 48), ((0, 0, 1), 48, 48)]:
        stage = StageOptions(resize_prob=prob, resize_range=(0.15, 1.5))
        for seed in range(5):
            with seeded(seed):
                out = random_resize(img, stage)
            assert low <= out.shape[-1] <= high and out.shape[-2] == out.shape[-1]
    with seeded(0):
        out = random_resize(img, StageOptions(resize_prob=(0, 0, 1)), base_size=(12, 10))
    assert out.shape[-2:] == (12, 10)
    exactly_quarter = parse_degradation_options({"first": {"resize_prob": [0, 1, 0], "resize_range": [0.25, 0.25]}})
    for seed in range(3):  # a range below 1 for a down-only stage: the factor is drawn inside it
        with seeded(seed):
            assert random_resize(img, exactly_quarter.first).shape[-2:] == (12, 12)
    with pytest.raises(ValueError, match="high >= 1 when it can scale up"):
        parse_degradation_options({"first": {"resize_range": [0.25, 0.5]}})  # the default resize_prob scales up


# ---- the whole pipeline -----------------------------------------------------------------
@pytest.mark.parametrize("scale, h, w", [(4, 96, 96), (4, 96, 128), (2, 80, 96)])
def test_pipeline_lr_is_exactly_hr_over_scale(scale, h, w):
    hr = smooth_batch(h=h, w=w)
    for seed in range(3):
        lr = degrade(hr, DegradationOptions(), scale, seed=seed)
        assert lr.shape == (2, 3, h // scale, w // scale)
        assert lr.min() >= 0 and lr.max() <= 1
        torch.testing.assert_close(lr, quantize(lr))  # on 8-bit levels


def test_pipeline_is_deterministic_under_a_seed_and_leaves_global_state_alone():
    hr = smooth_batch(h=80, w=80)
    states = random.getstate(), np.random.get_state()[1].copy(), torch.get_rng_state()
    a = degrade(hr, DegradationOptions(), 4, seed=11)
    b = degrade(hr, DegradationOptions(), 4, seed=11)
    c = degrade(hr, DegradationOptions(), 4, seed=12)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert random.getstate() == states[0] and np.array_equal(np.random.get_state()[1], states[1])
    assert torch.equal(torch.get_rng_state(), states[2])


def test_pipeline_degrades():
    hr = smooth_batch(h=96, w=96)
    bicubic = torch.nn.functional.interpolate(hr, scale_factor=0.25, mode="area")
    lr = degrade(hr, DegradationOptions(), 4, seed=0)
    assert (lr - bicubic).abs().mean() > 0.005


def test_pipeline_with_given_kernels_and_small_kernels():
    options = parse_degradation_options(SMALL)
    hr = smooth_batch(h=32, w=32)
    with seeded(0):
        kernels = sample_kernel_batch(options, 2)
    assert kernels["kernel1"].shape == (2, 7, 7)
    assert degrade(hr, options, 4, kernels, seed=0).shape == (2, 3, 8, 8)


def test_single_stage_pipeline_is_one_round_then_the_final_step():
    """``second_order: false``: blur, resize, noise, then resize + sinc and ONE JPEG from first.jpeg_range."""
    from realesrgan_ext.data.degradations import degradation_round, final_step

    options = parse_degradation_options({**SMALL, "second_order": False, "first": {"jpeg_range": [10, 10]}})
    hr = smooth_batch(h=32, w=32)
    with seeded(0):
        kernels = sample_kernel_batch(options, 2)
    jpeger = make_jpeger()
    with seeded(5):
        out = degradation_round(hr, kernels["kernel1"], options.first, jpeger, with_jpeg=False, draw_blur=False)
        expected = quantize(final_step(out, kernels["sinc_kernel"], options.final, (10, 10), (8, 8), jpeger))
    lr = degrade(hr, options, 4, kernels, jpeger=jpeger, seed=5)
    assert torch.equal(lr, expected)
    second_order = degrade(hr, parse_degradation_options({**SMALL, "first": {"jpeg_range": [10, 10]}}), 4, kernels,
                           jpeger=jpeger, seed=5)
    assert not torch.equal(lr, second_order)


def test_too_small_or_odd_hr_is_a_clear_error():
    options = DegradationOptions()
    assert min_hr_side(options, 4) == 74
    with pytest.raises(ValueError, match="too small"):
        degrade(smooth_batch(h=48, w=48), options, 4)
    with pytest.raises(ValueError, match="multiple of the scale"):
        degrade(smooth_batch(h=98, w=96), options, 4)


@pytest.mark.gpu
def test_pipeline_on_cuda_is_reproducible():
    hr = smooth_batch(h=96, w=96).cuda()
    jpeger = make_jpeger("cuda")
    a = degrade(hr, DegradationOptions(), 4, seed=5, jpeger=jpeger)
    b = degrade(hr, DegradationOptions(), 4, seed=5, jpeger=jpeger)
    assert a.device.type == "cuda" and a.shape == (2, 3, 24, 24) and torch.equal(a, b)


def test_stage_options_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        DegradationOptions().first.sinc_prob = 0.3
