"""The whole project on data that ships with the install, in one command.

``python scripts/demo.py`` (the bicubic demo), steps each skipped when its result is already
there, so a re-run resumes:
  1. build the sample set (photos from scikit-image, scikit-learn, matplotlib) into datasets/sample
  2. pack the training pairs into LMDBs (datasets/sample/train_{hr,lr}.lmdb)
  3. train options/demo_x4.yml with BasicSR's loop (``train.py --auto_resume``)
  4. draw the training plots (experiments/demo_x4/plots)
  5. upscale the validation images with the trained model (results/demo_x4)
and print where each result is and the final PSNR of the model vs bicubic.

``python scripts/demo.py realworld`` (Real-ESRGAN's degradations): steps 1-3 as above (the
bicubic-trained model is a baseline and the starting point), then
  4. a validation set of the held-out photos with LR made by the degradation pipeline, fixed seeds
     (datasets/sample/val_realworld)
  5. train options/realworld_demo_x4.yml: LR synthesised on the fly from the HR tiles alone
  6. plots (experiments/realworld_demo_x4/plots)
  7. upscale the pipeline-degraded validation LR with both models (results/realworld_demo_x4)
and print the PSNR of the real-world model, the bicubic-trained model and bicubic interpolation.
``python scripts/demo.py finetune`` (fine-tune the bundled x4plus for a damage it was not trained
for; scripts/finetune_demo.py): step 1 as above, then
  2. the splits: training tiles listed in datasets/sample/finetune/train.txt; two training photos held
     out whole and degraded by the option file's pipeline as the validation split keep_best judges;
     the held-out sample photos whole, with two draws of that damage each, as the evidence
  3. train options/finetune_demo_x4plus.yml (baseline at iteration 0, keep-best, collapse guard)
  4. plots (experiments/finetune_demo_x4plus/plots)
  5. scripts/evaluate.py's library on the held-out photos with the same damage: the fine-tuned model
     (models/net_g_best.pth), x4plus and bicubic (results/finetune_demo_x4plus/report.html)
and print the table; exit status 0 only when the fine-tuned model beats x4plus on PSNR-Y and ST-LPIPS.
Usage: python scripts/demo.py [realworld | finetune] [--option OPTION_FILE]
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


_steps_done = 0


def step(title: str) -> None:
    global _steps_done
    _steps_done += 1
    print(f"\n=== {_steps_done}. {title}", flush=True)


def build_sample_set() -> None:
    step("sample set")
    if (SAMPLE / "SOURCES.txt").is_file():
        print(f"{SAMPLE} already built")
        return
    result = prepare_sample_data(SAMPLE)
    print(result)


def build_lmdbs() -> None:
    step("LMDB")
    outputs = [SAMPLE / "train_hr.lmdb", SAMPLE / "train_lr.lmdb"]
    if all((o / "meta_info.txt").is_file() for o in outputs):
        print(f"{outputs[0]} and {outputs[1]} already built")
        return
    inputs = [SAMPLE / "train" / "high_res", SAMPLE / "train" / "low_res"]
    for result in make_lmdb_pair(inputs, outputs, overwrite=True):
        print(result)


def train(option: Path) -> Path:
    step(f"training {option.relative_to(REPO)} (BasicSR loop, CPU)")
    start = time.perf_counter()
    subprocess.run([sys.executable, str(REPO / "train.py"), "-opt", str(option), "--auto_resume"],
                   cwd=REPO, check=True)
    print(f"training finished in {time.perf_counter() - start:.0f} s")
    name = yaml.safe_load(option.read_text())["name"]
    return REPO / "experiments" / name


def plot(exp_dir: Path):
    step("plots")
    result = plot_training(exp_dir)
    for path in result.paths.values():
        print(f"wrote {path.relative_to(REPO)}")
    for figure, why in result.skipped.items():
        print(f"skipped {figure}: {why}")
    return result.summary


def upscale(exp_dir: Path, lr_dir: Path = SAMPLE / "val" / "low_res", out: Path | None = None) -> Path:
    """Upscale ``lr_dir`` with the experiment's latest model into ``out`` (default results/NAME)."""
    out = out or REPO / "results" / exp_dir.name
    model = exp_dir / "models" / "net_g_latest.pth"
    subprocess.run([sys.executable, str(REPO / "scripts" / "inference.py"), "-i", str(lr_dir),
                    "-o", str(out), "-m", str(model)], cwd=REPO, check=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("demo", nargs="?", choices=("bicubic", "realworld", "finetune"), default="bicubic")
    parser.add_argument("--option", type=Path, help="option file of the demo's (last) model")
    args = parser.parse_args(argv)
    if args.demo == "realworld":
        from realworld_demo import run_realworld_demo

        return run_realworld_demo((args.option or REPO / "options" / "realworld_demo_x4.yml").resolve())
    if args.demo == "finetune":
        from finetune_demo import run_finetune_demo

        return run_finetune_demo((args.option or REPO / "options" / "finetune_demo_x4plus.yml").resolve())
    build_sample_set()
    build_lmdbs()
    exp_dir = train((args.option or REPO / "options" / "demo_x4.yml").resolve())
    summary = plot(exp_dir)
    step("upscale the validation images")
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
