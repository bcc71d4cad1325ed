"""The fine-tune demo's steps (``python scripts/demo.py finetune``; see demo.py's docstring).

The bundled x4plus fine-tuned on the sample tiles for a damage outside its published training
ranges (``options/finetune_demo_x4plus.yml``), with the guardrails on: the starting model's scores
as the baseline, the best checkpoint kept by the validation split's ST-LPIPS, the collapse guard.
Then the evidence, on held-out PHOTOS carrying the same damage (a seed the training never saw):
``evaluate`` scores the fine-tuned model, x4plus and bicubic, and the demo succeeds only when the
fine-tuned model beats x4plus on both PSNR-Y and ST-LPIPS.
"""

from __future__ import annotations

import resource
import time
from pathlib import Path

import yaml
from demo import REPO, SAMPLE, build_sample_set, plot, step, train

from realesrgan_ext.tools.finetune_split import make_finetune_split
from realesrgan_ext.tools.pipeline_lr import degradation_of_file

BASELINE = "realesrgan-x4plus"
TUNED = "fine-tuned"
EVAL_SEED = 1000  # the held-out photos' LR draws: not the validation split's seed
SPLIT_SEED = 1
WINS_ON = ("psnr_y", "stlpips")


def build_split(option: Path) -> None:
    """Training list and validation split (held-out tiles, degraded by the option file's pipeline), once."""
    opt = yaml.safe_load(option.read_text())
    out = REPO / Path(opt["datasets"]["train"]["meta_info_file"]).parent
    step(f"validation split: one held-out tile per training photo, degraded by {option.relative_to(REPO)}")
    if (out / "val" / "low_res").is_dir() and (out / "train.txt").is_file():
        print(f"{out.relative_to(REPO)} already built")
        return
    options, scale = degradation_of_file(option)
    split = make_finetune_split(SAMPLE / "train" / "high_res", out, options, scale, copies=1, seed=SPLIT_SEED)
    print(f"{split.train_count} training tiles listed in {split.train_list.relative_to(REPO)}; "
          f"{split.val_count} validation pairs in {split.val_dir.relative_to(REPO)}")


def evaluate_on_held_out_photos(option: Path, best: Path, out: Path):
    """Fine-tuned vs x4plus vs bicubic on the held-out sample photos with the option file's damage."""
    from realesrgan_ext.evaluation import evaluate, means_markdown

    step(f"evaluate on held-out photos ({(SAMPLE / 'val' / 'high_res').relative_to(REPO)}) with the same damage, "
         f"seed {EVAL_SEED}")
    report = evaluate([f"{TUNED}={best}", BASELINE], out, hr=SAMPLE / "val" / "high_res", degradation=option,
                      seed=EVAL_SEED, progress=False)
    print(means_markdown(report))
    return report


def run_finetune_demo(option: Path) -> int:
    """All steps; 0 when the fine-tuned model beats x4plus on PSNR-Y and ST-LPIPS on the held-out photos."""
    start = time.perf_counter()
    build_sample_set()
    build_split(option)
    exp_dir = train(option)
    plot(exp_dir)
    best = exp_dir / "models" / "net_g_best.pth"
    record = yaml.safe_load((exp_dir / "models" / "net_g_best.json").read_text())
    report = evaluate_on_held_out_photos(option, best, REPO / "results" / exp_dir.name)
    step("results")
    print(f"experiment:   {exp_dir.relative_to(REPO)} (plots/, models/net_g_best.pth, train_*.log)")
    print(f"kept:         {best.relative_to(REPO)}: iteration {record['iteration']}, {record['metric']} "
          f"{record['value']:.4f} on the validation split (the starting x4plus: {record['baseline']:.4f})")
    print(f"report:       {report.files['html'].relative_to(REPO)}")
    wins = report.beats(TUNED, BASELINE, WINS_ON)
    means = report.means()
    margins = ", ".join(f"{key} {means[TUNED][key] - means[BASELINE][key]:+.4f}" for key in WINS_ON)
    print(f"verdict:      the fine-tuned model {'beats' if wins else 'does NOT beat'} {BASELINE} on "
          f"{' and '.join(WINS_ON)} ({margins})")
    cpu = sum(resource.getrusage(who).ru_utime + resource.getrusage(who).ru_stime
              for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    print(f"total time:   {time.perf_counter() - start:.0f} s wall, {cpu:.0f} s CPU (on a shared machine the "
          "CPU time / cores is what it would take alone)")
    return 0 if wins else 1
