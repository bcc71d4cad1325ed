#!/usr/bin/env python
"""Compare super-resolution models on your photos: PSNR-Y, SSIM-Y, ST-LPIPS and NIQE, with crops, in one report.

    python scripts/evaluate.py -m realesrgan-x4plus -m tuned=experiments/tune/models/net_g_best.pth \\
        --hr photos/val --degradation options/my_damage.yml -o results/eval

Full-reference: --hr DIR with exactly one LR source: --lr DIR (paired by name), --degradation
OPTION_FILE (its degradation pipeline, seeded per image) or --bicubic. No-reference: --real DIR
(low-resolution photos without HR, scored by NIQE). Bicubic is always a row. Writes report.html
(self-contained), report.md, scores.csv, means.csv, grid.png and crops/ to -o, and prints the
means. A thin front over ``realesrgan_ext.evaluation.evaluate``. Exit status: 0 every image
scored, 1 some files were not scored (listed), 2 nothing was done (bad arguments or input),
3 the --require-better row did not beat the other on every --require-metrics metric.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from realesrgan_ext.evaluation import (  # noqa: E402
    DEFAULT_MAX_PIXELS,
    METRICS,
    EvaluationError,
    EvaluationReport,
    evaluate,
    means_markdown,
)
from realesrgan_ext.evaluation.contestants import BICUBIC, resolve_labels  # noqa: E402
from realesrgan_ext.evaluation.metrics import NO_REFERENCE  # noqa: E402
from realesrgan_ext.inference import PRECISIONS, ModelLoadError  # noqa: E402
from realesrgan_ext.inference.bundled_models import BUNDLED_MODELS  # noqa: E402
from realesrgan_ext.inference.engines import BACKENDS  # noqa: E402
from realesrgan_ext.tools.image_files import DataToolError  # noqa: E402

NO_REFERENCE_KEYS = {m.key for m in NO_REFERENCE}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-m", "--model", action="append", default=[], metavar="[LABEL=]MODEL",
                   help=f"a model to compare (repeat): a checkpoint, or a bundled name ({', '.join(BUNDLED_MODELS)}); "
                        "LABEL= names its row")
    p.add_argument("--hr", metavar="DIR", help="folder of high-resolution photos (full-reference scores)")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--lr", metavar="DIR",
                        help="folder of their low-resolution versions, paired by name without extension")
    source.add_argument("--degradation", metavar="OPTION_FILE",
                        help="make the LR with this option file's degradation pipeline (a top-level 'degradation:' "
                             "section, or datasets.train.degradation), seeded per image")
    source.add_argument("--bicubic", action="store_true", help="make the LR by bicubic downscaling")
    p.add_argument("--real", metavar="DIR", help="folder of real low-resolution photos without HR (NIQE)")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="report folder")
    p.add_argument("--scale", type=int, metavar="N",
                   help="default: the option file's, the LR folder's, or the first model's")
    p.add_argument("--seed", type=int, default=0, help="base seed of --degradation (default 0)")
    p.add_argument("--max-megapixels", type=float, default=DEFAULT_MAX_PIXELS / 1e6, metavar="MP",
                   help=f"larger images (at output size) are reported, not scored (default "
                        f"{DEFAULT_MAX_PIXELS / 1e6:.1f}; ST-LPIPS needs about 1 GB per megapixel)")
    p.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="inference engine, as scripts/inference.py (default auto)")
    p.add_argument("--precision", choices=PRECISIONS, default="auto", help="as scripts/inference.py (default auto)")
    p.add_argument("--device", default="auto", help="auto (default) | cpu | cuda | cuda:N")
    p.add_argument("--tile", type=int, default=0, help="tile side in input px; 0 = automatic")
    p.add_argument("--require-better", nargs=2, metavar=("ROW", "OTHER"),
                   help="exit with status 3 unless ROW's means beat OTHER's on every --require-metrics "
                        "(e.g. a fine-tuned model against its starting point)")
    p.add_argument("--require-metrics", default="psnr_y,stlpips", metavar="LIST",
                   help=f"comma-separated, of: {', '.join(METRICS)}; each in its own direction "
                        f"(default psnr_y,stlpips)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.require_better:
            check_requirement(args)
        report = evaluate(args.model, args.output, hr=args.hr, lr=args.lr, degradation=args.degradation,
                          bicubic=args.bicubic, real=args.real, scale=args.scale, seed=args.seed,
                          backend=args.backend, precision=args.precision, device=args.device, tile=args.tile,
                          max_pixels=int(args.max_megapixels * 1e6), progress=not args.quiet)
    except (EvaluationError, ModelLoadError, DataToolError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(means_markdown(report))
    print(f"\nreport: {report.files['html']}")
    if report.problems:
        print(f"{len(report.problems)} file(s) not scored:", file=sys.stderr)
        for path, reason in report.problems:
            print(f"  {path}: {reason}", file=sys.stderr)
    if args.require_better and not required_better(report, *args.require_better, args.require_metrics):
        return 3
    return 1 if report.problems else 0


def metric_keys(text: str) -> list[str]:
    return [key.strip() for key in text.split(",") if key.strip()]


def check_requirement(args: argparse.Namespace) -> None:
    """Before anything runs: --require-better names rows that exist, and metrics the photos given can score."""
    labels = [BICUBIC, *(label for label, _ in resolve_labels(args.model))]
    missing = [row for row in args.require_better if row not in labels]
    if missing:
        raise EvaluationError(f"--require-better: {', '.join(missing)} is not a row; rows: {', '.join(labels)}")
    for key in metric_keys(args.require_metrics):
        if key not in METRICS:
            raise EvaluationError(f"--require-metrics: unknown {key!r}; known: {', '.join(METRICS)}")
        if (key in NO_REFERENCE_KEYS and not args.real) or (key not in NO_REFERENCE_KEYS and not args.hr):
            raise EvaluationError(f"--require-metrics: {key} needs {'--real' if key in NO_REFERENCE_KEYS else '--hr'} "
                                  f"photos")


def required_better(report: EvaluationReport, row: str, other: str, metrics: str) -> bool:
    """Print how ``row`` compares with ``other`` on each metric; True when better on all."""
    comparison = report.compare(row, other, metric_keys(metrics))
    for _, line in comparison:
        print(line)
    return all(better for better, _ in comparison)


if __name__ == "__main__":
    sys.exit(main())
