"""A real ``train.py -opt`` run through BasicSR's loop on CPU: validation, checkpoints, resume."""

import importlib.util
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import helpers
import pytest
import torch
import yaml
from helpers import read_log, write_pair_folders

REPO = Path(__file__).resolve().parents[1]
TINY_OPT = Path(__file__).parent / "data" / "tiny_esrgan_x4.yml"


def make_experiment(root: Path, **train_changes) -> Path:
    """A copy of train.py under ``root`` (so experiments/ lands there) and a filled-in tiny option file."""
    shutil.copy(REPO / "train.py", root / "train.py")
    train_hr, train_lr = write_pair_folders(root / "data" / "train", [f"t{i}" for i in range(4)], hr_size=48)
    val_hr, val_lr = write_pair_folders(root / "data" / "val", ["v0", "v1"], hr_size=32)
    opt = yaml.safe_load(TINY_OPT.read_text())
    opt["datasets"]["train"].update(dataroot_gt=str(train_hr), dataroot_lq=str(train_lr))
    opt["datasets"]["val"].update(dataroot_gt=str(val_hr), dataroot_lq=str(val_lr))
    opt["train"].update(train_changes)
    path = root / "tiny.yml"
    path.write_text(yaml.safe_dump(opt))
    return path


def run_train(root: Path, opt_path: Path, *args: str) -> str:
    return helpers.run_train(root, opt_path, *args, timeout=300)


@pytest.mark.slow
def test_train_validate_checkpoint_and_auto_resume(tmp_path):
    opt_path = make_experiment(tmp_path)
    run_train(tmp_path, opt_path)
    exp = tmp_path / "experiments" / "tiny_esrgan"
    models = exp / "models"
    assert {p.name for p in models.iterdir()} >= {"net_g_2.pth", "net_g_4.pth", "net_d_4.pth", "net_g_latest.pth"}
    assert not list(models.glob(".*tmp*")), "no temporary checkpoint files left behind"
    ckpt = torch.load(models / "net_g_4.pth", weights_only=True)
    assert set(ckpt) == {"params", "params_ema", "arch"}
    assert ckpt["arch"]["type"] == "RRDBGenerator" and ckpt["arch"]["num_feat"] == 8
    assert "conv_first.weight" in ckpt["params_ema"]
    assert not torch.equal(ckpt["params"]["conv_last.weight"], ckpt["params_ema"]["conv_last.weight"])
    assert (exp / "training_states" / "4.state").is_file()
    log = read_log(exp)
    for term in ("l_g_pix", "l_g_percep", "l_g_gan", "l_g_total", "l_d_real", "l_d_fake", "out_d_real", "out_d_fake"):
        assert re.search(rf"{term}: -?\d\.\d+e[+-]\d+", log), f"{term} not logged"
    psnr = [float(v) for v in re.findall(r"# psnr: ([\d.]+)", log)]
    assert len(psnr) == 3 and all(0 < v < 60 for v in psnr)  # iterations 2 and 4, and the final one
    stlpips = [float(v) for v in re.findall(r"# stlpips: ([\d.]+)", log)]
    assert len(stlpips) == 3 and all(0 < v < 1 for v in stlpips)  # the perceptual metric, best = lowest
    assert f"# stlpips: {stlpips[-1]:.4f}\tBest: {min(stlpips):.4f}" in log
    assert (exp / "visualization" / "v0" / "v0_4.png").is_file()
    assert list((tmp_path / "tb_logger" / "tiny_esrgan").glob("events.out.tfevents.*"))

    out = run_train(tmp_path, opt_path, "--auto_resume", "--force_yml", "train:total_iter=6")
    assert "iter: 4" in read_log(exp).split("Resuming training")[1][:200], out[-2000:]
    assert (models / "net_g_6.pth").is_file() and (exp / "training_states" / "6.state").is_file()
    resumed = torch.load(exp / "training_states" / "6.state", weights_only=True)
    assert resumed["iter"] == 6 and len(resumed["optimizers"]) == 2


@pytest.mark.slow
def test_psnr_stage_and_vanilla_gan_train(tmp_path):
    opt_path = make_experiment(tmp_path, gan_opt={"type": "VanillaGANLoss", "loss_weight": 1e-3},
                               perceptual_opt=None, total_iter=2)
    run_train(tmp_path, opt_path)
    log = read_log(tmp_path / "experiments" / "tiny_esrgan")
    assert "l_g_gan" in log and "l_g_percep" not in log

    opt = yaml.safe_load(opt_path.read_text())
    del opt["network_d"]
    opt["train"]["gan_opt"] = None
    opt["name"] = "tiny_psnr"
    opt_path.write_text(yaml.safe_dump(opt))
    run_train(tmp_path, opt_path)
    log = read_log(tmp_path / "experiments" / "tiny_psnr")
    assert "l_g_pix" in log and "l_d_real" not in log
    assert (tmp_path / "experiments" / "tiny_psnr" / "models" / "net_g_2.pth").is_file()


# train.py, with every torch.save into experiments/ recorded per rank (in saves_rank<N>.txt)
RECORDING_TRAIN = """
import os, runpy, torch
real_save = torch.save
def recording_save(obj, f, *args, **kwargs):
    name = str(getattr(f, "name", f))
    if "experiments" in name:
        with open(f"saves_rank{os.environ['RANK']}.txt", "a") as log:
            log.write(name + "\\n")
    return real_save(obj, f, *args, **kwargs)
torch.save = recording_save
runpy.run_path("train.py", run_name="__main__")
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_torchrun_two_cpu_processes(tmp_path):
    """DDP on CPU: gloo backend, no CUDA device ids; only rank 0 writes checkpoints (as BasicSR)."""
    if torch.cuda.is_available():
        pytest.skip("checks the CPU (gloo) path")
    opt_path = make_experiment(tmp_path)
    (tmp_path / "recording_train.py").write_text(RECORDING_TRAIN)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={free_port()}",
           "recording_train.py", "-opt", str(opt_path), "--launcher", "pytorch"]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    exp = tmp_path / "experiments" / "tiny_esrgan"
    assert "world_size: 2" in read_log(exp)
    ckpt = torch.load(exp / "models" / "net_g_4.pth", weights_only=True)
    assert "conv_first.weight" in ckpt["params"]
    saved_by_rank0 = (tmp_path / "saves_rank0.txt").read_text()
    assert "net_g_4.pth" in saved_by_rank0 and "4.state" in saved_by_rank0
    assert not (tmp_path / "saves_rank1.txt").exists(), (tmp_path / "saves_rank1.txt").read_text()


def test_train_py_closes_the_process_group_on_every_rank():
    """train.py leaves a multi-process run through a barrier and destroy_process_group: a rank that
    exited with its group open while rank 0 still validated aborted (exit -6) in about 1 run of 3."""
    import torch.distributed as dist

    spec = importlib.util.spec_from_file_location("train_entry", REPO / "train.py")
    train_entry = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train_entry)
    train_entry.close_process_group()  # no group: nothing to do
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{free_port()}", rank=0, world_size=1)
    try:
        train_entry.close_process_group()
        assert not dist.is_initialized()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
