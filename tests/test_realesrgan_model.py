"""RealESRGANSRModel: options, pool, resume, paired batches (its parity with basicsr: test_basicsr_parity.py).

basicsr's classes hard-code ``.cuda()``; ``no_cuda_calls`` (conftest) makes it a no-op on CPU.
"""

import copy
import logging
import random

import numpy as np
import pytest
import torch
from basicsr.models import build_model

from realesrgan_ext.data.degradation_kernels import sample_kernel_batch
from realesrgan_ext.data.degradation_options import DegradationOptions
from realesrgan_ext.data.degradations import quantize
from realesrgan_ext.data.training_pair_pool import TrainingPairPool
from realesrgan_ext.models.adversarial_sr_model import resolve_pretrained
from realesrgan_ext.models.realesrgan_sr_model import usm_sharpen_options

GT_SIZE, BATCH = 32, 2
NETWORK_G = {"type": "SRVGGNetCompact", "num_in_ch": 3, "num_out_ch": 3, "num_feat": 8, "num_conv": 2,
             "upscale": 4, "act_type": "prelu"}
NETWORK_D = {"type": "UNetDiscriminatorSN", "num_in_ch": 3, "num_feat": 8, "skip_connection": True}


def basicsr_degradation_keys(options: DegradationOptions) -> dict:
    """Real-ESRGAN's top-level keys for the same pipeline (what its option files spell out)."""
    first, second = options.first, options.second
    return {"resize_prob": list(first.resize_prob), "resize_range": list(first.resize_range),
            "gaussian_noise_prob": first.gaussian_noise_prob, "noise_range": list(first.noise_range),
            "poisson_scale_range": list(first.poisson_scale_range), "gray_noise_prob": first.gray_noise_prob,
            "jpeg_range": list(first.jpeg_range), "second_blur_prob": second.blur_prob,
            "resize_prob2": list(second.resize_prob), "resize_range2": list(second.resize_range),
            "gaussian_noise_prob2": second.gaussian_noise_prob, "noise_range2": list(second.noise_range),
            "poisson_scale_range2": list(second.poisson_scale_range), "gray_noise_prob2": second.gray_noise_prob,
            "jpeg_range2": list(second.jpeg_range)}


def make_pair(tmp_path, gan: bool, pool_size: int = 2 * BATCH):
    """(ours, basicsr's) models with identical weights; Real-ESRGAN (gan) or Real-ESRNet."""
    common = {"name": "parity", "scale": 4, "num_gpu": 0, "dist": False, "is_train": True, "rank": 0,
              "world_size": 1, "network_g": NETWORK_G,
              "path": {"models": str(tmp_path), "training_states": str(tmp_path), "pretrain_network_g": None},
              # lr 1e-4: Adam's first step moves a weight by ~lr whatever its gradient's size, so float
              # rounding in a near-zero gradient (D's loss is backpropagated as one sum here, as two
              # terms there) shows up as up to ~lr/1000; at 1e-4 that is well inside the tolerance
              "train": {"ema_decay": 0.9, "optim_g": {"type": "Adam", "lr": 1e-4, "betas": [0.9, 0.99]},
                        "scheduler": {"type": "MultiStepLR", "milestones": [100], "gamma": 0.5}}}
    if gan:
        common["network_d"] = NETWORK_D
        common["train"]["optim_d"] = {"type": "Adam", "lr": 1e-4, "betas": [0.9, 0.99]}
    ours = copy.deepcopy(common)
    ours.update(model_type="RealESRGANSRModel", datasets={"train": {"gt_size": GT_SIZE}})
    ours["train"].update(pixel_opt={"type": "PixelLoss", "criterion": "l1", "loss_weight": 1.0}, pool_size=pool_size,
                         usm_sharpen={"lr_input": True, "pixel": True, "perceptual": True, "gan": False})
    theirs = copy.deepcopy(common)
    theirs.update(model_type="RealESRGANModel_basicsr" if gan else "RealESRNetModel_basicsr", gt_size=GT_SIZE,
                  queue_size=pool_size, gt_usm=True, l1_gt_usm=True, percep_gt_usm=True, gan_gt_usm=False,
                  **basicsr_degradation_keys(DegradationOptions()))
    theirs["train"]["pixel_opt"] = {"type": "L1Loss", "loss_weight": 1.0}
    if gan:
        ours["train"]["gan_opt"] = {"type": "VanillaGANLoss", "loss_weight": 0.1}
        theirs["train"]["gan_opt"] = {"type": "GANLoss", "gan_type": "vanilla", "loss_weight": 0.1}
    model, reference = build_model(ours), build_model(theirs)
    for name in ("net_g", "net_g_ema") + (("net_d",) if gan else ()):
        getattr(model, name).load_state_dict(getattr(reference, name).state_dict())
    return model, reference


