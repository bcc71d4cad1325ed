"""Write a grid of HR crops beside the LR that the Real-ESRGAN degradation pipeline makes from them.

    python scripts/show_degradations.py -opt options/realesrgan_x4.yml --output grid.png
        [--input HR_DIR_OR_LMDB] [--images 4] [--draws 3] [--crop 256] [--seed 0]

The pipeline's settings, scale and (without --input) the HR images come from the option file
(datasets.train.degradation / scale / dataroot_gt). Each LR is shown enlarged by nearest
neighbour; the seeds are printed on the tiles, so `make_lr.py --degradation` reproduces them.
"""

from __future__ import annotations

import argparse
import sys

from realesrgan_ext.data.image_io import ImageReadError
from realesrgan_ext.tools.image_files import DataToolError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-opt", "--option", required=True, help="option file (any; its degradation section)")
    parser.add_argument("--output", required=True, help="PNG to write")
    parser.add_argument("--input", help="HR folder or .lmdb (default: the option file's datasets.train.dataroot_gt)")
    parser.add_argument("--images", type=int, default=4, help="rows: HR crops (default 4)")
    parser.add_argument("--draws", type=int, default=3, help="LR draws per crop (default 3)")
    parser.add_argument("--crop", type=int, help="HR crop side in px (default: the option file's gt_size)")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from realesrgan_ext.tools.degradation_grid import degradation_grid

    try:
        path = degradation_grid(args.option, args.output, input_dir=args.input, images=args.images,
                                draws=args.draws, crop=args.crop, seed=args.seed)
    except (DataToolError, ImageReadError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
