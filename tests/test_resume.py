"""Resuming restores the generator, its EMA copy, the discriminator and the optimizer and scheduler
state exactly (tensor by tensor), so training continues as if it had never stopped."""

import copy

import torch
from basicsr.models import build_model
from basicsr.utils.misc import check_resume


def options(tmp_path):
    return {
        "name": "resume", "model_type": "AdversarialSRModel", "scale": 4, "num_gpu": 0, "dist": False,
        "is_train": True, "rank": 0, "world_size": 1,
        "network_g": {"type": "RRDBGenerator", "num_feat": 8, "num_block": 1, "num_grow_ch": 4, "scale": 4},
        "network_d": {"type": "VGGDiscriminator", "num_feat": 4, "input_size": 32},
        # as options/esrgan_x4.yml: start from a PSNR model's EMA weights
        "path": {"models": str(tmp_path / "models"), "training_states": str(tmp_path / "training_states"),
                 "pretrain_network_g": None, "param_key_g": "params_ema", "resume_state": None},
        "train": {"ema_decay": 0.9, "optim_g": {"type": "Adam", "lr": 1e-3, "betas": [0.9, 0.99]},
                  "optim_d": {"type": "Adam", "lr": 1e-3, "betas": [0.9, 0.99]},
                  "scheduler": {"type": "MultiStepLR", "milestones": [2, 4], "gamma": 0.5},
                  "pixel_opt": {"type": "PixelLoss", "criterion": "l1", "loss_weight": 1.0},
                  "gan_opt": {"type": "RelativisticAverageGANLoss", "loss_weight": 0.1}},
    }


def train_steps(model, first, last):
    for it in range(first, last + 1):
        g = torch.Generator().manual_seed(it)
        model.feed_data({"lq": torch.rand(2, 3, 8, 8, generator=g), "gt": torch.rand(2, 3, 32, 32, generator=g)})
        model.update_learning_rate(it, warmup_iter=-1)
        model.optimize_parameters(it)


def assert_same_state(a: dict, b: dict, what: str):
    assert a.keys() == b.keys(), what
    for key in a:
        if isinstance(a[key], torch.Tensor):
            assert torch.equal(a[key], b[key]), f"{what}: {key}"
        elif isinstance(a[key], dict):
            assert_same_state(a[key], b[key], f"{what}.{key}")
        elif isinstance(a[key], list):
            assert len(a[key]) == len(b[key]), f"{what}.{key}"
            for i, (x, y) in enumerate(zip(a[key], b[key], strict=True)):
                if isinstance(x, dict):
                    assert_same_state(x, y, f"{what}.{key}[{i}]")
                else:
                    assert x == y, f"{what}.{key}[{i}]"
        else:
            assert a[key] == b[key], f"{what}: {key}"


def test_resume_restores_weights_ema_and_optimizers_exactly(tmp_path, one_torch_thread):
    for sub in ("models", "training_states"):
        (tmp_path / sub).mkdir()
    original = build_model(options(tmp_path))
    train_steps(original, 1, 3)
    original.save(0, 3)

    opt = copy.deepcopy(options(tmp_path))
    opt["path"]["resume_state"] = str(tmp_path / "training_states" / "3.state")
    check_resume(opt, 3)  # what BasicSR's train_pipeline does before building the model
    resumed = build_model(opt)
    resumed.resume_training(torch.load(opt["path"]["resume_state"], weights_only=True))

    assert_same_state(original.net_g.state_dict(), resumed.net_g.state_dict(), "net_g")
    assert_same_state(original.net_g_ema.state_dict(), resumed.net_g_ema.state_dict(), "net_g_ema")
    assert_same_state(original.net_d.state_dict(), resumed.net_d.state_dict(), "net_d")
    for i, (a, b) in enumerate(zip(original.optimizers, resumed.optimizers, strict=True)):
        assert_same_state(a.state_dict(), b.state_dict(), f"optimizer {i}")
    for i, (a, b) in enumerate(zip(original.schedulers, resumed.schedulers, strict=True)):
        assert_same_state(a.state_dict(), b.state_dict(), f"scheduler {i}")
    assert not torch.equal(original.net_g.conv_first.weight, original.net_g_ema.conv_first.weight)

    # and training goes on identically (the learning rate halves at iteration 4 on both)
    train_steps(original, 4, 5)
    train_steps(resumed, 4, 5)
    for name in ("net_g", "net_g_ema", "net_d"):
        assert_same_state(getattr(original, name).state_dict(), getattr(resumed, name).state_dict(), name)
    assert original.get_current_learning_rate() == resumed.get_current_learning_rate() == [2.5e-4]  # G's
