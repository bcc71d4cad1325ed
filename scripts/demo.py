"""The whole project on data that ships with the install, in one command.

Steps (each skipped when its result is already there, so a re-run resumes):
  1. build the sample set (photos from scikit-image, scikit-learn, matplotlib) into datasets/sample
  2. pack the training pairs into LMDBs (datasets/sample/train_{hr,lr}.lmdb)
  3. train options/demo_x4.yml with BasicSR's loop (``train.py --auto_resume``)
  4. draw the training plots (experiments/demo_x4/plots)
  5. upscale the validation images with the trained model (results/demo_x4)
and print where each result is and the final PSNR of the model vs bicubic.
Usage: python scripts/demo.py [--option options/demo_x4.yml]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import yaml

from realesrgan_ext.tools.lmdb_writer import make_lmdb_pair
from realesrgan_ext.tools.sample_data import prepare_sample_data
from realesrgan_ext.tools.training_plots import plot_training

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "datasets" / "sample"


def step(title: str) -> None:
    print(f"\n=== {title}", flush=True)


def build_sample_set() -> None:
    step("1/5 sample set")
    if (SAMPLE / "SOURCES.txt").is_file():
        print(f"{SAMPLE} already built")
        return
    result = prepare_sample_data(SAMPLE)
    print(result)


def build_lmdbs() -> None:
    step("2/5 LMDB")
    outputs = [SAMPLE / "train_hr.lmdb", SAMPLE / "train_lr.lmdb"]
    if all((o / "meta_info.txt").is_file() for o in outputs):
        print(f"{outputs[0]} and {outputs[1]} already built")
        return
    inputs = [SAMPLE / "train" / "high_res", SAMPLE / "train" / "low_res"]
    for result in make_lmdb_pair(inputs, outputs, overwrite=True):
        print(result)


def train(option: Path) -> Path:
    step(f"3/5 training {option.relative_to(REPO)} (BasicSR loop, CPU)")
    start = time.perf_counter()
    subprocess.run([sys.executable, str(REPO / "train.py"), "-opt", str(option), "--auto_resume"],
                   cwd=REPO, check=True)
    print(f"training finished in {time.perf_counter() - start:.0f} s")
    name = yaml.safe_load(option.read_text())["name"]
    return REPO / "experiments" / name


def plot(exp_dir: Path):
    step("4/5 plots")
    result = plot_training(exp_dir)
    for path in result.paths.values():
        print(f"wrote {path.relative_to(REPO)}")
    for figure, why in result.skipped.items():
        print(f"skipped {figure}: {why}")
    return result.summary


def upscale(exp_dir: Path) -> Path:
    step("5/5 upscale the validation images")
    out = REPO / "results" / exp_dir.name
    model = exp_dir / "models" / "net_g_latest.pth"
    subprocess.run([sys.executable, str(REPO / "scripts" / "inference.py"), "-i", str(SAMPLE / "val" / "low_res"),
                    "-o", str(out), "-m", str(model)], cwd=REPO, check=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--option", type=Path, default=REPO / "options" / "demo_x4.yml")
    args = parser.parse_args(argv)
    build_sample_set()
    build_lmdbs()
    exp_dir = train(args.option.resolve())
    summary = plot(exp_dir)
    out = upscale(exp_dir)
    step("results")
    print(f"experiment:   {exp_dir.relative_to(REPO)} (models/, training_states/, visualization/, train_*.log)")
    print(f"tensorboard:  tensorboard --logdir {(REPO / 'tb_logger').relative_to(REPO)}")
    print(f"plots:        {(exp_dir / 'plots').relative_to(REPO)}")
    print(f"upscaled:     {out.relative_to(REPO)}")
    if summary is None:
        print("no validation PSNR was logged")
        return 1
    print(f"PSNR:         {summary}")
    margin = summary.final_psnr - (summary.bicubic_psnr or float("nan"))
    print(f"margin:       {margin:+.2f} dB over bicubic")
    return 0 if margin > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
