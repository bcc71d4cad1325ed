"""Make bicubic LR images from HR images (MATLAB-style antialiased bicubic, as BasicSR uses).

    python scripts/make_lr.py --input HR_DIR --output LR_DIR --scale 4 [--mode crop|error] [--hr-output HR_PNG_DIR]

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
from realesrgan_ext.tools.bicubic_lr import MODES, make_lr_folder
from realesrgan_ext.tools.image_files import DataToolError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", required=True, help="HR image folder, read recursively")
    parser.add_argument("--output", required=True, help="folder for the LR images")
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--mode", choices=MODES, default="crop",
                        help="HR sides not multiples of the scale: crop bottom/right (needs --hr-output) or error")
    parser.add_argument("--hr-output", help="write every HR (cropped where needed) here as PNG")
    parser.add_argument("--compress-level", type=int, default=3, choices=range(10), metavar="0-9")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    start = time.perf_counter()
    try:
        result = make_lr_folder(args.input, args.output, args.scale, mode=args.mode, hr_output=args.hr_output,
                                compress_level=args.compress_level)
    except (DataToolError, ImageReadError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"{result.written} LR images (x{args.scale}) in {args.output} ({time.perf_counter() - start:.1f} s)")
    if args.hr_output:
        print(f"HR PNGs in {args.hr_output}; {len(result.cropped)} cropped to a multiple of {args.scale}")
        for rel, (w0, h0), (w1, h1) in result.cropped[:10]:
            print(f"  {rel}: {w0}x{h0} -> {w1}x{h1}")
        if len(result.cropped) > 10:
            print(f"  ... and {len(result.cropped) - 10} more")
    return 0


if __name__ == "__main__":
    sys.exit(main())
