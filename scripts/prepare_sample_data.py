"""Build the small LR/HR sample set from photographs shipped in installed packages (no download).

    python scripts/prepare_sample_data.py [--output datasets/sample] [--scale 4]

Writes train/{high_res,low_res} (tiles of the train photos) and val/{high_res,low_res}
(center crops of held-out photos) plus SOURCES.txt; the same bytes on every run. See
realesrgan_ext/tools/sample_data.py.
"""

from __future__ import annotations

import argparse
import sys
import time

from realesrgan_ext.data.image_io import ImageReadError
from realesrgan_ext.tools.image_files import DataToolError
from realesrgan_ext.tools.sample_data import prepare_sample_data


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default="datasets/sample")
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--tile-size", type=int, default=256, help="HR train tile size (rounded down to the scale)")
    parser.add_argument("--val-size", type=int, default=192, help="HR val crop size (rounded down to the scale)")
    parser.add_argument("--overwrite", action="store_true", help="replace an --output folder made by something else")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    start = time.perf_counter()
    try:
        result = prepare_sample_data(args.output, args.scale, tile_size=args.tile_size, val_size=args.val_size,
                                     overwrite=args.overwrite)
    except (DataToolError, ImageReadError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"{result.output}: x{args.scale} LR/HR pairs in {time.perf_counter() - start:.1f} s")
    print(f"  train: {result.train_pairs} pairs (HR tiles) from {len(result.train_photos)} photos: "
          f"{', '.join(result.train_photos)}")
    print(f"  val:   {result.val_pairs} pairs (HR center crops) from held-out photos: {', '.join(result.val_photos)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
