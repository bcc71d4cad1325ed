"""Pack image folders into LMDBs that BasicSR's LMDB backend reads (``io_backend: {type: lmdb}``).

One folder:   python scripts/create_lmdb.py --input datasets/mine/train/high_res --output datasets/mine/hr.lmdb
LR/HR pair:   python scripts/create_lmdb.py --input LR_DIR HR_DIR --output lr.lmdb hr.lmdb
              (inputs and outputs pair up in order; the folders must hold the same keys)

Keys are relative paths without extension ('sub/0001'); values are PNG bytes; each LMDB has a
BasicSR meta_info.txt. See realesrgan_ext/tools/lmdb_writer.py.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from realesrgan_ext.data.image_io import ImageReadError
from realesrgan_ext.tools.image_files import DataToolError
from realesrgan_ext.tools.lmdb_writer import make_lmdb_pair


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", nargs="+", required=True, help="image folder(s), read recursively")
    parser.add_argument("--output", nargs="+", required=True, help="one OUT.lmdb per input, same order")
    parser.add_argument("--compress-level", type=int, default=1, choices=range(10), metavar="0-9",
                        help="PNG compression of the stored images (default 1: fast, larger)")
    parser.add_argument("--skip-bad", action="store_true",
                        help="skip unreadable images (listed at the end) instead of stopping")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output LMDBs")
    parser.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1),
                        help="processes decoding/encoding images (default: min(4, CPUs))")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    start = time.perf_counter()
    try:
        results = make_lmdb_pair(args.input, args.output, compress_level=args.compress_level,
                                 skip_bad=args.skip_bad, overwrite=args.overwrite, workers=args.workers)
    except (DataToolError, ImageReadError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    seconds = time.perf_counter() - start
    for result in results:
        print(f"{result.path}: {len(result.keys)} images, {result.data_bytes / 1024**2:.1f} MiB")
    skipped = results[0].skipped
    if skipped:
        print(f"skipped {len(skipped)} unreadable image(s) (dropped from every output):")
        for path, reason in skipped:
            print(f"  {path}: {reason}")
    print(f"done in {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
