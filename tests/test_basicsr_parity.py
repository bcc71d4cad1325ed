"""Numeric parity with BasicSR: the same weights, batch and seed give the same losses and weights.

One training iteration of ``AdversarialSRModel`` (PSNR stage, SRGAN, ESRGAN) against BasicSR's
``SRModel`` / ``SRGANModel`` / ``ESRGANModel``, and ``VGGPerceptualLoss`` against BasicSR's
``PerceptualLoss`` reading the same torchvision-layout VGG19 weights file (random, made here).
"""

import copy

import pytest
import torch
from basicsr.losses import build_loss
from basicsr.models import build_model
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
