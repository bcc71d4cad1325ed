#!/usr/bin/env python
"""Upscale an image or a folder tree with an ESRGAN / Real-ESRGAN (or spandrel-supported) model.

    python scripts/inference.py -i inputs/ -o results/ -m RealESRGAN_x4plus.pth --outscale 2

A thin front over ``realesrgan_ext.inference``: ``load_model`` -> ``engines.make_upscaler`` -> ``plan_jobs`` /
``run_jobs``. Exit status: 0 all written, 1 some files failed (listed at the end), 2 nothing was
done (bad arguments, unreadable model, an output that would overwrite an input, no usable image;
every input is checked against the limits of ``realesrgan_ext.limits`` first), 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from realesrgan_ext.startup import frozen_startup  # noqa: E402

with frozen_startup():  # torch and the engines: about 0.5 s less start-up and exit (see realesrgan_ext.startup)
    from realesrgan_ext.data.image_header import allow_in_pillow
    from realesrgan_ext.inference import (
        ALPHA_MODES,
        AUTO_TILE,
        DEFAULT_SUFFIX,
        DEFAULT_TILE_PAD,
        IMAGE_SUFFIXES,
        OUTPUT_EXTS,
        PRECISIONS,
        BatchResult,
        LoadedModel,
        ModelLoadError,
        OutputConflictError,
        load_model,
        plan_jobs,
        run_jobs,
    )
    from realesrgan_ext.inference.bundled_models import (
        BUNDLED_MODELS,
        OFFICIAL_WEIGHTS_NOTE,
        canonical_name,
        is_official_name,
        official_model_path,
    )
    from realesrgan_ext.inference.engines import BACKENDS, MIN_PSNR, STRIPED_TILE, make_upscaler
    from realesrgan_ext.inference.model_blending import load_blended_model, parse_blend_spec
    from realesrgan_ext.inference.ray_batch import RayUnavailableError, UpscaleSettings, run_jobs_ray
    from realesrgan_ext.inference.upscaler import check_outscale
    from realesrgan_ext.limits import Limits, add_limit_arguments, limits_from_args
    from realesrgan_ext.paths import CacheDirError


def resolve_model(model: str) -> str:
    """A checkpoint path, or the cached conversion of a bundled official model named by ``model``.

    A missing file named like an official release file (``weights/RealESRGAN_x4plus.pth``) falls
    back to the bundled copy; a note on stderr says so, and what the bundled copy is, once per name.
    """
    path = Path(model)
    if path.exists() or not is_official_name(path.name):
        return model
    bundled = canonical_name(path.name)
    if model not in _NOTED:
        _NOTED.add(model)
        if path.suffix or path.parent != Path("."):
            print(f"note: {model} does not exist; using the bundled {bundled} instead: {OFFICIAL_WEIGHTS_NOTE}",
                  file=sys.stderr)
        else:
            print(f"note: {bundled} is {OFFICIAL_WEIGHTS_NOTE}", file=sys.stderr)
    return str(official_model_path(bundled))


_NOTED: set[str] = set()  # model names whose note was printed (the --ray path resolves them again)


def load_chosen_model(model: str, blend: str | None, limits: Limits | None = None) -> LoadedModel:
    """``-m`` loaded, or blended on the fly with ``--blend MODEL:ALPHA``."""
    if not blend:
        return load_model(existing_model(model), limits=limits)
    other, alpha = parse_blend_spec(blend)
    return load_blended_model(existing_model(model), existing_model(other), alpha, limits)


def existing_model(model: str) -> str:
    """``resolve_model``, or a ``ModelLoadError`` listing the bundled names when it is neither a file nor one."""
    resolved = resolve_model(model)
    if not Path(resolved).exists():
        raise ModelLoadError(f"{model}: no such model file, nor a bundled model name (bundled: "
                             f"{', '.join(BUNDLED_MODELS)})")
    return resolved


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("-i", "--input", required=True, help="an image file or a folder (searched recursively)")
    p.add_argument("-o", "--output", required=True, help="output folder (input subfolders are mirrored)")
    p.add_argument("-m", "--model", required=True,
                   help=".pth / .pt / .ckpt / .safetensors checkpoint, or an official model name "
                        f"({', '.join(BUNDLED_MODELS)}: the ncnn release's fp16-rounded copies of the official "
                        "weights), converted offline on first use; a missing RealESRGAN_x4plus.pth uses the "
                        "bundled copy, with a note")
    p.add_argument("--blend", metavar="MODEL:ALPHA",
                   help="blend -m with this checkpoint of the same architecture first, (1 - ALPHA) * M + ALPHA * "
                        "MODEL per weight (ESRGAN's network interpolation; e.g. a PSNR model -m with its GAN "
                        "model --blend gan.pth:0.3); see scripts/interpolate_models.py to save the blend")
    p.add_argument("--tile", type=int, default=0,
                   help=f"tile side in input px; 0 = automatic ({AUTO_TILE['cpu']} on CPU, "
                        f"{STRIPED_TILE['openvino']} when OpenVINO runs an RRDB, {AUTO_TILE['cuda']} on CUDA); "
                        "halved on out-of-memory")
    p.add_argument("--tile-pad", type=int, default=DEFAULT_TILE_PAD,
                   help="context px around each tile; seams are cross-faded inside it")
    p.add_argument("--outscale", type=float, default=None,
                   help="final scale (any float); default: the model's scale")
    p.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help=f"fp32: within {MIN_PSNR['fp32']:.0f} dB of the plain network (exact); bf16: fast, within "
                        f"{MIN_PSNR['bf16']:.0f} dB; fp16: CUDA only; auto = fp32 on CPU, fp16 (or bf16 where the "
                        "model prefers it) on CUDA")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--suffix", default=DEFAULT_SUFFIX, help="appended to output names as _SUFFIX ('' for none)")
    p.add_argument("--ext", choices=OUTPUT_EXTS, default="auto",
                   help="output format; auto keeps the input's; images with alpha are always PNG")
    p.add_argument("--alpha", choices=ALPHA_MODES, default="model", help="how to upscale an alpha channel")
    p.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="engine: auto = on CPU the fastest installed one that reproduces the network within "
                        "--precision on a probe image (openvino, then onnxruntime / pytorch bf16, then pytorch), "
                        "pytorch on CUDA; a named engine that cannot run the model falls back to pytorch with a note")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    ray = p.add_argument_group("Ray (bash scripts/install.sh --ray): many machines, files on shared storage")
    ray.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                     help="run on a Ray cluster: ADDRESS (auto, ray://head:10001, head:6379), or none to join "
                          "RAY_ADDRESS or start a local runtime")
    ray.add_argument("--ray-actors", type=int, default=0, help="model actors; 0 = as many as the cluster holds")
    ray.add_argument("--ray-cpus", type=float, default=1.0, help="CPUs per actor")
    ray.add_argument("--ray-gpus", type=float, default=0.0, help="GPUs per actor (use with --device cuda)")
    add_limit_arguments(p)
    return p


def run_on_ray(args: argparse.Namespace, jobs: list, limits: Limits) -> BatchResult:
    """The same jobs on a Ray cluster (``realesrgan_ext.inference.ray_batch``); each actor loads (or blends) -m."""
    blend = None
    if args.blend:
        other, alpha = parse_blend_spec(args.blend)
        blend = (str(Path(resolve_model(other)).resolve()), alpha)
    settings = UpscaleSettings(str(Path(resolve_model(args.model)).resolve()), args.backend, args.precision,
                               args.device, args.tile, args.tile_pad, args.alpha, args.outscale, args.ext, blend,
                               asdict(limits))
    return run_jobs_ray(settings, jobs, args.ray or None, args.ray_actors, args.ray_cpus, args.ray_gpus,
                        progress=not args.quiet)


def main(argv: list[str] | None = None) -> int:
    """Exit status 0 / 1 / 2 as the module docstring says; 130 on Ctrl-C (no traceback)."""
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def run(args: argparse.Namespace) -> int:
    try:
        limits = limits_from_args(args)
        check_outscale(args.outscale, limits)  # before any image: a bad --outscale wastes nothing
        allow_in_pillow(limits)
        jobs = plan_jobs(args.input, args.output, args.suffix, args.ext)
        model = load_chosen_model(args.model, args.blend, limits)  # with --ray too: refused here, not per actor
        if not jobs:
            print(f"error: no images ({' '.join(IMAGE_SUFFIXES)}) under {args.input}", file=sys.stderr)
            return 2
        if args.ray is not None:
            result = run_on_ray(args, jobs, limits)
            print(result.summary(), file=sys.stderr if result.failed else sys.stdout)
            return exit_status(result)
        upscaler = make_upscaler(model, args.backend, args.precision, args.device, tile=args.tile,
                                 tile_pad=args.tile_pad, alpha=args.alpha, limits=limits)
    except (FileNotFoundError, OutputConflictError, ModelLoadError, ValueError, RayUnavailableError,
            CacheDirError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not args.quiet:
        for note in upscaler.engine.notes:
            print(f"note: passed over {note}", file=sys.stderr)
        print(upscaler, file=sys.stderr)
    result = run_jobs(upscaler, jobs, outscale=args.outscale, ext=args.ext, progress=not args.quiet)
    print(result.summary(), file=sys.stderr if result.failed else sys.stdout)
    return exit_status(result)


def exit_status(result: BatchResult) -> int:
    """0 all written, 1 some failed, 2 none could be used."""
    return 0 if result.ok else 1 if result.written else 2


if __name__ == "__main__":
    sys.exit(main())
