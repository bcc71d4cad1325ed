"""The fine-tune demo's steps (``python scripts/demo.py finetune``; see demo.py's docstring).

The bundled x4plus fine-tuned on the sample tiles for a damage outside its published training
ranges (``options/finetune_demo_x4plus.yml``), with the guardrails on: the starting model's scores
as the baseline, the best checkpoint kept by the validation split's ST-LPIPS, the collapse guard.
Three sets of photos, disjoint: the training photos' tiles; the validation split keep-best judges
(whole photos held out of training by a seeded draw); and the evidence, the sample set's held-out
photos WHOLE, each with ``EVAL_COPIES`` draws of the same damage under seeds the training never
saw. ``evaluate`` scores the fine-tuned model, x4plus and bicubic on them, and the demo succeeds
only when the fine-tuned model beats x4plus on both PSNR-Y and ST-LPIPS. The splits are rebuilt
on every run, so a changed ``degradation:`` section is what they carry.
"""

from __future__ import annotations

import resource
import time
from pathlib import Path

import yaml
from demo import REPO, SAMPLE, build_sample_set, plot, step, train

from realesrgan_ext.data.degradation_options import DegradationOptions
from realesrgan_ext.tools.finetune_split import make_finetune_split
from realesrgan_ext.tools.pipeline_lr import degradation_of_file, make_pipeline_val_set
from realesrgan_ext.tools.sample_data import write_whole_photos

BASELINE = "realesrgan-x4plus"
TUNED = "fine-tuned"
EVAL_SEED = 1000  # the held-out photos' LR draws: not the validation split's seed
EVAL_COPIES = 2  # LR draws per held-out photo: steadies a verdict on few photos
SPLIT_SEED = 0  # draws grass and motorcycle (seed 1 drew brick and camera, both gray: see benchmarks/finetune_demo.txt)
VAL_PHOTOS = 2  # training photos held out, whole, for the validation split
WINS_ON = ("psnr_y", "stlpips")


def split_folder(option: Path) -> Path:
    """Where the option file's training list lives: the demo's splits go beside it."""
    opt = yaml.safe_load(option.read_text())
    return REPO / Path(opt["datasets"]["train"]["meta_info_file"]).parent


def build_split(option: Path, out: Path, damage: tuple[DegradationOptions, int]) -> None:
    """Training list and validation split (whole photos held out, degraded by the option file's pipeline)."""
    step(f"validation split: {VAL_PHOTOS} training photos held out whole, degraded by {option.relative_to(REPO)}")
    split = make_finetune_split(SAMPLE / "train" / "high_res", out, *damage, copies=1, seed=SPLIT_SEED,
                                val_photos=VAL_PHOTOS)
    print(f"{split.train_count} training tiles listed in {split.train_list.relative_to(REPO)}; "
          f"{split.val_count} validation pairs in {split.val_dir.relative_to(REPO)}")


def build_test_set(out: Path, damage: tuple[DegradationOptions, int]) -> Path:
    """The held-out sample photos, whole, with ``EVAL_COPIES`` draws of the option file's damage each."""
    options, scale = damage
    photos = write_whole_photos(out / "test_photos", scale)
    count = make_pipeline_val_set(out / "test_photos", out / "test", options, scale, EVAL_COPIES, EVAL_SEED)
    print(f"{count} held-out test pairs ({len(photos)} photos x {EVAL_COPIES} draws, seed {EVAL_SEED}) "
          f"in {(out / 'test').relative_to(REPO)}")
    return out / "test"


def evaluate_on_held_out_photos(test: Path, best: Path, out: Path):
    """Fine-tuned vs x4plus vs bicubic on the held-out sample photos with the option file's damage."""
    from realesrgan_ext.evaluation import evaluate, means_markdown

    step(f"evaluate on held-out photos ({test.relative_to(REPO)}) with the same damage")
    report = evaluate([f"{TUNED}={best}", BASELINE], out, hr=test / "high_res", lr=test / "low_res", progress=False)
    print(means_markdown(report))
    return report


def run_finetune_demo(option: Path) -> int:
    """All steps; 0 when the fine-tuned model beats x4plus on PSNR-Y and ST-LPIPS on the held-out photos."""
    start = time.perf_counter()
    build_sample_set()
    out, damage = split_folder(option), degradation_of_file(option)  # the option file, read once
    build_split(option, out, damage)
    test = build_test_set(out, damage)
    exp_dir = train(option)
    plot(exp_dir)
    best = exp_dir / "models" / "net_g_best.pth"
    record = yaml.safe_load((exp_dir / "models" / "net_g_best.json").read_text())
    report = evaluate_on_held_out_photos(test, best, REPO / "results" / exp_dir.name)
    step("results")
    print(f"experiment:   {exp_dir.relative_to(REPO)} (plots/, models/net_g_best.pth, train_*.log)")
    print(f"kept:         {best.relative_to(REPO)}: iteration {record['iteration']}, {record['metric']} "
          f"{record['value']:.4f} on the validation split (the starting x4plus: {record['baseline']:.4f})")
    print(f"report:       {report.files['html'].relative_to(REPO)}")
    if record["iteration"] == 0:
        print(f"note:         no validation beat the starting model on the validation photos, so keep-best kept "
              f"{BASELINE} itself: the fine-tune did not get through, and nothing worse was kept")
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
