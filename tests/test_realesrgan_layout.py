"""Real-ESRGAN's option files, laid out as published, train here as written; its keys mean what they mean there.

The option dicts come from ``helpers.real_esrgan_options``: the published files' keys and layout,
with only the data paths, ``pretrain_network_*``, ``num_gpu`` and the sizes changed. Their parity
with basicsr's own classes, number for number, is in ``test_basicsr_parity.py``.
"""

from __future__ import annotations

import copy
import re
import sys
from pathlib import Path

import pytest
import torch
import yaml
from basicsr.archs.discriminator_arch import UNetDiscriminatorSN
from basicsr.archs.rrdbnet_arch import RRDBNet
from basicsr.data import build_dataset
from helpers import PUBLISHED_FILES, real_esrgan_options, write_hr_folder, write_pair_folders

from realesrgan_ext.data.realesrgan_flat_options import DATASET_KEYS, LAYOUT_DOC, MODEL_KEYS
from realesrgan_ext.models.realesrgan_model import RealESRGANModel, RealESRNetModel
from realesrgan_ext.models.realesrgan_sr_model import RealESRGANSRModel
from realesrgan_ext.option_validation import OptionFileError, validate_options
from realesrgan_ext.tools.train_benchmark import random_vgg19_file

TINY_NET = {"num_feat": 8, "num_block": 1, "num_grow_ch": 4}
CROP = 96  # RealESRGANHRDataset's crop_size (Real-ESRGAN hard-codes 400): a size, like gt_size


@pytest.fixture
def torchvision_vgg19(tmp_path, monkeypatch):
    """A random VGG19 where torchvision caches its download, so the published PerceptualLoss runs offline."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    cache = tmp_path / "torch" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    with random_vgg19_file() as path:
        (cache / "vgg19-dcbb9e9d.pth").write_bytes(path.read_bytes())
        yield


def pretrained_files(tmp_path, file: str) -> dict:
    """Starting checkpoints as the published file names them: the generator of the stage before (the x2
    Real-ESRNet loads RealESRGAN_x4plus with ``strict_load_g: False``), a discriminator for the fine-tunes."""
    paths = {}
    g = RRDBNet(3, 3, scale=2 if file == "train_realesrgan_x2plus" else 4, **TINY_NET)
    torch.save({"params": g.state_dict(), "params_ema": g.state_dict()}, tmp_path / "g.pth")
    if file != "train_realesrnet_x4plus":
        paths["pretrain_network_g"] = str(tmp_path / "g.pth")
    if file.startswith("finetune"):
        torch.save({"params": UNetDiscriminatorSN(3, num_feat=8).state_dict()}, tmp_path / "d.pth")
        paths["pretrain_network_d"] = str(tmp_path / "d.pth")
    return paths


def layout_options(tmp_path, file: str) -> dict:
    if file.endswith("pairdata"):
        hr, lr = write_pair_folders(tmp_path / "pairs", ["a", "b"], hr_size=64)
        (tmp_path / "pairs" / "meta_info.txt").write_text("a.png, a.png\nb.png, b.png\n")  # Real-ESRGAN's lines
        data = {"dataroot_gt": str(hr), "dataroot_lq": str(lr), "meta_info": str(tmp_path / "pairs" / "meta_info.txt")}
    else:
        data = {**write_hr_folder(tmp_path / "hr", [(70, 90), (130, 110)]), "crop_size": CROP}
    return real_esrgan_options(file, data, pretrained_files(tmp_path, file), tiny_net=TINY_NET)


@pytest.mark.slow
@pytest.mark.parametrize("file", PUBLISHED_FILES)
def test_published_layout_trains_two_iterations(file, tmp_path, monkeypatch, torchvision_vgg19, one_torch_thread):
    """Validated, then BasicSR's own training loop for two iterations; the generator moved."""
    from basicsr.train import train_pipeline

    opt = layout_options(tmp_path, file)
    path = tmp_path / f"{file}.yml"
    path.write_text(yaml.safe_dump(opt))
    validate_options(opt, str(path))
    monkeypatch.setattr(sys, "argv", ["train.py", "-opt", str(path)])
    train_pipeline(str(tmp_path))
    saved = torch.load(tmp_path / "experiments" / file / "models" / "net_g_2.pth", weights_only=True)
    start = torch.load(tmp_path / "g.pth", weights_only=True)["params_ema"] if "pretrain_network_g" in opt["path"] \
        else None
    assert saved["params"]["conv_first.weight"].shape[1] == (12 if "x2plus" in file else 3)  # x2: pixel-unshuffled
    if start is not None:
        assert not torch.equal(saved["params"]["conv_last.weight"], start["conv_last.weight"])
    if "realesrgan" in file:
        assert (tmp_path / "experiments" / file / "models" / "net_d_2.pth").is_file()


