"""Numeric parity with BasicSR: the same weights, batch and seed give the same losses and weights.

One training iteration of ``AdversarialSRModel`` (PSNR stage, SRGAN, ESRGAN) against BasicSR's
``SRModel`` / ``SRGANModel`` / ``ESRGANModel``, and ``VGGPerceptualLoss`` against BasicSR's
``PerceptualLoss`` reading the same torchvision-layout VGG19 weights file (random, made here).
Real-ESRNet / Real-ESRGAN: the whole chain from the HR files (dataset, synthesis, crop, pool,
sharpened targets, one step) against basicsr's own ``RealESRGANDataset`` and models.
"""

import copy
import random

import numpy as np
import pytest
import torch
from basicsr.data import build_dataset
from basicsr.losses import build_loss
from basicsr.models import build_model
from helpers import real_esrgan_options, write_hr_folder
from torch import nn

from realesrgan_ext.tools.train_benchmark import random_vgg19_file

G_OPT = {"type": "RRDBGenerator", "num_feat": 8, "num_block": 1, "num_grow_ch": 4, "scale": 4}
D_OPT = {"type": "VGGDiscriminator", "num_feat": 4, "input_size": 32}
PERCEPTUAL_LAYERS = {"conv1_2": 0.5, "relu2_1": 0.25, "conv2_2": 1.0}


@pytest.fixture
def vgg_file():
    """A random torchvision-layout VGG19 ``features`` file, read by both implementations."""
    torch.manual_seed(1)
    with random_vgg19_file() as path:
        yield path


def pixel_and_perceptual(vgg_file, ours: bool) -> dict:
    if ours:
        return {"pixel_opt": {"type": "PixelLoss", "criterion": "l1", "loss_weight": 0.5},
                "perceptual_opt": {"type": "VGGPerceptualLoss", "layer_weights": PERCEPTUAL_LAYERS,
                                   "perceptual_weight": 0.1, "vgg_weights": "torchvision",
                                   "vgg_weights_path": str(vgg_file)}}
    return {"pixel_opt": {"type": "L1Loss", "loss_weight": 0.5},
            "perceptual_opt": {"type": "PerceptualLoss", "layer_weights": PERCEPTUAL_LAYERS,
                               "perceptual_weight": 0.1, "style_weight": 0}}


def build(tmp_path, model_type: str, losses: dict, gan_opt: dict | None):
    opt = {
        "name": "parity", "model_type": model_type, "scale": 4, "num_gpu": 0, "dist": False, "is_train": True,
        "rank": 0, "world_size": 1, "network_g": dict(G_OPT),
        "path": {"models": str(tmp_path), "training_states": str(tmp_path), "pretrain_network_g": None},
        "train": {"ema_decay": 0.5, "optim_g": {"type": "Adam", "lr": 1e-3, "betas": [0.9, 0.99]},
                  "scheduler": {"type": "MultiStepLR", "milestones": [100], "gamma": 0.5}, **copy.deepcopy(losses)},
    }
    if gan_opt is not None:
        opt["network_d"] = dict(D_OPT)
        opt["train"].update(gan_opt=dict(gan_opt), optim_d={"type": "Adam", "lr": 1e-3, "betas": [0.9, 0.99]})
    return build_model(opt)


def copy_weights(src, dst):
    dst.net_g.load_state_dict(src.net_g.state_dict())
    dst.net_g_ema.load_state_dict(src.net_g_ema.state_dict())
    if hasattr(src, "net_d") and src.net_d is not None:
        dst.net_d.load_state_dict(src.net_d.state_dict())


def one_step(model, seed=3):
    g = torch.Generator().manual_seed(seed)
    model.feed_data({"lq": torch.rand(2, 3, 8, 8, generator=g), "gt": torch.rand(2, 3, 32, 32, generator=g)})
    model.optimize_parameters(1)
    return model.get_current_log()


def assert_same_parameters(a: nn.Module, b: nn.Module):
    pa, pb = dict(a.named_parameters()), dict(b.named_parameters())
    assert pa.keys() == pb.keys()
    for name in pa:
        torch.testing.assert_close(pa[name], pb[name], rtol=1e-5, atol=1e-6, msg=lambda m, n=name: f"{n}: {m}")


