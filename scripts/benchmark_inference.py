"""CPU fp32 inference benchmark: our Upscaler (PyTorch / ncnn / ONNX backends) against Real-ESRGAN.

    python scripts/benchmark_inference.py --quick                 # 128^2 and 256^2, one repeat
    python scripts/benchmark_inference.py                         # 128^2 .. 1024^2 (tens of minutes)
    python scripts/benchmark_inference.py --sizes 256 --configs upscaler ncnn onnxruntime openvino

Model: the official Real-ESRGAN x4plus weights (``official_model_path``). Input: a photo
(skimage's astronaut) resized to S x S, uint8. Each configuration runs in a fresh subprocess,
so its peak memory is its own: ``peak MB`` is the RSS high-water mark (``ru_maxrss``) above the
RSS right after the imports, covering model loading, backend set-up and the timed runs.

Configurations (same weights, same ``--tile`` / ``--tile-pad``, fp32, ``--threads``):
  realesrganer  Real-ESRGAN 0.3.0's ``RealESRGANer`` (pre_pad 0), the reference implementation;
                optional: pip install --no-deps realesrgan==0.3.0
  upscaler      our ``Upscaler`` as it is (its own PyTorch network, channels_last)
  torch         ``Upscaler`` + ``fast_backends`` torch runner (NNPACK Winograd convolutions,
                buffer-filled dense blocks, upsampling tail in row stripes): the recommended CPU path
  ncnn          ``Upscaler`` + ncnn runner (ncnn's Winograd convolutions, striped tail)
  onnxruntime, openvino   ``Upscaler`` + the ONNX export on those runtimes

Columns: seconds per image (best of ``--repeat``), output megapixels per second, GFLOP/s
(2 x the network's multiply-accumulates, counted from its conv shapes, per LR pixel, times the
LR pixels, over the time: tile overlap is not counted as useful work), that as a share of this
machine's measured 3x3-convolution peak (PyTorch, 64->64 channels on 1x64x512x512), and PSNR of
the uint8 output against an fp32 untiled PyTorch reference of the same input (direct
convolutions; uint8 rounding alone limits PSNR to about 59 dB). ``load``: the 1-minute load
average when the row finished; other processes on the machine slow every configuration down.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

CONFIGS = ("realesrganer", "upscaler", "torch", "ncnn", "onnxruntime", "openvino")
DEFAULT_CONFIGS = ("realesrganer", "upscaler", "torch")
DEFAULT_SIZES = (128, 256, 512, 1024)
QUICK_SIZES = (128, 256)
MODEL_NAME = "realesrgan-x4plus"
WARMUP_SIZE = 32  # a small untimed run first: thread pools, kernel selection, lazy initialisation
PEAK_CONV = (1, 64, 512, 512)  # the convolution timed for the machine's peak: 3x3, 64 -> 64 channels
RESULT_PREFIX = "RESULT "
REPEAT_MAX_SIZE = 256


# --------------------------------------------------------------------------- measurements


def rss_mb() -> float:
    """Current resident set size in MB (Linux /proc; falls back to the high-water mark)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return peak_rss_mb()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def conv_macs_per_pixel(module, size: int = 16) -> float:
    """Multiply-accumulates per input pixel, summed over every Conv2d from its actual output shape."""
    import torch

    total = [0]

    def hook(conv, _inputs, output):
        kh, kw = conv.kernel_size
        total[0] += output.numel() * (conv.in_channels // conv.groups) * kh * kw

    handles = [m.register_forward_hook(hook) for m in module.modules() if isinstance(m, torch.nn.Conv2d)]
    try:
        with torch.inference_mode():
            module(torch.zeros(1, 3, size, size))
    finally:
        for handle in handles:
            handle.remove()
    return total[0] / (size * size)


def conv_peak_gflops(threads: int, repeat: int = 3) -> float:
    """GFLOP/s of PyTorch's best case here: a large 3x3 64->64 convolution, channels_last."""
    import torch

    torch.set_num_threads(threads)
    conv = torch.nn.Conv2d(PEAK_CONV[1], PEAK_CONV[1], 3, padding=1).eval().to(memory_format=torch.channels_last)
    x = torch.rand(PEAK_CONV).contiguous(memory_format=torch.channels_last)
    flops = 2 * PEAK_CONV[1] ** 2 * 9 * PEAK_CONV[2] * PEAK_CONV[3]
    best = float("inf")
    with torch.inference_mode():
        conv(x)
        for _ in range(repeat):
            start = time.perf_counter()
            conv(x)
            best = min(best, time.perf_counter() - start)
    return flops / best / 1e9


def test_image(size: int) -> np.ndarray:
    """A real photo as size x size uint8 RGB."""
    import cv2
    from skimage import data

    photo = data.astronaut()
    interp = cv2.INTER_AREA if size < photo.shape[0] else cv2.INTER_CUBIC
    return cv2.resize(photo, (size, size), interpolation=interp)


def psnr(output_u8: np.ndarray, reference: np.ndarray) -> float:
    mse = float(np.mean((output_u8.astype(np.float64) / 255.0 - reference.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)


# --------------------------------------------------------------------------- one configuration (child)


def _setup(config: str, model_path: str, tile: int, tile_pad: int, threads: int):
    """Build the runner of ``config``; returns ``upscale(rgb_u8) -> rgb_u8`` (or float for the reference)."""
    import torch

    torch.set_num_threads(threads)
    if config == "realesrganer":  # (realesrgan_ext, imported first, gives basicsr its torchvision alias)
        from basicsr.archs.rrdbnet_arch import RRDBNet
        from realesrgan.utils import RealESRGANer

        net = RRDBNet(num_in_ch=3, num_out_ch=3, num_feat=64, num_block=23, num_grow_ch=32, scale=4)
        upsampler = RealESRGANer(scale=4, model_path=model_path, model=net, tile=tile, tile_pad=tile_pad,
                                 pre_pad=0, half=False, device=torch.device("cpu"))
        return lambda rgb: upsampler.enhance(np.ascontiguousarray(rgb[:, :, ::-1]))[0][:, :, ::-1]

    from realesrgan_ext.inference.fast_backends import attach_backend
    from realesrgan_ext.inference.model_loader import load_model
    from realesrgan_ext.inference.upscaler import Upscaler

    model = load_model(model_path)
    if config == "reference":  # untiled, fp32, pure PyTorch; float output
        upscaler = Upscaler(model, tile=1 << 20, precision="fp32", device="cpu")
        attach_backend(upscaler, "torch", threads, winograd=False)  # direct convolutions, striped tail
        return lambda rgb: upscaler.upscale(rgb.astype(np.float32) / 255.0)
    upscaler = Upscaler(model, tile=tile, tile_pad=tile_pad, precision="fp32", device="cpu")
    if config != "upscaler":
        attach_backend(upscaler, config, threads)
    return upscaler.upscale


def run_child(job: dict) -> dict:
    """Runs in a fresh process: imports, set-up, warm-up, timed runs; memory relative to the imports."""
    import torch  # noqa: F401  (counted in the import baseline, as are the runtimes below)

    if job["config"] == "realesrganer":
        import realesrgan_ext

        realesrgan_ext.register()  # first: it makes basicsr importable on current torchvision
        import basicsr.archs.rrdbnet_arch  # noqa: F401
        import realesrgan.utils  # noqa: F401
    else:
        import realesrgan_ext.inference.fast_backends  # noqa: F401
        import realesrgan_ext.inference.upscaler  # noqa: F401
        if job["config"] == "ncnn":
            import ncnn  # noqa: F401
    image = test_image(job["size"])
    warm_image = test_image(WARMUP_SIZE)
    baseline = rss_mb()
    start = time.perf_counter()
    upscale = _setup(job["config"], job["model"], job["tile"], job["tile_pad"], job["threads"])
    setup_s = time.perf_counter() - start
    setup_mb = rss_mb() - baseline
    upscale(warm_image)
    times = []
    for _ in range(job["repeat"]):
        start = time.perf_counter()
        output = upscale(image)
        times.append(time.perf_counter() - start)
    peak_mb = peak_rss_mb() - baseline
    np.save(job["output"], output)
    return {"seconds": min(times), "all_seconds": times, "setup_s": setup_s, "setup_mb": setup_mb,
            "peak_mb": peak_mb, "shape": list(output.shape)}


def spawn(job: dict) -> dict:
    """Run one job in a fresh interpreter; its result line comes back on stdout."""
    proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(job)], capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX):])
    tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
    raise RuntimeError(f"{job['config']} at {job['size']}^2 failed (exit {proc.returncode}):\n{tail}")