def hr_batch(seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    small = torch.rand(BATCH, 3, 10, 10, generator=g)
    gt = torch.nn.functional.interpolate(small, size=(80, 80), mode="bicubic", align_corners=False).clamp(0, 1)
    random.seed(seed)
    np.random.seed(seed)
    return {"gt": gt, **sample_kernel_batch(DegradationOptions(), BATCH)}


def feed_both(model, reference, data: dict, seed: int) -> None:
    for m in (model, reference):
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)
        m.feed_data({k: v.clone() for k, v in data.items()})


def params(net):
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def assert_same_state(a: dict, b: dict):
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6, msg=lambda m, key=key: f"{key}: {m}")


def test_paired_batches_skip_the_pipeline(tmp_path, no_cuda_calls):
    model, _ = make_pair(tmp_path, gan=False)
    lq, gt = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 32, 32)
    model.feed_data({"lq": lq, "gt": gt})
    assert torch.equal(model.lq, lq) and torch.equal(model.gt, gt)


def test_usm_sharpen_options():
    assert usm_sharpen_options(None) == {"lr_input": True, "pixel": True, "perceptual": True, "gan": False}
    assert usm_sharpen_options({"gan": True})["gan"] is True
    with pytest.raises(ValueError, match="pixle.*allowed: lr_input, pixel, perceptual, gan"):
        usm_sharpen_options({"pixle": False})


def test_pool_mixes_batches_and_checks_size():
    pool = TrainingPairPool(4)
    seen = set()
    for i in range(10):
        lq, gt = torch.full((2, 1, 1, 1), float(i)), torch.full((2, 1, 2, 2), float(i))
        out_lq, out_gt = pool.exchange(lq, gt)
        assert torch.equal(out_lq[:, :, 0, 0], out_gt[:, :, 0, 0])  # pairs stay pairs
        seen.update(out_lq.flatten().tolist())
        if i < 2:
            assert torch.equal(out_lq, lq)
    assert len(seen) >= 5
    with pytest.raises(ValueError, match="multiple of the batch size 3"):
        TrainingPairPool(4).exchange(torch.zeros(3, 1, 1, 1), torch.zeros(3, 1, 1, 1))
    assert TrainingPairPool(0).exchange(lq, gt)[0] is lq


