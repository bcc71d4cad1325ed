"""The basicsr 1.4.2 fixes in realesrgan_ext.compat: each applied, each doing its job."""

import importlib
import os
import sys

import basicsr.train
import basicsr.utils.dist_util as dist_util
import pytest
import torch
from basicsr.models.base_model import BaseModel
from basicsr.utils.registry import ARCH_REGISTRY

from realesrgan_ext import compat
from realesrgan_ext.registry import register_into


def test_functional_tensor_alias_provides_rgb_to_grayscale():
    from torchvision.transforms.functional_tensor import rgb_to_grayscale

    gray = rgb_to_grayscale(torch.ones(3, 4, 4))
    assert gray.shape == (1, 4, 4)
    assert torch.allclose(gray, torch.ones(1, 4, 4), atol=1e-3)


def test_fixes_are_installed_and_apply_is_idempotent():
    assert basicsr.train.load_resume_state is compat.load_resume_state
    assert dist_util._init_dist_pytorch is compat.init_dist_pytorch
    assert BaseModel.model_to_device is compat.model_to_device
    assert compat.apply() == []


def test_load_resume_state_on_cpu_from_experiment_root(tmp_path, monkeypatch):
    states = tmp_path / "exp" / "training_states"
    states.mkdir(parents=True)
    for it in (5, 40, 100):
        torch.save({"iter": it, "epoch": 0, "optimizers": [], "schedulers": []}, states / f"{it}.state")
    (states / "100.state.tmp").write_bytes(b"half-written")
    monkeypatch.chdir(tmp_path.parent)  # basicsr looked relative to the working directory
    opt = {"auto_resume": True, "name": "exp",
           "path": {"training_states": str(states), "models": str(tmp_path / "exp" / "models"),
                    "resume_state": None}}
    state = compat.load_resume_state(opt)
    assert state["iter"] == 100
    assert opt["path"]["resume_state"] == str(states / "100.state")


def test_load_resume_state_without_states_starts_fresh(tmp_path):
    opt = {"auto_resume": True, "path": {"training_states": str(tmp_path / "none")}}
    assert compat.load_resume_state(opt) is None


def test_local_rank_argument_is_normalised():
    argv = ["train.py", "--local-rank=1", "-opt", "x.yml", "--local-rank", "2"]
    assert compat.normalize_local_rank_argv(argv) == [
        "train.py", "--local_rank=1", "-opt", "x.yml", "--local_rank", "2"]


def test_init_dist_uses_gloo_on_cpu(monkeypatch):
    if torch.cuda.is_available():
        pytest.skip("checks the CPU path")
    import torch.distributed as dist

    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", "29533")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "1")
    dist_util.init_dist("pytorch")
    try:
        assert dist.get_backend() == "gloo"
        net = torch.nn.Linear(2, 2)
        model = BaseModel.__new__(BaseModel)
        model.opt, model.device = {"dist": True, "num_gpu": 0}, torch.device("cpu")
        wrapped = model.model_to_device(net)
        assert isinstance(wrapped, torch.nn.parallel.DistributedDataParallel)
        assert wrapped(torch.ones(1, 2)).shape == (1, 2)
    finally:
        dist.destroy_process_group()


def test_register_into_is_idempotent_but_refuses_a_different_class():
    class CompatProbeNet(torch.nn.Module):
        pass

    register_into(ARCH_REGISTRY)(CompatProbeNet)
    register_into(ARCH_REGISTRY)(CompatProbeNet)  # same definition again: fine
    other = type("CompatProbeNet", (torch.nn.Module,), {"__module__": "elsewhere"})
    with pytest.raises(KeyError, match="CompatProbeNet"):
        register_into(ARCH_REGISTRY)(other)
    del ARCH_REGISTRY._obj_map["CompatProbeNet"]


def test_plugin_reimport_does_not_fail():
    import realesrgan_ext.archs

    importlib.reload(realesrgan_ext.archs)
    assert "realesrgan_ext" in sys.modules
    assert os.path.isdir(os.path.dirname(realesrgan_ext.archs.__file__))