# (our gan_opt, BasicSR model, its gan_opt); the PSNR stage has no GAN
CASES = {
    "psnr": (None, "SRModel", None),
    "srgan": ({"type": "VanillaGANLoss", "loss_weight": 1e-1}, "SRGANModel",
              {"type": "GANLoss", "gan_type": "vanilla", "loss_weight": 1e-1}),
    "esrgan": ({"type": "RelativisticAverageGANLoss", "loss_weight": 1e-1}, "ESRGANModel",
               {"type": "GANLoss", "gan_type": "vanilla", "loss_weight": 1e-1}),
}
BASICSR_LOG_NAMES = {"l_pix": "l_g_pix", "l_percep": "l_g_percep"}  # SRModel's names for the same terms


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_one_iteration_equals_basicsr(case, tmp_path, vgg_file, one_torch_thread):
    our_gan, their_type, their_gan = CASES[case]
    ours = build(tmp_path, "AdversarialSRModel", pixel_and_perceptual(vgg_file, True), our_gan)
    theirs = build(tmp_path, their_type, pixel_and_perceptual(vgg_file, False), their_gan)
    copy_weights(ours, theirs)
    our_log, their_log = one_step(ours), one_step(theirs)
    their_log = {BASICSR_LOG_NAMES.get(k, k): v for k, v in their_log.items()}
    assert set(their_log) <= set(our_log), (sorted(their_log), sorted(our_log))
    for name, value in their_log.items():
        assert our_log[name] == pytest.approx(value, rel=1e-5, abs=1e-7), name
    assert_same_parameters(ours.net_g, theirs.net_g)
    assert_same_parameters(ours.net_g_ema, theirs.net_g_ema)
    if our_gan is not None:
        assert_same_parameters(ours.net_d, theirs.net_d)


@pytest.mark.parametrize("criterion", ["l1", "fro"])
def test_perceptual_loss_equals_basicsr(criterion, vgg_file):
    ours = build_loss({"type": "VGGPerceptualLoss", "layer_weights": PERCEPTUAL_LAYERS, "criterion": criterion,
                       "perceptual_weight": 0.7, "vgg_weights": "torchvision", "vgg_weights_path": str(vgg_file)})
    theirs = build_loss({"type": "PerceptualLoss", "layer_weights": PERCEPTUAL_LAYERS, "criterion": criterion,
                         "perceptual_weight": 0.7, "style_weight": 0})
    g = torch.Generator().manual_seed(0)
    pred = torch.rand(2, 3, 24, 24, generator=g, requires_grad=True)
    target = torch.rand(2, 3, 24, 24, generator=g)
    our_value = ours(pred, target)
    their_value, _ = theirs(pred, target)
    torch.testing.assert_close(our_value, their_value, rtol=1e-5, atol=0)
    our_grad, = torch.autograd.grad(our_value, pred)
    their_grad, = torch.autograd.grad(their_value, pred)
    torch.testing.assert_close(our_grad, their_grad, rtol=1e-4, atol=1e-5 * their_grad.abs().max().item())


REAL_BATCH, REAL_GT_SIZE, HR_SIDE = 2, 32, 96
TINY_SRVGG = {"type": "SRVGGNetCompact", "num_in_ch": 3, "num_out_ch": 3, "num_feat": 8, "num_conv": 2,
              "upscale": 4, "act_type": "prelu"}


def seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def real_esrgan_batch(dataset_opt: dict, dataset_type: str, seed: int) -> dict:
    """A training batch of ``dataset_type`` (ours or basicsr's) drawn under ``seed``."""
    seed_all(seed)
    dataset = build_dataset({**copy.deepcopy(dataset_opt), "type": dataset_type, "phase": "train", "scale": 4})
    items = [dataset[i] for i in range(REAL_BATCH)]
    return {key: torch.stack([item[key] for item in items]) for key in ("gt", "kernel1", "kernel2", "sinc_kernel")}


