"""Export a super-resolution model to ONNX, checked against PyTorch with onnxruntime.

    python scripts/export_onnx.py -m realesrgan-x4plus -o realesrgan-x4plus.onnx --dynamic
    python scripts/export_onnx.py -m experiments/x/models/net_g_latest.pth -o net.onnx --fp16

-m takes a checkpoint (.pth / .safetensors) or an official model name (realesrgan-x4plus,
realesrgan-x4plus-anime: converted from the bundled ncnn weights on first use). The ONNX model
reads ``input`` (N, C, H, W; RGB in [0, 1]) and writes ``output`` (N, C, H*scale, W*scale).
"""

from __future__ import annotations

import argparse
import sys

from realesrgan_ext.inference.model_loader import ModelLoadError
from realesrgan_ext.inference.onnx_export import DEFAULT_OPSET, EXPORT_SIZE, OnnxExportError, export_onnx


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-m", "--model", required=True, help="checkpoint path or official model name")
    parser.add_argument("-o", "--output", required=True, help="the .onnx file to write")
    parser.add_argument("--dynamic", action="store_true", help="symbolic batch, height and width")
    parser.add_argument("--fp16", action="store_true", help="half-precision input, output and weights (for GPUs)")
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (default {DEFAULT_OPSET})")
    parser.add_argument("--size", type=int, default=EXPORT_SIZE,
                        help=f"input height and width of a static export (default {EXPORT_SIZE})")
    parser.add_argument("--no-check", action="store_true", help="skip the onnxruntime comparison")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        report = export_onnx(args.model, args.output, dynamic=args.dynamic, fp16=args.fp16, opset=args.opset,
                             size=args.size, check=not args.no_check)
    except (ModelLoadError, OnnxExportError, FileNotFoundError, KeyError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(report.describe())
    return 0


if __name__ == "__main__":
    sys.exit(main())
