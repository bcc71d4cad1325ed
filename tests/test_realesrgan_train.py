"""The Real-ESRGAN recipes through ``train.py`` on CPU: HR photos only, validation, ``--auto_resume``.

Each test loads the real option file and shrinks only sizes (networks, crops, iterations), so a
broken recipe fails here.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import pytest
import skimage
import torch
import yaml
from helpers import read_log, run_train, smooth_image, write_pair_folders
from test_train_pipeline import free_port

from realesrgan_ext.data.realesrgan_hr_dataset import RealESRGANHRDataset

REPO = Path(__file__).resolve().parents[1]
TINY_G = {"type": "RRDBGenerator", "num_in_ch": 3, "num_out_ch": 3, "scale": 4, "num_feat": 8, "num_block": 1,
          "num_grow_ch": 4}


def write_hr_folder(root: Path, n: int = 4, size: int = 96) -> Path:  # 4 = two full batches an epoch
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        cv2.imwrite(str(root / f"photo{i}.png"), smooth_image(size, size + 8 * i, seed=10 + i))
    return root


def tiny_recipe(root: Path, recipe: str, name: str, **train_changes) -> Path:
    """``options/<recipe>.yml`` with tiny sizes and the data under ``root``; returns the new file."""
    if not (root / "train.py").is_file():
        shutil.copy(REPO / "train.py", root / "train.py")
        write_hr_folder(root / "hr")
        write_pair_folders(root / "val", ["v0"], hr_size=32)
    opt = yaml.safe_load((REPO / "options" / f"{recipe}.yml").read_text())
    opt.update(name=name, num_gpu=0)
    opt["datasets"]["train"].update(dataroot_gt=str(root / "hr"), crop_size=80, gt_size=32, num_worker_per_gpu=0,
                                    batch_size_per_gpu=2)
    opt["datasets"]["val"].update(dataroot_gt=str(root / "val" / "high_res"), dataroot_lq=str(root / "val" / "low_res"))
    if not recipe.startswith("finetune"):  # the fine-tune keeps the official network to load its weights
        opt["network_g"] = dict(TINY_G)
    if "network_d" in opt:
        opt["network_d"]["num_feat"] = 8
        opt["train"]["perceptual_opt"].update(vgg_weights="caffe", allow_download=False)  # offline
    opt["path"]["pretrain_network_g"] = None
    opt["train"].update(total_iter=2, pool_size=4, **train_changes)
    opt["val"].update(val_freq=2)
    opt["logger"].update(print_freq=1, save_checkpoint_freq=2, use_tb_logger=False)
    path = root / f"{name}.yml"
    path.write_text(yaml.safe_dump(opt))
    return path


@pytest.mark.slow
def test_realesrnet_then_realesrgan_with_validation_and_auto_resume(tmp_path):
    net_opt = tiny_recipe(tmp_path, "realesrnet_x4", "tiny_realesrnet")
    run_train(tmp_path, net_opt)
    net_exp = tmp_path / "experiments" / "tiny_realesrnet"
    assert (net_exp / "models" / "net_g_2.pth").is_file()
    log = read_log(net_exp)
    assert re.search(r"l_g_pix: \d\.\d+e[+-]\d+", log) and "l_d_real" not in log
    assert len(re.findall(r"# psnr: [\d.]+", log)) == 2  # iteration 2 and the final validation

    gan_opt = tiny_recipe(tmp_path, "realesrgan_x4", "tiny_realesrgan")
    opt = yaml.safe_load(gan_opt.read_text())
    opt["path"]["pretrain_network_g"] = str(net_exp / "models" / "net_g_latest.pth")  # stage 2 from stage 1
    gan_opt.write_text(yaml.safe_dump(opt))
    run_train(tmp_path, gan_opt)
    gan_exp = tmp_path / "experiments" / "tiny_realesrgan"
    log = read_log(gan_exp)
    for term in ("l_g_pix", "l_g_percep", "l_g_gan", "l_d_real", "l_d_fake", "out_d_real", "out_d_fake"):
        assert re.search(rf"{term}: -?\d\.\d+e[+-]\d+", log), f"{term} not logged"
    assert set(torch.load(gan_exp / "models" / "net_d_2.pth", weights_only=True)["params"]) >= {"conv9.weight"}

    run_train(tmp_path, gan_opt, "--auto_resume", "--force_yml", "train:total_iter=4")
    assert "iter: 2" in read_log(gan_exp).split("Resuming training")[1][:200]
    assert (gan_exp / "training_states" / "4.state").is_file()


def final_weights(exp: Path, it: int) -> dict[str, torch.Tensor]:
    weights = {}
    for path in sorted((exp / "models").glob(f"net_*_{it}.pth")):
        for key, params in torch.load(path, weights_only=True).items():
            if key != "arch":
                weights.update({f"{path.stem}.{key}.{name}": value for name, value in params.items()})
    return weights


@pytest.mark.slow
@pytest.mark.parametrize("recipe", ["realesrnet_x4", "realesrgan_x4"])
def test_resumed_run_keeps_the_pool_and_ends_bit_identical(tmp_path, recipe):
    """Stopped right after the checkpoint of iteration 3 (the pool full, mid-epoch) and resumed with
    --auto_resume, the run ends with the weights of the uninterrupted one: the pool went through the state."""
    (tmp_path / "whole").mkdir()
    opt_path = tiny_recipe(tmp_path / "whole", recipe, "tiny")
    opt = yaml.safe_load(opt_path.read_text())
    opt["train"]["total_iter"] = 5
    opt["val"]["val_freq"] = 100
    opt["logger"]["save_checkpoint_freq"] = 1
    opt_path.write_text(yaml.safe_dump(opt))
    run_train(tmp_path / "whole", opt_path)
    whole = tmp_path / "whole" / "experiments" / "tiny"
    pool = torch.load(whole / "training_states" / "3.state", weights_only=True)["pools"][0]
    assert pool["filled"] == 4 and pool["lq"]["levels"].dtype == torch.uint8
    if recipe == "realesrnet_x4":  # Real-ESRNet pools the HR sharpened before the crop: off the 8-bit levels
        assert pool["gt"]["values"].dtype == torch.float32
    else:
        assert pool["gt"]["levels"].dtype == torch.uint8

    shutil.copytree(tmp_path / "whole", tmp_path / "stopped")  # as if stopped after writing checkpoint 3
    stopped = tmp_path / "stopped" / "experiments" / "tiny"
    for path in [*stopped.glob("training_states/[45].state"), *stopped.glob("models/net_*_[45].pth"),
                 *stopped.glob("models/*latest.pth")]:
        path.unlink()
    run_train(tmp_path / "stopped", opt_path, "--auto_resume")
    assert "Training-pair pool restored: 4 of 4 pairs\n" in read_log(stopped).split("Resuming training")[-2]
    ours, theirs = final_weights(stopped, 5), final_weights(whole, 5)
    assert ours.keys() == theirs.keys() and len(ours) > 10
    different = [k for k in ours if not torch.equal(ours[k], theirs[k])]
    assert not different, f"weights differ from the uninterrupted run: {different[:5]}"


def torchrun(root: Path, opt_path: Path, *args: str) -> None:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={free_port()}",
           "train.py", "-opt", str(opt_path), "--launcher", "pytorch", *args]
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


@pytest.mark.slow
def test_two_processes_save_and_restore_each_own_pool(tmp_path):
    """DDP on CPU: rank 0's training state holds both ranks' pools, and on resume each rank goes on
    with its own (a pool of 2 fills in iterations 1-2; iteration 3 swaps one pair in, keeps one)."""
    if torch.cuda.is_available():
        pytest.skip("checks the CPU (gloo) path")
    opt_path = tiny_recipe(tmp_path, "realesrnet_x4", "tiny_ddp")
    opt = yaml.safe_load(opt_path.read_text())
    opt["datasets"]["train"]["batch_size_per_gpu"] = 1  # 4 photos: 2 per rank, 2 iterations an epoch
    opt["train"]["pool_size"] = 2
    opt["val"]["val_freq"] = 100
    opt["logger"]["save_checkpoint_freq"] = 1
    opt_path.write_text(yaml.safe_dump(opt))
    torchrun(tmp_path, opt_path)
    states = tmp_path / "experiments" / "tiny_ddp" / "training_states"
    saved = torch.load(states / "2.state", weights_only=True)["pools"]
    assert [p["filled"] for p in saved] == [2, 2]
    # Real-ESRNet pools its HR sharpened before the crop: stored as float values, off the 8-bit levels
    assert not torch.equal(saved[0]["gt"]["values"], saved[1]["gt"]["values"])  # each rank's own patches

    torchrun(tmp_path, opt_path, "--auto_resume", "--force_yml", "train:total_iter=3")
    assert "Training-pair pool restored: 2 of 2 pairs" in read_log(tmp_path / "experiments" / "tiny_ddp")
    after = torch.load(states / "3.state", weights_only=True)["pools"]
    for rank in (0, 1):
        kept = [row for row in after[rank]["gt"]["values"] if any(torch.equal(row, old) for old in
                                                                  saved[rank]["gt"]["values"])]
        assert len(kept) == 1, f"rank {rank} did not go on with its own pool"


@pytest.mark.slow
def test_finetune_recipe_starts_from_the_official_x4plus(tmp_path):
    opt_path = tiny_recipe(tmp_path, "finetune_realesrgan_x4plus", "tiny_finetune", net_d_init_iters=1)
    opt = yaml.safe_load(opt_path.read_text())
    opt["path"]["pretrain_network_g"] = "realesrgan-x4plus"
    opt["datasets"]["train"]["batch_size_per_gpu"] = 1
    photo = cv2.cvtColor(skimage.data.astronaut()[100:164, 150:214], cv2.COLOR_RGB2BGR)  # a real photo crop
    val = opt["datasets"]["val"]
    cv2.imwrite(val["dataroot_gt"] + "/v0.png", photo)
    cv2.imwrite(val["dataroot_lq"] + "/v0.png", cv2.resize(photo, (16, 16), interpolation=cv2.INTER_AREA))
    opt_path.write_text(yaml.safe_dump(opt))
    run_train(tmp_path, opt_path)
    exp = tmp_path / "experiments" / "tiny_finetune"
    log = read_log(exp)
    assert "realesrgan-x4plus.pth" in log and "l_g_gan" in log
    psnr = [float(v) for v in re.findall(r"# psnr: ([\d.]+)", log)]
    assert psnr and all(20 < v < 40 for v in psnr)  # the official model upscales the photo sensibly

    run_train(tmp_path, opt_path, "--auto_resume", "--force_yml", "train:total_iter=4")
    assert "iter: 2" in read_log(exp).split("Resuming training")[1][:200]
    assert (exp / "training_states" / "4.state").is_file() and (exp / "models" / "net_d_4.pth").is_file()


def test_hr_dataset_crops_pads_and_samples_kernels(tmp_path):
    hr = write_hr_folder(tmp_path / "hr", n=2, size=60)
    opt = {"dataroot_gt": str(hr), "scale": 4, "crop_size": 80, "gt_size": 32, "phase": "train",
           "degradation": {"kernel_size_range": [7, 11]}}
    dataset = RealESRGANHRDataset(opt)
    assert len(dataset) == 2
    item = dataset[1]
    assert item["gt"].shape == (3, 80, 80) and 0 <= item["gt"].min() and item["gt"].max() <= 1
    for key in ("kernel1", "kernel2", "sinc_kernel"):
        assert item[key].shape == (11, 11)
        assert abs(item[key].sum().item() - 1) < 1e-5
    assert item["gt_path"].endswith("photo1.png")
    meta = tmp_path / "meta.txt"
    meta.write_text("photo1.png\n")
    assert RealESRGANHRDataset({**opt, "meta_info_file": str(meta)}).keys == ["photo1"]
    meta.write_text("nope.png\n")
    with pytest.raises(FileNotFoundError, match="nope"):
        RealESRGANHRDataset({**opt, "meta_info_file": str(meta)})
    with pytest.raises(ValueError, match="gt_size"):
        RealESRGANHRDataset({**opt, "gt_size": 30})
    with pytest.raises(ValueError, match="crop_size 64 is too small.*at least 74"):
        RealESRGANHRDataset({**opt, "crop_size": 64, "degradation": {}})
    with pytest.raises(ValueError, match="datasets.train.degradation.first: unknown key"):
        RealESRGANHRDataset({**opt, "degradation": {"first": {"blur_sigam": [1, 2]}}})


def test_recipes_pass_option_validation():
    from realesrgan_ext.option_validation import OptionFileError, validate_option_file, validate_options

    for recipe in ("realesrnet_x4", "realesrgan_x4", "finetune_realesrgan_x4plus", "realworld_demo_x4"):
        validate_option_file(REPO / "options" / f"{recipe}.yml")
    opt = yaml.safe_load((REPO / "options" / "realesrgan_x4.yml").read_text())
    opt["datasets"]["train"]["degradation"]["second"]["jpeg_rnage"] = [30, 95]
    opt["train"]["usm_sharpen"]["percep"] = True
    with pytest.raises(OptionFileError) as err:
        validate_options(opt, "x.yml")
    assert "jpeg_rnage" in str(err.value) and "percep" in str(err.value)