def test_flat_keys_mean_the_nested_ones():
    """Every flat key lands on the nested field of the same name (``2``: the second round), and the
    published values give the published recipe, which is this project's default."""
    assert set(MODEL_KEYS) | set(DATASET_KEYS) >= {"noise_range2", "second_blur_prob", "final_sinc_prob", "kernel_list"}
    opt = real_esrgan_options("train_realesrgan_x4plus", {"dataroot_gt": "hr"})
    settings = RealESRGANModel.settings_of(opt)
    assert settings.degradation == RealESRGANSRModel.settings_of({}).degradation
    assert (settings.gt_size, settings.pool_size) == (opt["gt_size"], opt["queue_size"])
    assert settings.usm_sharpen == {"lr_input": True, "pixel": True, "perceptual": True, "gan": False}
    changed = dict(opt, noise_range2=[2, 3], second_blur_prob=1.0, gan_gt_usm=True, l1_gt_usm=False)
    settings = RealESRGANModel.settings_of(changed)
    assert settings.degradation.second.noise_range == (2.0, 3.0) and settings.degradation.second.blur_prob == 1.0
    assert settings.degradation.first.noise_range == (1.0, 30.0)
    assert settings.usm_sharpen == {"lr_input": True, "pixel": False, "perceptual": True, "gan": True}
    net = RealESRNetModel.settings_of(dict(real_esrgan_options("train_realesrnet_x4plus", {}), gt_usm=False))
    assert net.usm_sharpen == dict.fromkeys(("lr_input", "pixel", "perceptual", "gan"), False)
    paired = RealESRNetModel.settings_of({"high_order_degradation": False, "gt_usm": True})
    assert not paired.synthesise and not any(paired.usm_sharpen.values())  # basicsr's SRModel step: plain gt


def test_dataset_reads_the_flat_kernel_keys(tmp_path):
    data = write_hr_folder(tmp_path / "hr", [(40, 40)])
    section = real_esrgan_options("train_realesrnet_x4plus", data)["datasets"]["train"]
    section.update(phase="train", scale=4, sinc_prob2=1.0, final_sinc_prob=0.0, crop_size=CROP)
    dataset = build_dataset(section)
    assert dataset.degradation.second.sinc_prob == 1.0 and dataset.degradation.final.sinc_prob == 0.0
    item = dataset[0]
    assert item["gt"].shape == (3, CROP, CROP)  # reflect-padded as Real-ESRGAN pads to its crop
    identity = torch.zeros(21, 21)
    identity[10, 10] = 1
    assert torch.equal(item["sinc_kernel"], identity)


