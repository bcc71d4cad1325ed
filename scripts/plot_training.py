"""Draw losses.png, validation.png and samples.png for a BasicSR experiment folder.

    python scripts/plot_training.py experiments/NAME [--out DIR] [--smoothing 0.9]

Reads only what training wrote: tensorboard events in tb_logger/NAME (or the text log),
the option file copied into experiments/NAME and its visualization/ images.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from realesrgan_ext.tools.training_plots import plot_training


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiment", type=Path, help="experiments/NAME folder written by basicsr training")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: experiments/NAME/plots)")
    parser.add_argument("--smoothing", type=float, default=0.9, help="EMA weight in [0, 1), as tensorboard's slider")
    parser.add_argument("--crop", type=int, default=128, help="side of the HR center crop in samples.png (px)")
    parser.add_argument("--rows", type=int, default=4, help="validation images in samples.png")
    parser.add_argument("--checkpoints", type=int, default=4, help="SR iterations shown in samples.png")
    args = parser.parse_args(argv)
    if not 0 <= args.smoothing < 1:
        parser.error("--smoothing must be in [0, 1)")
    try:
        result = plot_training(args.experiment, args.out, args.smoothing, args.crop, args.rows, args.checkpoints)
    except FileNotFoundError as err:
        parser.error(str(err))
    for val_set, scores in result.baseline.items():
        print(f"bicubic on {val_set}: " + ", ".join(f"{m} {v:.4f}" for m, v in scores.items()))
    for path in result.paths.values():
        print(f"wrote {path}")
    for key, why in result.skipped.items():
        print(f"skipped {key}.png: {why}")
    if result.summary is not None:
        print(result.summary)
    return 0 if result.paths else 1


if __name__ == "__main__":
    sys.exit(main())
