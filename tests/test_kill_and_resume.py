"""A tiny training SIGKILLed again and again, resumed with --auto_resume each time, ends where and
as an uninterrupted run does: same last iteration, equal weights, every checkpoint loadable."""

import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from test_train_pipeline import make_experiment

from realesrgan_ext.utils.checkpoint import checkpoint_iterations

TOTAL_ITER = 14  # 4 images x enlarge 3 / batch 2 = 6 batches per epoch: checkpoints fall mid-epoch

# Runs train.py and SIGKILLs itself right before the rename that would complete KILL_AT_REPLACE:
# a kill during that checkpoint's write, at a chosen file instead of a lucky moment.
KILLING_FRONT = """
import os, runpy, signal, sys
target, real_replace = os.environ.get("KILL_AT_REPLACE"), os.replace
def replace(src, dst, *args, **kwargs):
    if os.path.basename(str(dst)) == target:
        os.kill(os.getpid(), signal.SIGKILL)
    return real_replace(src, dst, *args, **kwargs)
os.replace = replace
sys.argv[0] = "train.py"
runpy.run_path("train.py", run_name="__main__")
"""


def experiment(root: Path, name: str) -> Path:
    opt_path = root / f"{name}.yml"
    opt = yaml.safe_load((root / "tiny.yml").read_text())
    opt["name"] = name
    opt_path.write_text(yaml.safe_dump(opt))
    return opt_path


def start(root: Path, opt_path: Path, kill_at: str | None = None) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "KILL_AT_REPLACE": kill_at or ""}
    with open(root / f"{opt_path.stem}.out", "a") as log:  # the child keeps its own handle
        return subprocess.Popen([sys.executable, "killing_front.py", "-opt", str(opt_path), "--auto_resume"],
                                cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)


def finish(proc: subprocess.Popen, timeout: float = 300) -> int:
    return proc.wait(timeout=timeout)


def kill_when_past(out: Path, earlier: int, proc: subprocess.Popen, iteration: int, rng: random.Random) -> None:
    """SIGKILL at a random moment once this run's log (``out`` after ``earlier`` characters)
    reports ``iteration``, or never if the run ends first."""
    deadline = time.time() + 300
    while proc.poll() is None and time.time() < deadline:
        # training-step lines only: the option dump's "total_iter: 14" must not count as reached
        reached = [int(v) for v in re.findall(r"\[epoch:\s*\d+, iter:\s*(\d+)", out.read_text()[earlier:])]
        if reached and reached[-1] >= iteration:
            time.sleep(rng.uniform(0, 0.3))
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)


def final_weights(exp: Path) -> dict[str, torch.Tensor]:
    g = torch.load(exp / "models" / "net_g_latest.pth", weights_only=True)
    d = torch.load(exp / "models" / "net_d_latest.pth", weights_only=True)
    return {**{f"g.{k}": v for k, v in g["params"].items()}, **{f"ema.{k}": v for k, v in g["params_ema"].items()},
            **{f"d.{k}": v for k, v in d["params"].items()}}


@pytest.mark.slow
def test_sigkill_at_random_moments_and_during_checkpoint_writes(tmp_path):
    make_experiment(tmp_path, total_iter=TOTAL_ITER, perceptual_opt=None,
                    scheduler={"type": "MultiStepLR", "milestones": [7], "gamma": 0.5})
    opt = yaml.safe_load((tmp_path / "tiny.yml").read_text())
    opt["datasets"]["train"]["dataset_enlarge_ratio"] = 3
    opt["val"].update(val_freq=4, save_img=False)  # validation between checkpoints must not shift the data
    opt["logger"].update(save_checkpoint_freq=2, keep_checkpoints=2, use_tb_logger=False)
    (tmp_path / "tiny.yml").write_text(yaml.safe_dump(opt))
    (tmp_path / "killing_front.py").write_text(KILLING_FRONT)

    reference = experiment(tmp_path, "reference")
    assert finish(start(tmp_path, reference)) == 0

    killed = experiment(tmp_path, "killed")
    exp = tmp_path / "experiments" / "killed"
    # during the networks' write of iteration 4, then during the training state's write of 8
    for kill_at, resumable_after in (("net_d_4.pth", [2]), ("8.state", [6, 4])):
        assert finish(start(tmp_path, killed, kill_at)) == -signal.SIGKILL
        assert checkpoint_iterations(exp / "training_states") == resumable_after
    rng = random.Random(0)
    for _ in range(2):  # at random moments after a logged iteration
        earlier = len((tmp_path / "killed.out").read_text())
        proc = start(tmp_path, killed)
        kill_when_past(tmp_path / "killed.out", earlier, proc, rng.randint(9, TOTAL_ITER - 2), rng)
        finish(proc)
    assert finish(start(tmp_path, killed)) == 0, (tmp_path / "killed.out").read_text()[-3000:]

    log = (tmp_path / "killed.out").read_text()
    assert log.count("Resuming training from") >= 3 and "checkpoint of iteration" not in log
    assert checkpoint_iterations(exp / "training_states") == [TOTAL_ITER, TOTAL_ITER - 2]
    for path in [*(exp / "models").iterdir(), *(exp / "training_states").iterdir()]:
        assert not path.name.startswith("."), f"temporary left behind: {path.name}"
        torch.load(path, weights_only=True)  # every checkpoint loads
    ours, theirs = final_weights(exp), final_weights(tmp_path / "experiments" / "reference")
    assert ours.keys() == theirs.keys()
    different = [k for k in ours if not torch.equal(ours[k], theirs[k])]
    assert not different, f"weights differ from the uninterrupted run: {different[:5]}"