def eight_bit_pair(seed: int, b: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """(lq, gt) on 8-bit levels, as the degradation pipeline and 8-bit photos give them."""
    g = torch.Generator().manual_seed(seed)
    return quantize(torch.rand(b, 3, 2, 2, generator=g)), torch.randint(0, 256, (b, 3, 8, 8), generator=g) / 255


def test_pool_state_round_trips_bit_for_bit():
    pool = TrainingPairPool(4)
    assert pool.state_dict() == {"size": 4, "filled": 0}
    for i in range(2):
        pool.exchange(*eight_bit_pair(i))
        state = pool.state_dict()
        assert state["filled"] == 2 * (i + 1)
        assert state["lq"]["levels"].dtype == state["gt"]["levels"].dtype == torch.uint8
        restored = TrainingPairPool(4)
        restored.load_state_dict(state)
        for j in range(2, 5):  # goes on as the original does: same pairs out under the same seed
            outs = []
            for p in (pool, restored):
                torch.manual_seed(j)
                outs.append(p.exchange(*eight_bit_pair(10 * i + j)))
            assert all(torch.equal(a, b) for a, b in zip(*outs, strict=True))
        assert torch.equal(pool.lq, restored.lq) and torch.equal(pool.gt, restored.gt)
    with pytest.raises(ValueError, match="saved pool holds 4 pairs, train.pool_size is 6"):
        TrainingPairPool(6).load_state_dict(pool.state_dict())
    with pytest.raises(ValueError, match=r"holds pairs of \(3, 2, 2\).*this batch is \(3, 4, 4\)"):
        pool.exchange(torch.zeros(2, 3, 4, 4), torch.zeros(2, 3, 16, 16))


@pytest.mark.parametrize("gt", [torch.rand(2, 3, 8, 8), torch.full((2, 3, 8, 8), -0.0)], ids=["16-bit", "minus-zero"])
def test_pool_keeps_values_off_8_bit_levels_as_they_are(gt):
    pool = TrainingPairPool(2)
    pool.exchange(quantize(torch.rand(2, 3, 2, 2)), gt)
    state = pool.state_dict()
    assert "levels" in state["lq"] and state["gt"]["values"].dtype == torch.float32
    restored = TrainingPairPool(2)
    restored.load_state_dict(state)
    assert torch.equal(restored.gt.view(torch.int32), gt.view(torch.int32))  # bit for bit, the sign of zero too


def test_quantize_gives_no_minus_zero():
    assert not quantize(torch.tensor([-1e-4, -0.0, 0.0, 0.5, 2.0])).signbit().any()


def test_resume_restores_the_pool_or_says_why_not(tmp_path, no_cuda_calls, basicsr_log):
    caplog = basicsr_log
    caplog.set_level(logging.INFO, logger="basicsr")
    model, reference = make_pair(tmp_path, gan=False)
    for step in range(2):
        feed_both(model, reference, hr_batch(step), seed=step)
    model.save(0, 2)
    state = torch.load(tmp_path / "2.state", weights_only=True)
    assert len(state["pools"]) == 1 and state["pools"][0]["filled"] == 2 * BATCH
    resumed, _ = make_pair(tmp_path, gan=False)
    resumed.resume_training(state)
    assert torch.equal(resumed.pool.lq, model.pool.lq) and torch.equal(resumed.pool.gt, model.pool.gt)
    assert "Training-pair pool restored: 4 of 4 pairs" in caplog.text
    for change, why in [(lambda s: s.pop("pools"), "the training state has none"),
                        (lambda s: s["pools"].append(s["pools"][0]), "pools of 2 process(es), this run has 1"),
                        (lambda s: s["pools"][0].update(size=8), "saved pool holds 8 pairs")]:
        changed = copy.deepcopy(state)
        change(changed)
        resumed, _ = make_pair(tmp_path, gan=False)
        resumed.resume_training(changed)
        assert resumed.pool.lq is None and resumed.pool.filled == 0
        last = caplog.records[-1]
        assert last.levelname == "WARNING" and "Training-pair pool starts empty: " in last.message
        assert why in last.message


def test_basicsr_realesrgan_networks_by_plain_name():
    from basicsr.archs.discriminator_arch import UNetDiscriminatorSN
    from basicsr.archs.srvgg_arch import SRVGGNetCompact
    from basicsr.utils.registry import ARCH_REGISTRY

    assert ARCH_REGISTRY.get("UNetDiscriminatorSN") is UNetDiscriminatorSN
    assert ARCH_REGISTRY.get("SRVGGNetCompact") is SRVGGNetCompact
    logits = UNetDiscriminatorSN(3, num_feat=8)(torch.rand(2, 3, 32, 32))
    assert logits.shape == (2, 1, 32, 32)  # per-pixel logits: the GAN losses average over all of them


def test_pretrained_paths_official_names_and_missing_files(tmp_path):
    ckpt = tmp_path / "g.pth"
    ckpt.write_bytes(b"x")
    assert resolve_pretrained(str(ckpt)) == str(ckpt) and resolve_pretrained(None) is None
    with pytest.raises(FileNotFoundError, match="nope.pth not found.*set it to ~"):
        resolve_pretrained(str(tmp_path / "nope.pth"))
