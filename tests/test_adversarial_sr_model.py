"""AdversarialSRModel's shared training step, built directly (no subprocess)."""

import logging

import pytest
import torch
from basicsr.models import build_model


def make_model(tmp_path, gan_type="RelativisticAverageGANLoss", with_d=True, network_g=None, num_gpu=0,
               dist=False, **train_extra):
    for sub in ("models", "training_states"):
        (tmp_path / sub).mkdir(exist_ok=True)
    opt = {
        "name": "unit", "model_type": "AdversarialSRModel", "scale": 4, "num_gpu": num_gpu, "dist": dist,
        "is_train": True, "rank": 0, "world_size": 1,
        "network_g": network_g or {"type": "RRDBGenerator", "num_feat": 8, "num_block": 1, "num_grow_ch": 4,
                                   "scale": 4},
        "path": {"models": str(tmp_path / "models"), "training_states": str(tmp_path / "training_states"),
                 "pretrain_network_g": None},
        "train": {"ema_decay": 0.5,
                  "optim_g": {"type": "Adam", "lr": 1e-2}, "optim_d": {"type": "AdamW", "lr": 1e-2},
                  "scheduler": {"type": "MultiStepLR", "milestones": [100], "gamma": 0.5},
                  "pixel_opt": {"type": "PixelLoss", "criterion": "l1", "loss_weight": 1.0},
                  "gan_opt": {"type": gan_type, "loss_weight": 0.1}, **train_extra},
    }
    if with_d:
        opt["network_d"] = {"type": "VGGDiscriminator", "num_feat": 4, "input_size": 32}
    return build_model(opt)


def batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"lq": torch.rand(2, 3, 8, 8, generator=g), "gt": torch.rand(2, 3, 32, 32, generator=g)}


def snapshot(net):
    return {k: v.detach().clone() for k, v in net.named_parameters()}


def changed(before, net):
    """Whether any parameter moved (buffers such as BatchNorm statistics are not compared)."""
    return any(not torch.equal(before[k], v) for k, v in net.named_parameters())


@pytest.mark.parametrize("gan_type", ["RelativisticAverageGANLoss", "VanillaGANLoss"])
def test_one_step_updates_generator_discriminator_and_ema(tmp_path, gan_type):
    model = make_model(tmp_path, gan_type)
    g0, d0, ema0 = snapshot(model.net_g), snapshot(model.net_d), snapshot(model.net_g_ema)
    model.feed_data(batch())
    model.optimize_parameters(1)
    assert changed(g0, model.net_g) and changed(d0, model.net_d) and changed(ema0, model.net_g_ema)
    log = model.get_current_log()
    assert set(log) == {"l_g_pix", "l_g_gan", "l_g_total", "l_d_real", "l_d_fake", "out_d_real", "out_d_fake"}
    assert log["l_g_total"] == pytest.approx(log["l_g_pix"] + log["l_g_gan"], rel=1e-5)
    assert isinstance(model.optimizer_d, torch.optim.AdamW)


def test_discriminator_warm_up_skips_generator(tmp_path):
    model = make_model(tmp_path, net_d_init_iters=5)
    g0 = snapshot(model.net_g)
    model.feed_data(batch())
    model.optimize_parameters(1)
    assert not changed(g0, model.net_g)
    assert "l_g_total" not in model.get_current_log() and "l_d_real" in model.get_current_log()


def test_psnr_stage_without_discriminator(tmp_path):
    model = make_model(tmp_path, with_d=False, gan_opt=None)
    assert model.net_d is None and len(model.optimizers) == 1
    model.feed_data(batch())
    model.optimize_parameters(1)
    assert set(model.get_current_log()) == {"l_g_pix", "l_g_total"}


def test_non_finite_loss_skips_the_step(tmp_path, basicsr_log):
    caplog = basicsr_log
    model = make_model(tmp_path)
    g0, d0 = snapshot(model.net_g), snapshot(model.net_d)
    data = batch()
    data["gt"][0, 0, 0, 0] = float("nan")
    model.feed_data(data)
    with caplog.at_level(logging.WARNING, logger="basicsr"):
        model.optimize_parameters(1)
    assert not changed(g0, model.net_g) and not changed(d0, model.net_d)
    assert model.skipped_steps == 2 and model.get_current_log()["skipped_steps"] == 2
    assert "non-finite generator loss" in caplog.text
    model.feed_data(batch(1))
    model.optimize_parameters(2)
    assert changed(g0, model.net_g)


def test_save_writes_complete_checkpoints_and_state(tmp_path):
    model = make_model(tmp_path)
    model.save(0, 3)
    ckpt = torch.load(tmp_path / "models" / "net_g_3.pth", weights_only=True)
    assert set(ckpt) == {"params", "params_ema", "arch"}
    assert set(torch.load(tmp_path / "models" / "net_d_3.pth", weights_only=True)) == {"params", "arch"}
    state = torch.load(tmp_path / "training_states" / "3.state", weights_only=True)
    assert state["iter"] == 3 and len(state["optimizers"]) == len(state["schedulers"]) == 2
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["net_d_3.pth", "net_g_3.pth"]


def test_only_rank_0_writes_checkpoints(tmp_path, monkeypatch):
    """Under DDP the other ranks write nothing (BasicSR's ``master_only``)."""
    from basicsr.utils import dist_util

    model = make_model(tmp_path)
    monkeypatch.setattr(dist_util, "get_dist_info", lambda: (1, 2))
    model.save(0, 3)
    assert not any(list((tmp_path / sub).iterdir()) for sub in ("models", "training_states"))
    monkeypatch.setattr(dist_util, "get_dist_info", lambda: (0, 2))
    model.save(0, 3)
    assert (tmp_path / "models" / "net_g_3.pth").is_file() and (tmp_path / "training_states" / "3.state").is_file()


def test_unknown_optimizer_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="unknown optimizer 'Adamm'"):
        make_model(tmp_path, optim_g={"type": "Adamm", "lr": 1e-3})
