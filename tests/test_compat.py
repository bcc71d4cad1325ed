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
    from basicsr.data.data_sampler import EnlargedSampler

    assert hasattr(EnlargedSampler.__iter__, "__wrapped__")
    assert compat.apply() == []


def write_checkpoint(root, it, corrupt=None):
    """``training_states/<it>.state`` and ``models/net_g_<it>.pth``; ``corrupt`` truncates one of them."""
    (root / "training_states").mkdir(parents=True, exist_ok=True)
    (root / "models").mkdir(parents=True, exist_ok=True)
    state = root / "training_states" / f"{it}.state"
    net = root / "models" / f"net_g_{it}.pth"
    torch.save({"iter": it, "epoch": 0, "optimizers": [], "schedulers": []}, state)
    torch.save({"params": {"w": torch.ones(3)}}, net)
    if corrupt is not None:
        path = {"state": state, "net": net}[corrupt]
        path.write_bytes(path.read_bytes()[:40])
    return state


def resume_opt(root):
    return {"auto_resume": True, "name": "exp", "network_g": {"type": "X"},
            "datasets": {"train": {"batch_size_per_gpu": 2}},
            "path": {"training_states": str(root / "training_states"), "models": str(root / "models"),
                     "resume_state": None}}


def test_load_resume_state_on_cpu_from_experiment_root(tmp_path, monkeypatch):
    root = tmp_path / "exp"
    for it in (5, 40, 100):
        write_checkpoint(root, it)
    (root / "training_states" / "100.state.tmp").write_bytes(b"half-written")
    monkeypatch.chdir(tmp_path.parent)  # basicsr looked relative to the working directory
    opt = resume_opt(root)
    state = compat.load_resume_state(opt)
    assert state["iter"] == 100
    assert opt["path"]["resume_state"] == str(root / "training_states" / "100.state")
    assert opt["path"]["pretrain_network_g"] == str(root / "models" / "net_g_100.pth")


@pytest.mark.parametrize("corrupt", ["state", "net"])
def test_truncated_newest_checkpoint_is_named_and_skipped(tmp_path, capsys, corrupt):
    root = tmp_path / "exp"
    write_checkpoint(root, 2)
    write_checkpoint(root, 4)
    bad = write_checkpoint(root, 6, corrupt=corrupt)
    (root / "models" / "net_g_4.pth").unlink()  # a state whose network is missing is skipped too
    opt = resume_opt(root)
    assert compat.load_resume_state(opt)["iter"] == 2
    err = capsys.readouterr().err
    bad_file = bad if corrupt == "state" else root / "models" / "net_g_6.pth"
    assert f"checkpoint of iteration 6 skipped: {bad_file} cannot be loaded" in err
    assert f"checkpoint of iteration 4 skipped: {root / 'models' / 'net_g_4.pth'} is missing" in err
    assert opt["path"]["pretrain_network_g"].endswith("net_g_2.pth")


def test_load_resume_state_without_states_starts_fresh(tmp_path):
    opt = {"auto_resume": True, "path": {"training_states": str(tmp_path / "none"), "models": str(tmp_path / "m")}}
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


def test_test_files_in_the_layout_before_val_get_a_val_section():
    import basicsr.test

    assert hasattr(basicsr.test.parse_options, "__wrapped__")
    legacy = {"name": "RCAN", "save_img": True, "crop_border": None, "datasets": {}}  # BasicSR's test_RCAN.yml
    assert compat.val_section_from_legacy(legacy) == {"name": "RCAN", "crop_border": None, "datasets": {},
                                                      "val": {"save_img": True, "suffix": None}}
    current = {"val": {"save_img": False, "metrics": {}}, "suffix": "x"}
    assert compat.val_section_from_legacy(dict(current)) == current  # a val section is left alone
