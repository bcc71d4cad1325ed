"""Inference benchmark, whole process: every engine and precision against Real-ESRGAN's ``RealESRGANer``.

    python scripts/benchmark_inference.py --quick                  # 128^2 and 256^2, a few minutes
    python scripts/benchmark_inference.py                          # 128^2 .. 1024^2 (about 40 min, 2 cores)
    python scripts/benchmark_inference.py --sizes 256 --configs realesrganer auto-bf16 --repeat 1

What a user waits for: each run is a fresh process that starts Python, loads the model, sets up
its engine, upscales one photo (skimage's astronaut resized to S x S) and writes a PNG. Ours is
``scripts/inference.py --backend B --precision P``; the reference is ``RealESRGANer`` 0.3.0 as its
``inference_realesrgan.py`` runs it (fp32, ``--ref-tile`` / tile_pad 10 / pre_pad 0). Runs of all
configurations are alternated, ``--repeat`` times up to 256^2 (once above), and the median is
reported. Engine conversions (the ONNX export) are cached on disk by the first run of each
configuration, which is not timed.

Columns: ``s`` median seconds of the whole process; ``x RESRGANer`` its speed-up over
``RealESRGANer`` at that size; ``upscale s`` the upscale alone (as the process reports it, start-up
and model set-up excluded); ``s/MP out`` whole-process seconds per output megapixel; ``peak MB`` the
process's RSS high-water mark; ``PSNR`` of its uint8 output against ours in fp32 with plain PyTorch
(``pytorch-fp32``: today's exact path); ``engine`` what ``auto`` picked. The summary gives time per
output pixel of the upscale alone across sizes (start-up would dominate small images) and checks
issue 8's targets (bf16 >= 3x at >= 50 dB, fp32 >= 1.6x).

``RealESRGANer`` needs ``pip install --no-deps realesrgan==0.3.0`` (its dependencies would pull
tb-nightly and opencv-python); without it that column is skipped. Time it on an idle machine:
other processes computing on the same cores slow every configuration down several-fold.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a checkout without installing

OURS = ("pytorch-fp32", "pytorch-bf16", "openvino-fp32", "openvino-bf16", "onnxruntime-fp32", "ncnn-fp32",
        "auto-fp32", "auto-bf16")
CUDA_CONFIGS = ("realesrganer", "pytorch-fp32", "pytorch-fp16", "pytorch-bf16", "auto-auto")
CONFIGS = ("realesrganer", *OURS, "pytorch-fp16", "auto-auto")
REFERENCE = "pytorch-fp32"  # "our fp32 output": PSNR is measured against it, and it always runs
DEFAULT_SIZES = (128, 256, 512, 1024)
QUICK_SIZES = (128, 256)
MODEL_NAME = "realesrgan-x4plus"
REPEAT_MAX_SIZE = 256  # larger sizes run once: long enough to average out, and 1024^2 takes minutes a run
PRIME_SIZE = 32  # the untimed first run of each configuration (fills the engine caches)
TARGETS = {"auto-bf16": (3.0, 50.0), "auto-fp32": (1.6, 60.0)}  # issue 8: speed-up over RealESRGANer, min PSNR
REFERENCE_TILE_PAD, REFERENCE_PRE_PAD = 10, 0  # inference_realesrgan.py's defaults


def test_image(size: int) -> np.ndarray:
    """A real photo as size x size uint8 BGR (as cv2 reads it)."""
    import cv2
    from skimage import data

    photo = data.astronaut()[:, :, ::-1]
    interp = cv2.INTER_AREA if size < photo.shape[0] else cv2.INTER_CUBIC
    return np.ascontiguousarray(cv2.resize(photo, (size, size), interpolation=interp))


def psnr(output: np.ndarray, reference: np.ndarray) -> float:
    if output.shape != reference.shape:
        return float("nan")
    mse = float(np.mean((output.astype(np.float64) - reference.astype(np.float64)) ** 2)) / 255.0**2
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)


def realesrganer_child(job: dict) -> None:
    """What ``inference_realesrgan.py -n RealESRGAN_x4plus`` does for one image, in this process."""
    import cv2
    import torch

    import realesrgan_ext

    realesrgan_ext.register()  # makes basicsr importable on current torchvision
    from basicsr.archs.rrdbnet_arch import RRDBNet

    # realesrgan/__init__ registers UNetDiscriminatorSN, which basicsr 1.4.2 already has (an
    # AssertionError): load only its utils module, which holds RealESRGANer.
    folder = Path(importlib.util.find_spec("realesrgan").submodule_search_locations[0])
    spec = importlib.util.spec_from_file_location("realesrgan_utils", folder / "utils.py")
    utils = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(utils)
    net = RRDBNet(num_in_ch=3, num_out_ch=3, num_feat=64, num_block=23, num_grow_ch=32, scale=4)
    upsampler = utils.RealESRGANer(scale=4, model_path=job["model"], model=net, tile=job["tile"],
                                   tile_pad=REFERENCE_TILE_PAD, pre_pad=REFERENCE_PRE_PAD, half=False,
                                   device=torch.device(job["device"]))
    image = cv2.imread(job["input"], cv2.IMREAD_UNCHANGED)
    start = time.perf_counter()
    output, _ = upsampler.enhance(image, outscale=4)
    print(f"({time.perf_counter() - start:.2f} s/image)")  # the upscale alone, as our CLI's summary says it
    cv2.imwrite(job["output"], output)


def run(config: str, job: dict) -> dict:
    """One whole-process run; seconds, peak RSS (from ``wait4``), the output and what ``auto`` picked."""
    out_dir = Path(job["out_dir"]) / config
    if config == "realesrganer":
        out_dir.mkdir(parents=True, exist_ok=True)
        output = out_dir / f"{Path(job['input']).stem}_out.png"
        cmd = [sys.executable, __file__, "--child", json.dumps({**job, "output": str(output)})]
    else:
        backend, precision = config.rsplit("-", 1)
        output = out_dir / f"{Path(job['input']).stem}_out.png"
        cmd = [sys.executable, str(REPO / "scripts" / "inference.py"), "-i", job["input"], "-o", str(out_dir),
               "-m", job["model"], "--backend", backend, "--precision", precision, "--tile", str(job["our_tile"]),
               "--device", job["device"]]
    output.unlink(missing_ok=True)
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        said, log = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    if proc.returncode != 0 or not output.is_file():
        tail = "\n".join(log.strip().splitlines()[-12:])
        raise RuntimeError(f"{config} failed (exit {proc.returncode}): {' '.join(cmd)}\n{tail}")
    picked = re.search(r"engine=(\w+ \w+)", log)
    upscale = re.search(r"\(([\d.]+) s/image\)", said)
    return {"seconds": seconds, "peak_mb": usage.ru_maxrss / 1024, "output": str(output),
            "upscale_s": float(upscale.group(1)) if upscale else float("nan"),
            "engine": picked.group(1) if picked else ("RealESRGANer fp32" if config == "realesrganer" else "?")}


def available(config: str) -> str | None:
    """None when ``config`` can run here, else how to make it run."""
    package = {"realesrganer": "realesrgan", "openvino-fp32": "openvino", "openvino-bf16": "openvino",
               "onnxruntime-fp32": "onnxruntime", "ncnn-fp32": "ncnn"}.get(config)
    if package and importlib.util.find_spec(package) is None:
        return "pip install --no-deps realesrgan==0.3.0" if package == "realesrgan" else f"pip install {package}"
    return None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", help=f"LR input sides (default {DEFAULT_SIZES})")
    parser.add_argument("--quick", action="store_true", help=f"sizes {QUICK_SIZES}, one run each")
    parser.add_argument("--repeat", type=int, default=3,
                        help=f"alternated runs per configuration (median) for LR sizes up to {REPEAT_MAX_SIZE}^2; "
                             "larger sizes run once")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="cuda: RealESRGANer and ours on the GPU, configurations " + " ".join(CUDA_CONFIGS))
    parser.add_argument("--configs", nargs="+", choices=CONFIGS,
                        help=f"default: realesrganer {' '.join(OURS)} (with --device cuda: {' '.join(CUDA_CONFIGS)}); "
                             f"{REFERENCE} always runs: PSNR is measured against it")
    parser.add_argument("--tile", type=int, default=0, help="our --tile (0 = automatic, as users run it)")
    parser.add_argument("--ref-tile", type=int, default=0,
                        help="RealESRGANer's tile (0 = whole image, its default)")
    parser.add_argument("--model", help=f"x4plus checkpoint (default: the bundled {MODEL_NAME})")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        realesrganer_child(json.loads(args.child))
        return 0
    import cv2

    from realesrgan_ext.inference.bundled_models import official_model_path

    sizes = args.sizes or (QUICK_SIZES if args.quick else DEFAULT_SIZES)
    repeat = 1 if args.quick and args.repeat == parse_args([]).repeat else args.repeat
    model = args.model or str(official_model_path(MODEL_NAME))
    configs = []
    chosen = args.configs or (CUDA_CONFIGS if args.device == "cuda" else ("realesrganer", *OURS))
    for config in dict.fromkeys([REFERENCE, *chosen]):
        missing = available(config)
        if missing:
            print(f"skipping {config}: not installed ({missing})")
        else:
            configs.append(config)
    print(f"model: {model}; device {args.device}; {os.cpu_count()} CPUs; median of {repeat} alternated "
          f"whole-process runs; our tile "
          f"{args.tile or 'auto'}, RealESRGANer tile {args.ref_tile or 'whole image'}; load now "
          f"{os.getloadavg()[0]:.1f}\n")
    results: dict[tuple[int, str], dict] = {}
    with tempfile.TemporaryDirectory(prefix="realesrgan_ext_bench_") as folder:
        def job(size: int) -> dict:
            path = Path(folder) / f"photo{size}.png"
            if not path.is_file():
                cv2.imwrite(str(path), test_image(size))
            return {"input": str(path), "model": model, "tile": args.ref_tile, "our_tile": args.tile,
                    "out_dir": f"{folder}/out{size}", "device": args.device}

        for config in configs:  # untimed: fills the ONNX cache, as a user's first run does
            run(config, job(PRIME_SIZE))
        print(f"{'LR size':>8} {'config':<17} {'s':>7} {'x RESRGANer':>11} {'upscale s':>9} {'s/MP out':>9} "
              f"{'peak MB':>8} {'PSNR dB':>8}  engine")
        for size in sizes:
            runs: dict[str, list[dict]] = {c: [] for c in configs}
            for _ in range(repeat if size <= REPEAT_MAX_SIZE else 1):
                for config in configs:
                    runs[config].append(run(config, job(size)))
            reference = cv2.imread(runs[REFERENCE][0]["output"])
            for config in configs:
                last = runs[config][-1]
                seconds = statistics.median(r["seconds"] for r in runs[config])
                upscale_s = statistics.median(r["upscale_s"] for r in runs[config])
                results[(size, config)] = {
                    "seconds": seconds, "peak_mb": max(r["peak_mb"] for r in runs[config]), "upscale_s": upscale_s,
                    "upscale_s_per_mp": upscale_s / ((4 * size) ** 2 / 1e6),
                    "psnr": psnr(cv2.imread(last["output"]), reference), "engine": last["engine"],
                    "s_per_mp": seconds / ((4 * size) ** 2 / 1e6)}
            for config in configs:
                r = results[(size, config)]
                ratio = (results[(size, "realesrganer")]["seconds"] / r["seconds"]
                         if (size, "realesrganer") in results else float("nan"))
                print(f"{size:>6}^2 {config:<17} {r['seconds']:>7.2f} {ratio:>10.2f}x {r['upscale_s']:>9.2f} "
                      f"{r['s_per_mp']:>9.2f} {r['peak_mb']:>8.0f} {r['psnr']:>8.2f}  {r['engine']}", flush=True)
    summarize(results, sizes, configs)
    return 0


def summarize(results: dict, sizes, configs) -> None:
    print("\nupscale time (start-up excluded) per output megapixel across sizes (s/MP; max deviation from "
          "their mean), and peak memory:")
    for config in configs:
        per_mp = np.array([results[(s, config)]["upscale_s_per_mp"] for s in sizes])
        spread = 100 * np.abs(per_mp / per_mp.mean() - 1).max()
        peaks = "  ".join(f"{results[(s, config)]['peak_mb']:.0f}" for s in sizes)
        print(f"  {config:<17} {'  '.join(f'{v:.2f}' for v in per_mp)}   +-{spread:.0f}%   peak MB {peaks}")
    if "realesrganer" not in configs:
        return
    print("issue 8 targets (speed-up over RealESRGANer, PSNR against our fp32 output), per size:")
    for config, (speed, quality) in TARGETS.items():
        if config not in configs:
            continue
        for size in sizes:
            r = results[(size, config)]
            ratio = results[(size, "realesrganer")]["seconds"] / r["seconds"]
            met = ratio >= speed and r["psnr"] >= quality
            print(f"  {config:<10} {size:>5}^2: x{ratio:.2f} (target {speed}), {r['psnr']:.1f} dB "
                  f"(target {quality}) {'met' if met else 'MISSED'}")


if __name__ == "__main__":
    sys.exit(main())
