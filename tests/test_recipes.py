"""The shipped recipes are the published ones: loss terms, VGG layers and the VGG weights they are meant for."""

from pathlib import Path

import pytest
import yaml

OPTIONS = Path(__file__).resolve().parents[1] / "options"

REALESRGAN_LAYERS = {"conv1_2": 0.1, "conv2_2": 0.1, "conv3_4": 1, "conv4_4": 1, "conv5_4": 1}
# file: (vgg_weights, layer_weights, criterion, perceptual_weight); the weight is only meaningful for its source
PERCEPTUAL = {
    "esrgan_x4.yml": ("torchvision", {"conv5_4": 1.0}, "l1", 1.0),  # ESRGAN / BasicSR
    "esrgan_small_x4.yml": ("caffe", {"conv5_4": 1.0}, "l1", 0.1),  # Caffe features are ~10x torchvision's
    "srgan_x4.yml": ("caffe", {"relu5_4": 1.0}, "mse", 1 / 12.75 ** 2),  # SRGAN-VGG54, the original VGG19
    "realesrgan_x4.yml": ("torchvision", REALESRGAN_LAYERS, "l1", 1.0),  # Real-ESRGAN x4plus
    "finetune_realesrgan_x4plus.yml": ("torchvision", REALESRGAN_LAYERS, "l1", 1.0),
}


def load(name):
    return yaml.safe_load((OPTIONS / name).read_text())


def test_every_perceptual_loss_names_its_vgg_weights():
    with_perceptual = {p.name for p in OPTIONS.glob("*.yml") if (load(p.name)["train"].get("perceptual_opt"))}
    assert set(PERCEPTUAL) <= with_perceptual
    for name in with_perceptual:  # a weight is only meaningful for the VGG19 it was set for
        assert load(name)["train"]["perceptual_opt"].get("vgg_weights") in ("torchvision", "caffe"), name
    for name, (source, layers, criterion, weight) in PERCEPTUAL.items():
        opt = load(name)["train"]["perceptual_opt"]
        assert (opt["vgg_weights"], opt["layer_weights"], opt["criterion"]) == (source, layers, criterion), name
        assert opt["perceptual_weight"] == pytest.approx(weight, rel=1e-3), name


def test_srgan_recipe_is_srgan_vgg54():
    """Ledig et al.: VGG54 after the ReLU, no pixel term, vanilla GAN 1e-3."""
    train = load("srgan_x4.yml")["train"]
    assert "pixel_opt" not in train
    assert train["gan_opt"] == {"type": "VanillaGANLoss", "loss_weight": 1e-3}


def test_esrgan_recipe_is_the_published_one():
    train = load("esrgan_x4.yml")["train"]
    assert train["pixel_opt"]["loss_weight"] == 1e-2 and train["pixel_opt"]["criterion"] == "l1"
    assert train["gan_opt"] == {"type": "RelativisticAverageGANLoss", "loss_weight": 5e-3}


def test_realesrnet_starts_from_the_gan_trained_esrgan():
    """Published: RealESRNet_x4plus starts from ESRGAN_SRx4_DF2KOST_official, the GAN-trained ESRGAN."""
    esrgan = load("esrgan_x4.yml")
    assert esrgan["network_d"] and esrgan["train"]["gan_opt"]
    start = load("realesrnet_x4.yml")["path"]["pretrain_network_g"]
    assert start == f"experiments/{esrgan['name']}/models/net_g_latest.pth"
