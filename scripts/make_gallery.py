"""Make the README's before/after gallery (docs/gallery/gallery.jpg) from the sample photos and the models.

    python scripts/make_gallery.py [--output docs/gallery/gallery.jpg] [--crop PHOTO:TOP:LEFT ...]
        [--size 192] [--model TITLE=MODEL ...] [--backend pytorch] [--precision fp32]

Each row: a crop of a sample photo reduced 4x by bicubic, enlarged 4x by bicubic and by each model,
beside the original. Default models: the bundled Real-ESRGAN x4plus, then the demo models where
`bash scripts/demo.sh` / `bash scripts/demo.sh realworld` left them (experiments/*/models/net_g_latest.pth),
else the bundled anime and animevideov3 models. MODEL is a bundled name (`python
scripts/import_ncnn_model.py --list`) or a checkpoint path. Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from realesrgan_ext.tools.image_files import DataToolError

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUTPUT = REPO / "docs" / "gallery" / "gallery.jpg"


def build_parser() -> argparse.ArgumentParser:
    from realesrgan_ext.tools.gallery import DEFAULT_CROPS, DEFAULT_SIZE

    crops = " ".join(f"{c.photo}:{c.top}:{c.left}" for c in DEFAULT_CROPS)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default=str(DEFAULT_OUTPUT), help=f"a .jpg or .png (default {DEFAULT_OUTPUT})")
    parser.add_argument("--crop", action="append", help=f"a row, PHOTO:TOP:LEFT; repeat for more (default {crops})")
    parser.add_argument("--size", type=int, default=DEFAULT_SIZE, help=f"crop side in px (default {DEFAULT_SIZE})")
    parser.add_argument("--model", action="append", help="a column, TITLE=MODEL; repeat for more")
    parser.add_argument("--root", default=str(REPO), help="where experiments/ is looked for (default: the repository)")
    parser.add_argument("--backend", default="pytorch", help="engine, as scripts/inference.py (default pytorch)")
    parser.add_argument("--precision", default="fp32", help="as scripts/inference.py (default fp32)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from realesrgan_ext.inference.model_loader import ModelLoadError
    from realesrgan_ext.tools.gallery import DEFAULT_CROPS, make_gallery, parse_crop

    try:
        crops = [parse_crop(c) for c in args.crop] if args.crop else DEFAULT_CROPS
        models = [tuple(m.split("=", 1)) for m in args.model or []]
        if any(len(m) != 2 for m in models):
            raise DataToolError(f"--model takes TITLE=MODEL, got {args.model}")
        path = make_gallery(args.output, crops, models or None, args.size, root=args.root,
                            backend=args.backend, precision=args.precision)
    except (DataToolError, ModelLoadError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {path} ({path.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