# --------------------------------------------------------------------------- the benchmark (parent)


def available(config: str) -> str | None:
    """None when ``config`` can run here, else how to make it run."""
    import importlib.util

    needs = {"realesrganer": ("realesrgan", "pip install --no-deps realesrgan==0.3.0"),
             "ncnn": ("ncnn", "pip install ncnn"), "onnxruntime": ("onnxruntime", "pip install onnxruntime"),
             "openvino": ("openvino", "pip install openvino")}
    if config in needs and importlib.util.find_spec(needs[config][0]) is None:
        return needs[config][1]
    return None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", help=f"LR input sides (default {DEFAULT_SIZES})")
    parser.add_argument("--repeat", type=int, default=1,
                        help=f"timed runs per configuration for LR sizes up to {REPEAT_MAX_SIZE} (the best is "
                             "reported; larger sizes run long enough to average out other load, and run once)")
    parser.add_argument("--quick", action="store_true", help=f"sizes {QUICK_SIZES} only")
    parser.add_argument("--configs", nargs="+", choices=CONFIGS, default=list(DEFAULT_CONFIGS))
    parser.add_argument("--tile", type=int, default=512, help="tile side in LR px, for every configuration")
    parser.add_argument("--tile-pad", type=int, default=32, help="tile context in LR px, for every configuration")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="CPU threads (default: all cores)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        print(RESULT_PREFIX + json.dumps(run_child(json.loads(args.child))), flush=True)
        return 0
    sizes = args.sizes or (QUICK_SIZES if args.quick else DEFAULT_SIZES)
    repeat = args.repeat

    import torch

    from realesrgan_ext.inference.bundled_models import official_model_path
    from realesrgan_ext.inference.model_loader import load_model

    model_path = str(official_model_path(MODEL_NAME))
    torch.set_num_threads(args.threads)
    macs = conv_macs_per_pixel(load_model(model_path).module)
    peak = conv_peak_gflops(args.threads)
    print(f"model: {MODEL_NAME} ({model_path})")
    print(f"work: {macs / 1e6:.2f} M multiply-accumulates per LR pixel = {macs / 1e6:.2f} TMAC per LR megapixel "
          f"(from the conv shapes)")
    print(f"machine: {os.cpu_count()} CPUs, {args.threads} threads, torch {torch.__version__}; 3x3 conv peak "
          f"(64->64 ch, 1x64x512x512, channels_last): {peak:.1f} GFLOP/s")
    print(f"settings: fp32, tile {args.tile}, tile_pad {args.tile_pad}, best of {repeat} up to {REPEAT_MAX_SIZE}^2, "
          f"uint8 RGB input "
          f"(astronaut photo resized), every configuration in a fresh process\n")

    configs = []
    for config in args.configs:
        missing = available(config)
        if missing:
            print(f"skipping {config}: not installed ({missing})")
        else:
            configs.append(config)
    header = (f"{'LR size':>8} {'config':<13} {'s/img':>8} {'out MP/s':>9} {'s/out MP':>9} {'GFLOP/s':>8} "
              f"{'% peak':>7} {'setup s':>8} {'setup MB':>9} {'peak MB':>8} {'PSNR dB':>8} {'load':>5}")
    print(header)
    results: dict[tuple[int, str], dict] = {}
    with tempfile.TemporaryDirectory(prefix="realesrgan_ext_bench_") as folder:
        for size in sizes:
            common = {"size": size, "model": model_path, "tile": args.tile, "tile_pad": args.tile_pad,
                      "threads": args.threads, "repeat": 1}
            reference = spawn({**common, "config": "reference", "output": f"{folder}/ref.npy"})
            ref = np.load(f"{folder}/ref.npy")
            for config in configs:
                out_path = f"{folder}/{config}.npy"
                runs = repeat if size <= REPEAT_MAX_SIZE else 1
                result = spawn({**common, "config": config, "repeat": runs, "output": out_path})
                result["psnr"] = psnr(np.load(out_path), ref)
                out_mp = (4 * size) ** 2 / 1e6
                result["out_mp_s"] = out_mp / result["seconds"]
                result["gflops"] = 2 * macs * size * size / result["seconds"] / 1e9
                results[(size, config)] = result
                print(f"{size:>6}^2 {config:<13} {result['seconds']:>8.2f} {result['out_mp_s']:>9.3f} "
                      f"{1 / result['out_mp_s']:>9.2f} {result['gflops']:>8.1f} {100 * result['gflops'] / peak:>6.0f}% "
                      f"{result['setup_s']:>8.1f} {result['setup_mb']:>9.0f} {result['peak_mb']:>8.0f} "
                      f"{result['psnr']:>8.2f} {os.getloadavg()[0]:>5.1f}", flush=True)
            print(f"{size:>6}^2 {'(reference)':<13} {reference['seconds']:>8.2f}  untiled fp32 PyTorch, "
                  f"peak {reference['peak_mb']:.0f} MB", flush=True)
    summarize(results, sizes, configs)
    return 0


def summarize(results: dict, sizes, configs) -> None:
    print("\nspeed-up over RealESRGANer (same output size, weights, tiles):")
    for config in configs:
        if config == "realesrganer" or "realesrganer" not in configs:
            continue
        ratios = [results[(s, "realesrganer")]["seconds"] / results[(s, config)]["seconds"] for s in sizes]
        mem = [results[(s, config)]["peak_mb"] / max(results[(s, "realesrganer")]["peak_mb"], 1) for s in sizes]
        print(f"  {config:<12} time x{'  x'.join(f'{r:.2f}' for r in ratios)}   "
              f"peak memory {'  '.join(f'{100 * m:.0f}%' for m in mem)} of RealESRGANer's  (sizes {list(sizes)})")
    print("time per output pixel across sizes (max deviation from the mean):")
    for config in configs:
        per_px = np.array([1 / results[(s, config)]["out_mp_s"] for s in sizes])
        spread = np.abs(per_px / per_px.mean() - 1).max()
        print(f"  {config:<12} {'  '.join(f'{v:.2f}' for v in per_px)} s/MP   +-{100 * spread:.0f}%")


if __name__ == "__main__":
    sys.exit(main())