def real_esrgan_batches(dataset_opt: dict, steps: int) -> list[dict]:
    """basicsr's dataset's batches, after checking that ours draws the same HR crops and kernels. The
    models get the top-left ``HR_SIDE`` px of each 400 px crop: the same arithmetic, a tenth of the time."""
    batches = []
    for step in range(steps):
        theirs = real_esrgan_batch(dataset_opt, "RealESRGANDataset_basicsr", seed=step)
        ours = real_esrgan_batch(dataset_opt, "RealESRGANDataset", seed=step)
        for key, value in theirs.items():
            torch.testing.assert_close(ours[key], value, rtol=0, atol=0, msg=key)
        batches.append({**theirs, "gt": theirs["gt"][..., :HR_SIDE, :HR_SIDE].contiguous()})
    return batches


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["train_realesrnet_x4plus", "train_realesrgan_x4plus"])
def test_realesrgan_chain_equals_basicsr(stage, tmp_path, no_cuda_calls, one_torch_thread):
    """Same option file, our class names vs basicsr's: same HR crops and kernels, then for two
    batches (the pool fills, then exchanges) the same LR, HR and every loss target, then the same step.

    Real-ESRNet sharpens the whole HR crop before cutting the patch; Real-ESRGAN sharpens
    the patch that leaves the pool. ``second_blur_prob: 1`` (Real-ESRNet) must still draw its number.
    """
    gan = "realesrgan" in stage
    data = write_hr_folder(tmp_path / "hr", [(90, 70), (410, 430)])  # one padded to 400, one cropped
    opt = real_esrgan_options(stage, data, gt_size=REAL_GT_SIZE, batch=REAL_BATCH)
    opt.update(dist=False, is_train=True, rank=0, world_size=1, network_g=dict(TINY_SRVGG),
               second_blur_prob=0.8 if gan else 1.0, queue_size=REAL_BATCH)
    opt["path"].update(models=str(tmp_path), training_states=str(tmp_path))
    opt["train"].pop("perceptual_opt", None)  # its VGG19 is compared on its own above
    if gan:
        opt["network_d"]["num_feat"] = 8
    theirs = copy.deepcopy(opt)
    theirs["model_type"] += "_basicsr"
    if gan:  # basicsr's GANLoss in basicsr's model, ours in ours (their own parity: test above)
        opt["train"]["gan_opt"] = {"type": "VanillaGANLoss", "loss_weight": 0.1}
    model, reference = build_model(opt), build_model(theirs)
    copy_weights(reference, model)
    for step, batch in enumerate(real_esrgan_batches(opt["datasets"]["train"], steps=2)):
        for m in (model, reference):
            seed_all(100 + step)
            m.feed_data({k: v.clone() for k, v in batch.items()})
        assert model.lq.shape == (REAL_BATCH, 3, REAL_GT_SIZE // 4, REAL_GT_SIZE // 4)
        torch.testing.assert_close(model.lq, reference.lq, rtol=0, atol=1e-6)
        targets = model.loss_targets()
        if gan:  # the patch out of the pool, sharpened after it (l1_gt_usm, percep_gt_usm; gan_gt_usm: False)
            torch.testing.assert_close(model.gt, reference.gt, rtol=0, atol=0)
            expected = {"l_g_pix": reference.gt_usm, "l_g_percep": reference.gt_usm, "gan": reference.gt}
        else:  # gt_usm: the 400 px crop sharpened, then cut; the pool holds the sharpened patch
            expected = dict.fromkeys(("l_g_pix", "l_g_percep", "gan"), reference.gt)
        for name, target in expected.items():
            torch.testing.assert_close(targets[name], target, rtol=0, atol=1e-6, msg=name)
    model.optimize_parameters(1)
    reference.optimize_parameters(1)
    for name in ("net_g", "net_g_ema") + (("net_d",) if gan else ()):
        assert_same_parameters(getattr(model, name), getattr(reference, name))
    ours, theirs = model.get_current_log(), reference.get_current_log()
    assert ours["l_g_pix"] == pytest.approx(theirs["l_g_pix" if gan else "l_pix"], rel=1e-5)
    for key in ("l_g_gan", "l_d_real", "l_d_fake", "out_d_real", "out_d_fake") if gan else ():
        assert ours[key] == pytest.approx(theirs[key], rel=1e-5), key
