"""Make LR images from HR images: bicubic (MATLAB-style antialiased, as BasicSR uses) or Real-ESRGAN's
degradation pipeline with a fixed seed.

    python scripts/make_lr.py --input HR_DIR --output LR_DIR --scale 4 [--mode crop|error] [--hr-output HR_PNG_DIR]
    python scripts/make_lr.py --input HR_DIR --output LR_DIR --degradation OPTION_FILE [--seed 0] [...]

With --degradation the LR is made by the second-order pipeline configured in that option file
(datasets.train.degradation, defaults when absent; its scale unless --scale is given), 8-bit,
with a seed derived from --seed and each image's relative path: the same command gives the
same LR on every run (validation sets for Real-ESRGAN training, reproducible bug reports).

LR files keep the HR's relative path with a .png extension; 16-bit stays 16-bit. Paired
training needs LR == HR / scale exactly, so an HR whose sides are not multiples of the scale
is either cropped at the bottom/right (--mode crop, the default; the cropped HR is what the
LR matches, so it is written to --hr-output, which is then required) or an error naming it
(--mode error). With --hr-output every HR is written there as PNG (cropped where needed),
which gives a consistent HR/LR pair of PNG folders even when the originals are JPEGs.
"""

from __future__ import annotations

import argparse
import sys
import time

from realesrgan_ext.data.image_io import ImageReadError
from realesrgan_ext.tools.bicubic_lr import MODES, bicubic_lr, make_lr_folder
from realesrgan_ext.tools.image_files import DataToolError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", required=True, help="HR image folder, read recursively")
    parser.add_argument("--output", required=True, help="folder for the LR images")
    parser.add_argument("--scale", type=int, help="default 4, or the --degradation option file's scale")
    parser.add_argument("--mode", choices=MODES, default="crop",
                        help="HR sides not multiples of the scale: crop bottom/right (needs --hr-output) or error")
    parser.add_argument("--hr-output", help="write every HR (cropped where needed) here as PNG")
    parser.add_argument("--compress-level", type=int, default=3, choices=range(10), metavar="0-9")
    parser.add_argument("--degradation", metavar="OPTION_FILE",
                        help="make the LR with the Real-ESRGAN pipeline of this option file instead of bicubic")
    parser.add_argument("--seed", type=int, default=0, help="base seed of --degradation (default 0)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    start = time.perf_counter()
    try:
        downscale, scale, how = bicubic_lr, args.scale or 4, "bicubic"
        if args.degradation:
            from realesrgan_ext.tools.pipeline_lr import PipelineDownscaler, degradation_of_file  # imports torch

            options, file_scale = degradation_of_file(args.degradation)
            downscale, scale = PipelineDownscaler(options, args.seed), args.scale or file_scale
            how = f"degradation pipeline of {args.degradation}, seed {args.seed}"
        result = make_lr_folder(args.input, args.output, scale, mode=args.mode, hr_output=args.hr_output,
                                compress_level=args.compress_level, downscale=downscale)
    except (DataToolError, ImageReadError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"{result.written} LR images (x{scale}, {how}) in {args.output} ({time.perf_counter() - start:.1f} s)")
    if args.hr_output:
        print(f"HR PNGs in {args.hr_output}; {len(result.cropped)} cropped to a multiple of {scale}")
        for rel, (w0, h0), (w1, h1) in result.cropped[:10]:
            print(f"  {rel}: {w0}x{h0} -> {w1}x{h1}")
        if len(result.cropped) > 10:
            print(f"  ... and {len(result.cropped) - 10} more")
    return 0


if __name__ == "__main__":
    sys.exit(main())