@pytest.mark.parametrize("change, message", [
    (lambda o: o.update(noise_range2=[30, 1]), r"noise_range2: expected \[low, high\]"),
    (lambda o: o["train"].update(pool_size=4), r"queue_size \(Real-ESRGAN's layout\) and train.pool_size"),
    (lambda o: o.update(l1_gt_usm="no"), "l1_gt_usm: expected true or false"),
    (lambda o: o.pop("network_d"), "network_d: missing; RealESRGANModel trains a discriminator"),
    (lambda o: o["datasets"]["train"].update(dataroot_lq="lr"), r"high_order_degradation: true \(the default\)"),
], ids=["bad value", "both layouts", "not a flag", "no discriminator", "paired data"])
def test_layout_mistakes_are_named_and_point_to_the_page(change, message):
    opt = real_esrgan_options("train_realesrgan_x4plus", {"dataroot_gt": "hr"})
    assert RealESRGANModel.option_conflicts(opt) == []
    change(opt)
    matching = [p for p in RealESRGANModel.option_conflicts(opt) if re.search(message, p)]
    assert len(matching) == 1 and LAYOUT_DOC in matching[0], RealESRGANModel.option_conflicts(opt)


def test_realesrnet_refuses_a_discriminator_and_inert_keys_keep_their_meaning(tmp_path):
    opt = real_esrgan_options("train_realesrnet_x4plus", {"dataroot_gt": "hr"})
    assert RealESRNetModel.option_conflicts(opt) == []
    with_d = dict(opt, network_d={"type": "UNetDiscriminatorSN", "num_in_ch": 3})
    assert any("RealESRNetModel trains no discriminator" in p for p in RealESRNetModel.option_conflicts(with_d))
    data = write_hr_folder(tmp_path / "hr", [(40, 40)])
    section = {**real_esrgan_options("train_realesrnet_x4plus", data)["datasets"]["train"], "phase": "train",
               "scale": 4}
    for key, value in (("blur_kernel_size", 15), ("use_shuffle", False)):
        with pytest.raises(ValueError, match=f"{key}: {value} has no effect.*{LAYOUT_DOC}"):
            build_dataset({**copy.deepcopy(section), key: value})


def test_paired_dataset_reads_real_esrgan_meta_info_and_normalises(tmp_path):
    hr, lr = write_pair_folders(tmp_path, ["a", "b"], hr_size=16)
    (tmp_path / "meta.txt").write_text("b.png, b.png\n")
    section = {"name": "pairs", "type": "RealESRGANPairedDataset", "dataroot_gt": str(hr), "dataroot_lq": str(lr),
               "meta_info": str(tmp_path / "meta.txt"), "io_backend": {"type": "disk"}, "phase": "val", "scale": 4,
               "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}
    dataset = build_dataset(section)
    assert len(dataset) == 1 and dataset[0]["gt_path"].endswith("b.png")
    plain = build_dataset({**section, "mean": None, "std": None})[0]
    torch.testing.assert_close(dataset[0]["gt"], (plain["gt"] - 0.5) / 0.25)


def test_published_files_pass_the_option_check():
    for file in PUBLISHED_FILES:
        data = {"dataroot_gt": "hr", "meta_info": "meta.txt"}
        if file.endswith("pairdata"):
            data["dataroot_lq"] = "lr"
        validate_options(real_esrgan_options(file, data), file)
    opt = real_esrgan_options("train_realesrnet_x4plus", {"dataroot_gt": "hr"})
    opt["noise_rnage2"] = [1, 25]
    with pytest.raises(OptionFileError, match="noise_rnage2: unknown key .did you mean 'noise_range2'"):
        validate_options(opt, "typo.yml")


def test_the_mapping_page_lists_every_flat_key_where_the_code_puts_it():
    """docs/coming-from-basicsr.md's two key tables are the code's tables, row for row."""
    page = (Path(__file__).resolve().parents[1] / LAYOUT_DOC).read_text()
    rows = dict(re.findall(r"^\| `(\w+)` \| `((?:first|second|final)\.\w+)` \|$", page, re.M))
    assert rows == {key: f"{part}.{field}" for key, (part, field) in {**DATASET_KEYS, **MODEL_KEYS}.items()}
