"""Checkpoint files: pruning to the newest N, never the one a resume needs; resume position and RNG."""

import os
import random

import numpy as np
import torch
from basicsr.data.data_sampler import EnlargedSampler

from realesrgan_ext.utils import resume_position
from realesrgan_ext.utils.checkpoint import checkpoint_iterations, prune_checkpoints


def write(root, it, labels=("g", "d"), state=True):
    (root / "models").mkdir(exist_ok=True)
    (root / "states").mkdir(exist_ok=True)
    for label in labels:
        torch.save({"params": {}}, root / "models" / f"net_{label}_{it}.pth")
    if state:
        torch.save({"iter": it, "optimizers": [], "schedulers": []}, root / "states" / f"{it}.state")


def names(folder):
    return sorted(p.name for p in folder.iterdir())


def test_prune_keeps_the_newest_n_resumable_checkpoints(tmp_path):
    for it in (2, 4, 6, 8):
        write(tmp_path, it)
    write(tmp_path, 10, state=False)  # killed between the networks and the state: not resumable
    write(tmp_path, 12, labels=("g",))  # killed between net_g and net_d: not resumable either
    write(tmp_path, 11)
    (tmp_path / "models" / "net_d_11.pth").write_bytes(b"truncated")  # corrupt: not resumable
    torch.save({}, tmp_path / "models" / "net_g_latest.pth")
    dead = tmp_path / "models" / ".net_g_14.pth.tmp-999999999"  # no such process
    live = tmp_path / "models" / f".net_g_14.pth.tmp-{os.getpid()}"
    dead.write_bytes(b"x")
    live.write_bytes(b"x")
    deleted = prune_checkpoints(tmp_path / "states", tmp_path / "models", ["g", "d"], keep=2)
    assert names(tmp_path / "states") == ["11.state", "12.state", "6.state", "8.state"]
    assert names(tmp_path / "models") == sorted([live.name, "net_d_10.pth", "net_d_11.pth", "net_g_11.pth",
                                                 "net_d_6.pth", "net_d_8.pth",
                                                 "net_g_10.pth", "net_g_12.pth", "net_g_6.pth", "net_g_8.pth",
                                                 "net_g_latest.pth"])
    assert dead in deleted and len(deleted) == 1 + 2 * 3
    assert checkpoint_iterations(tmp_path / "states") == [12, 11, 8, 6]


def test_prune_with_fewer_checkpoints_than_n_deletes_nothing(tmp_path):
    write(tmp_path, 2)
    write(tmp_path, 4, state=False)
    assert prune_checkpoints(tmp_path / "states", tmp_path / "models", ["g", "d"], keep=2) == []
    assert names(tmp_path / "models") == ["net_d_2.pth", "net_d_4.pth", "net_g_2.pth", "net_g_4.pth"]


def test_rng_state_round_trips_through_a_weights_only_checkpoint(tmp_path):
    torch.save({"rng": resume_position.rng_state()}, tmp_path / "s.state")
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(5)
    np.random.seed(5)
    torch.manual_seed(5)
    resume_position.set_rng_state(torch.load(tmp_path / "s.state", weights_only=True)["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


def test_sampler_resumes_after_the_batches_already_trained(monkeypatch):
    dataset = list(range(10))
    sampler = EnlargedSampler(dataset, num_replicas=1, rank=0, ratio=2)  # 20 samples: 6 batches of 3
    sampler.set_epoch(1)
    full = list(sampler)
    random.seed(1)
    saved = resume_position.rng_state()
    after_save = random.random()
    random.seed(99)
    # iteration 8 = epoch 0's 6 batches + 2 batches of epoch 1
    resume_position.expect_resume({"epoch": 1, "iter": 8, "rng": saved}, batch_size=3, restore_rng=True)
    sampler.set_epoch(0)
    assert list(sampler) != full, "another epoch is left alone"
    sampler.set_epoch(1)
    assert list(sampler) == full[6:]
    assert random.random() == after_save
    assert list(sampler) == full, "acts once"
