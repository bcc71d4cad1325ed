"""The real-world demo's steps (``python scripts/demo.py realworld``; see demo.py's docstring).

Real-ESRGAN's degradations on CPU: a small generator trained on LR synthesised on the fly from
the sample HR tiles alone, scored on held-out photos degraded by the same pipeline with fixed
seeds, next to the bicubic-trained demo model and plain bicubic interpolation.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import yaml
from demo import REPO, SAMPLE, build_lmdbs, build_sample_set, plot, step, train, upscale

from realesrgan_ext.tools.pipeline_lr import degradation_of_file, make_pipeline_val_set
from realesrgan_ext.tools.training_plot_images import ValSet, image_metric, load_pair, psnr_opt, read_uint8

BICUBIC_DEMO_OPTION = REPO / "options" / "demo_x4.yml"
VAL_COPIES = 4  # LR draws per held-out photo
VAL_SEED = 0


def build_realworld_val_set(option: Path, out: Path) -> None:
    """Held-out HR photos + their pipeline LR (``VAL_COPIES`` seeded draws each), once."""
    step(f"validation set: held-out photos degraded by the pipeline of {option.relative_to(REPO)}, seed {VAL_SEED}")
    if (out / "low_res").is_dir():
        print(f"{out.relative_to(REPO)} already built")
        return
    options, scale = degradation_of_file(option)
    start = time.perf_counter()
    count = make_pipeline_val_set(SAMPLE / "val" / "high_res", out, options, scale, VAL_COPIES, VAL_SEED)
    print(f"{count} pairs in {out.relative_to(REPO)} ({time.perf_counter() - start:.1f} s)")


def folder_psnr(val_set: ValSet, sr_dir: Path) -> float:
    """Mean PSNR of the upscaled images in ``sr_dir`` (``<name>_out.png``) with the val set's settings."""
    scores = []
    for image in val_set.images:
        hr = load_pair(image, val_set.scale).hr
        scores.append(image_metric(read_uint8(sr_dir / f"{image.name}_out.png"), hr, psnr_opt(val_set)))
    return float(np.mean(scores))


def run_realworld_demo(option: Path) -> int:
    """All steps; 0 when the real-world model beats both baselines on the pipeline-degraded photos."""
    start = time.perf_counter()
    opt = yaml.safe_load(option.read_text())
    val_opt = opt["datasets"]["val"]
    val_dir = (REPO / val_opt["dataroot_gt"]).parent
    build_sample_set()
    build_lmdbs()
    bicubic_exp = train(BICUBIC_DEMO_OPTION)
    build_realworld_val_set(option, val_dir)
    exp_dir = train(option)
    summary = plot(exp_dir)
    step("upscale the pipeline-degraded validation images with both models")
    out = upscale(exp_dir, val_dir / "low_res")
    baseline_out = upscale(bicubic_exp, val_dir / "low_res", out / "bicubic_demo_model")
    from realesrgan_ext.tools.training_plot_images import validation_sets

    val_set = next(vs for vs in validation_sets(opt, REPO) if vs.name == val_opt["name"])
    scores = {"real-world model": folder_psnr(val_set, out),
              "bicubic-trained demo model": folder_psnr(val_set, baseline_out),
              "bicubic interpolation": summary.bicubic_psnr if summary else float("nan")}
    step("results")
    print(f"experiment:   {exp_dir.relative_to(REPO)} (models/, training_states/, visualization/, train_*.log)")
    print(f"plots:        {(exp_dir / 'plots').relative_to(REPO)}")
    print(f"upscaled:     {out.relative_to(REPO)} (real-world model), {baseline_out.relative_to(REPO)}")
    print(f"PSNR on {val_set.name} ({len(val_set.images)} pipeline-degraded LR of held-out photos; Y, border 4):")
    for name, value in scores.items():
        print(f"  {name:28s} {value:.2f} dB")
    model = scores["real-world model"]
    margins = {name: model - value for name, value in scores.items() if name != "real-world model"}
    print("margin:       " + ", ".join(f"{m:+.2f} dB over the {name}" for name, m in margins.items()))
    print(f"total time:   {time.perf_counter() - start:.0f} s")
    return 0 if all(m > 0 for m in margins.values()) else 1
