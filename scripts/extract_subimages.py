"""Cut large training images into overlapping crops (BasicSR's extract_subimages recipe).

    python scripts/extract_subimages.py --input datasets/mine/hr_full --output datasets/mine/train/high_res \
        --crop-size 480 --step 240 [--thresh-size 0] [--workers 4] [--compress-level 3] [--small keep|skip]

Crops are named {stem}_s001.png, {stem}_s002.png, ... (row by row). With --thresh-size 0 the
crops cover every pixel (the last crop of a row/column is flush with the edge). A side
shorter than --crop-size is kept whole (--small keep, default) or the image is skipped
(--small skip). Paired: add --input-lr LR_DIR --output-lr OUT_LR --scale 4 to cut LR/HR
pairs at the same positions (crop size and step are in HR pixels).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from realesrgan_ext.data.image_io import ImageReadError
from realesrgan_ext.tools.image_files import DataToolError
from realesrgan_ext.tools.subimages import SMALL_POLICIES, extract_subimages


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", required=True, help="image folder (HR in paired mode), read recursively")
    parser.add_argument("--output", required=True, help="folder for the crops")
    parser.add_argument("--crop-size", type=int, default=480)
    parser.add_argument("--step", type=int, default=240)
    parser.add_argument("--thresh-size", type=int, default=0,
                        help="drop the last edge-flush crop when the uncovered rest is <= this (0: cover all)")
    parser.add_argument("--small", choices=SMALL_POLICIES, default="keep",
                        help="images with a side < crop size: keep that side whole, or skip the image")
    parser.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1))
    parser.add_argument("--compress-level", type=int, default=3, choices=range(10), metavar="0-9")
    parser.add_argument("--input-lr", help="paired mode: LR folder matching --input by name")
    parser.add_argument("--output-lr", help="paired mode: folder for the LR crops")
    parser.add_argument("--scale", type=int, default=4, help="paired mode: HR/LR scale")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    start = time.perf_counter()
    try:
        result = extract_subimages(args.input, args.output, args.crop_size, args.step, args.thresh_size,
                                   workers=args.workers, compress_level=args.compress_level, small=args.small,
                                   input_lr=args.input_lr, output_lr=args.output_lr, scale=args.scale)
    except (DataToolError, ImageReadError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"{result.images} images -> {result.crops} crops in {args.output} ({time.perf_counter() - start:.1f} s)")
    if result.small_kept:
        print(f"{len(result.small_kept)} image(s) with a side < {args.crop_size} were kept whole on that side:")
        print("  " + "\n  ".join(result.small_kept))
    if result.small_skipped:
        print(f"{len(result.small_skipped)} image(s) with a side < {args.crop_size} were skipped:")
        print("  " + "\n  ".join(result.small_skipped))
    return 0


if __name__ == "__main__":
    sys.exit(main())
