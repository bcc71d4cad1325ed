"""Write a BasicSR meta-info file (one GT path per line, relative to the GT folder).

    python scripts/generate_meta_info.py --input GT_DIR --output meta_info.txt [--check]
    python scripts/generate_meta_info.py --input GT_DIR --input-lr LR_DIR --output meta_info.txt [--check --scale 4]

The file is what `meta_info_file` (PairedLRHRDataset, basicsr's PairedImageDataset) and
`meta_info` (RealESRGANDataset) read. In paired mode every GT must have an LR with the same
relative path and name (through --filename-tmpl, default '{}'; any extension), checked
before writing; the summary says whether basicsr's own PairedImageDataset, which looks for
LRs flat in LR_DIR with the GT's extension, would find them too. --check opens every listed
image (and LR; with --scale also checks GT == LR * scale) and lists the failures.
"""

from __future__ import annotations

import argparse
import sys

from realesrgan_ext.tools.image_files import DataToolError
from realesrgan_ext.tools.meta_info import check_meta_info, folder_meta_info, paired_meta_info, write_meta_info


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", required=True, help="GT (HR) image folder, read recursively")
    parser.add_argument("--input-lr", help="LR folder (paired meta-info)")
    parser.add_argument("--output", required=True, help="meta-info file to write")
    parser.add_argument("--filename-tmpl", default="{}", help="basicsr's filename_tmpl for LR names (default '{}')")
    parser.add_argument("--check", action="store_true", help="open every listed image and report failures")
    parser.add_argument("--scale", type=int, help="with --check and --input-lr: require GT == LR * scale")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        basicsr_ok = True
        if args.input_lr:
            lines, basicsr_ok = paired_meta_info(args.input, args.input_lr, args.filename_tmpl)
        else:
            lines = folder_meta_info(args.input)
    except DataToolError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    write_meta_info(lines, args.output)
    print(f"{args.output}: {len(lines)} {'pairs' if args.input_lr else 'images'}")
    if not basicsr_ok:
        print("note: fine for PairedLRHRDataset; basicsr's PairedImageDataset would not find these LRs "
              "(it needs them flat in the LR folder with the GT's extension)")
    if args.check:
        problems = check_meta_info(args.output, args.input, args.input_lr, args.scale, args.filename_tmpl)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        print(f"check: {len(lines) - len(problems)} ok, {len(problems)} failed")
        if problems:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
