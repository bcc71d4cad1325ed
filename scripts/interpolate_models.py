#!/usr/bin/env python
"""Blend two checkpoints of the same architecture (ESRGAN's network interpolation).

    python scripts/interpolate_models.py psnr.pth gan.pth --alpha 0.3 -o blend_0.3.pth

Every weight of the output is ``(1 - alpha) * A + alpha * B``: alpha 0 is A, alpha 1 is B. Between
a PSNR-oriented model and a GAN model of one training run, it trades fidelity for sharpness
without training. Checkpoints of different architectures or sizes are refused, naming the first
mismatched key. A or B may name a bundled model (``realesrgan-x4plus``...: blend the official model
with your fine-tune of it). The output is a BasicSR checkpoint (``params``, with A's ``arch`` record),
read by ``scripts/inference.py``, BasicSR and spandrel as A is. Exit status: 0 written, 2 refused.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from realesrgan_ext.inference.bundled_models import is_official_name, official_model_path  # noqa: E402
from realesrgan_ext.inference.model_blending import blend_checkpoints  # noqa: E402
from realesrgan_ext.inference.model_loader import ModelLoadError  # noqa: E402
from realesrgan_ext.utils.checkpoint import atomic_torch_save  # noqa: E402


def checkpoint_path(model: str) -> str:
    """``model`` itself, or the cached conversion of the bundled model it names (when no such file exists)."""
    return model if Path(model).exists() or not is_official_name(model) else str(official_model_path(model))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("model_a", help="checkpoint A (alpha 0), e.g. the PSNR-oriented model, or a bundled model name")
    p.add_argument("model_b", help="checkpoint B (alpha 1), e.g. the GAN model")
    p.add_argument("--alpha", type=float, required=True, help="weight of B, from 0 to 1")
    p.add_argument("-o", "--output", required=True, help="the blended checkpoint (.pth)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    output = Path(args.output)
    if output.resolve() in (Path(args.model_a).resolve(), Path(args.model_b).resolve()):
        print(f"error: {output} would overwrite an input checkpoint", file=sys.stderr)
        return 2
    try:
        checkpoint = blend_checkpoints(checkpoint_path(args.model_a), checkpoint_path(args.model_b), args.alpha)
    except (ModelLoadError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    output.parent.mkdir(parents=True, exist_ok=True)
    atomic_torch_save(checkpoint, output)
    print(f"wrote {output}: {1 - args.alpha:g} x {args.model_a} + {args.alpha:g} x {args.model_b}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
