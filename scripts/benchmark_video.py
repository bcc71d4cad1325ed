"""Video benchmark, whole process: frames per second of scripts/inference_video.py against Real-ESRGAN's video path.

    python scripts/benchmark_video.py                       # 480p, 10 frames, x2 and x4 (about 15 min, 2 cores)
    python scripts/benchmark_video.py --frames 4 --scales 4
    python scripts/benchmark_video.py --device cuda         # on a GPU: RealESRGANer in fp16, as its script runs there

The clip is made here (``video.sample_clip``: a photo panned and zoomed, 854x480, 24 fps, with an
AAC tone). Each run is a fresh process that starts Python, loads the model and writes an H.264
file, as a user waits for it:

* ``ours`` is ``scripts/inference_video.py -m realesr-animevideov3 [--outscale 2]`` with its
  defaults (``--backend auto``, whole-frame tiles for this compact model, batches, decode and
  encode threads); ``ours-pytorch-fp32`` the same with ``--backend pytorch --precision fp32``;
* ``realesrganer`` is Real-ESRGAN 0.3.0's ``inference_realesrgan_video.py`` loop on the same frames
  and weights: ``RealESRGANer`` (SRVGGNetCompact, fp32 on CPU as ``--fp32``, fp16 on CUDA as its
  default; tile 0, tile_pad 10,
  pre_pad 0) enhancing frame by frame with ``outscale``, each frame decoded before and encoded
  after it (PyAV, the same libx264 CRF 18 yuv420p), nothing overlapped.

The x2 rows use the x4 network with ``outscale 2`` on both sides, as Real-ESRGAN's ``-s 2`` does.
Columns: ``s`` whole-process seconds (median of ``--repeat`` alternated runs), ``fps`` frames per
whole-process second, ``x RESRGANer`` its speed-up, ``loop fps`` the frames per second of the
upscaling loop alone (start-up and model set-up excluded, as each process reports it). ``PSNR``:
our ``--backend auto`` frames against our plain PyTorch fp32 frames (the first ``PSNR_FRAMES``
frames, computed in this process with the same engine choice, tiles and outscale; uint8 RGB,
before encoding). ``RealESRGANer`` needs ``pip install --no-deps realesrgan==0.3.0`` (or
``--realesrgan-utils`` pointing at its ``realesrgan/utils.py``). Time it on an idle machine.
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

MODEL = "realesr-animevideov3"
CONFIGS = ("realesrganer", "ours-pytorch-fp32", "ours")
SIZE = (854, 480)
FPS = 24
PSNR_FRAMES = 2
TARGET = (3.0, 50.0)  # issue 16: >= 3x RealESRGANer's fps at >= 50 dB against our fp32 output
REFERENCE_TILE_PAD, REFERENCE_PRE_PAD = 10, 0  # inference_realesrgan_video.py's defaults


def realesrganer_utils(path: str | None):
    """Real-ESRGAN's ``realesrgan/utils.py`` (``RealESRGANer``), loaded alone: its package ``__init__``
    registers architectures basicsr 1.4.2 already has."""
    if path is None:
        spec = importlib.util.find_spec("realesrgan")
        if spec is None:
            return None
        path = str(Path(spec.submodule_search_locations[0]) / "utils.py")
    spec = importlib.util.spec_from_file_location("realesrgan_utils", path)
    utils = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(utils)
    return utils


def realesrganer_child(job: dict) -> None:
    """What ``inference_realesrgan_video.py -n realesr-animevideov3 -s S --fp32`` does, frame by frame."""
    import av
    import torch

    import realesrgan_ext

    realesrgan_ext.register()  # makes basicsr importable on current torchvision
    from basicsr.archs.srvgg_arch import SRVGGNetCompact

    utils = realesrganer_utils(job["utils"])
    net = SRVGGNetCompact(num_in_ch=3, num_out_ch=3, num_feat=64, num_conv=16, upscale=4, act_type="prelu")
    device = torch.device(job["device"])
    upsampler = utils.RealESRGANer(scale=4, model_path=job["model"], model=net, tile=0, tile_pad=REFERENCE_TILE_PAD,
                                   pre_pad=REFERENCE_PRE_PAD, half=device.type == "cuda", device=device)
    start, count = time.perf_counter(), 0
    with av.open(job["input"]) as source, av.open(job["output"], "w") as out:
        stream = source.streams.video[0]
        video = None
        for frame in source.decode(stream):
            image = frame.to_ndarray(format="bgr24")
            output, _ = upsampler.enhance(image, outscale=job["outscale"])
            if video is None:
                video = out.add_stream("libx264", rate=stream.average_rate, options={"crf": "18"})
                video.width, video.height, video.pix_fmt = output.shape[1], output.shape[0], "yuv420p"
            out.mux(video.encode(av.VideoFrame.from_ndarray(output, format="bgr24")))
            count += 1
        out.mux(video.encode(None))
    print(f"{count / (time.perf_counter() - start):.3f} loop fps")


def run(config: str, job: dict, outscale: int) -> dict:
    """One whole-process run: wall seconds, loop fps and (ours) the engine ``auto`` picked."""
    output = Path(job["out_dir"]) / f"{config}_x{outscale}.mp4"
    if config == "realesrganer":
        child = {**job, "output": str(output), "outscale": outscale}
        cmd = [sys.executable, __file__, "--child", json.dumps(child)]
    else:
        cmd = [sys.executable, str(REPO / "scripts" / "inference_video.py"), "-i", job["input"], "-o", str(output),
               "-m", MODEL, "--outscale", str(outscale), "--device", job["device"]]
        if config == "ours-pytorch-fp32":
            cmd += ["--backend", "pytorch", "--precision", "fp32"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{config} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    text = proc.stdout + proc.stderr
    loop = re.search(r"([\d.]+) (?:loop )?fps", text)
    engine = re.search(r"engine=([^,]+(?:, [\d.]+ dB vs fp32 network)?)", text)
    reference = f"RealESRGANer {'fp16' if job['device'] == 'cuda' else 'fp32'}"
    return {"s": seconds, "loop_fps": float(loop.group(1)) if loop else float("nan"),
            "engine": engine.group(1) if engine else (reference if config == "realesrganer" else "?")}


def psnr_against_fp32(clip: Path, outscale: int, device: str = "cpu") -> tuple[float, str]:
    """PSNR of our ``--backend auto`` frames against plain PyTorch fp32 (same tiles), and the engine picked."""
    from realesrgan_ext.inference import Upscaler, load_model
    from realesrgan_ext.inference.bundled_models import official_model_path
    from realesrgan_ext.inference.engines import make_upscaler
    from realesrgan_ext.video import probe_video, read_frames
    from realesrgan_ext.video.pipeline import auto_tile

    info = probe_video(clip)
    model = load_model(official_model_path(MODEL))
    tile = auto_tile(model, info.width, info.height)
    fast = make_upscaler(model, "auto", "auto", device, tile=tile)
    exact = Upscaler(model, tile=tile, precision="fp32", device=device)
    frames = [f.rgb for f, _ in zip(read_frames(info), range(PSNR_FRAMES), strict=False)]
    errors = [np.mean((fast.upscale(f, outscale).astype(np.float64) - exact.upscale(f, outscale)) ** 2)
              for f in frames]
    mse = float(np.mean(errors)) / 255.0**2
    return (float("inf") if mse == 0 else 10 * np.log10(1 / mse)), fast.engine.describe()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=10, help="frames in the 854x480 clip")
    p.add_argument("--scales", type=int, nargs="+", default=[2, 4], help="outscale values")
    p.add_argument("--repeat", type=int, default=1, help="alternated runs per configuration (median)")
    p.add_argument("--configs", nargs="+", choices=CONFIGS, default=list(CONFIGS))
    p.add_argument("--realesrgan-utils", default=None,
                   help="path of Real-ESRGAN's realesrgan/utils.py (default: the installed realesrgan package's)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                   help="both sides on this device (cuda: RealESRGANer in fp16, ours with --precision auto)")
    p.add_argument("--child", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        realesrganer_child(json.loads(args.child))
        return 0
    configs = list(args.configs)
    if "realesrganer" in configs and args.realesrgan_utils is None and importlib.util.find_spec("realesrgan") is None:
        print("note: realesrganer skipped: pip install --no-deps realesrgan==0.3.0 (or --realesrgan-utils PATH)")
        configs.remove("realesrganer")
    from realesrgan_ext.inference.bundled_models import official_model_path
    from realesrgan_ext.video.sample_clip import make_sample_clip

    with tempfile.TemporaryDirectory(prefix="bench_video_") as folder:
        clip = make_sample_clip(Path(folder) / "clip_480p.mp4", frames=args.frames, width=SIZE[0], height=SIZE[1],
                                fps=FPS, photo="chelsea")
        job = {"input": str(clip), "out_dir": folder, "model": str(official_model_path(MODEL)),
               "utils": args.realesrgan_utils, "device": args.device}
        print(f"clip: {SIZE[0]}x{SIZE[1]}, {args.frames} frames at {FPS} fps with AAC audio; model {MODEL} "
              f"({job['model']}); {os.cpu_count()} CPUs, device {args.device}; "
              f"load before {os.getloadavg()[0]:.2f}", flush=True)
        for config in configs:  # untimed: fills the engine caches (ONNX export, OpenVINO compile, probes)
            if config != "realesrganer":
                run(config, {**job, "input": str(make_sample_clip(Path(folder) / "prime.mp4", frames=1, width=64,
                                                                    height=48, fps=FPS))}, 4)
        results: dict[tuple[str, int], list[dict]] = {}
        for scale in args.scales:
            for _ in range(args.repeat):
                for config in configs:
                    results.setdefault((config, scale), []).append(run(config, job, scale))
                    print(f"  x{scale} {config}: {results[(config, scale)][-1]['s']:.1f} s", flush=True)
        quality = {scale: psnr_against_fp32(clip, scale, args.device) for scale in args.scales}
    print(f"load after {os.getloadavg()[0]:.2f}\n")
    print(" scale config                 s     fps x RESRGANer loop fps  PSNR dB  engine")
    for scale in args.scales:
        base = statistics.median(r["s"] for r in results.get(("realesrganer", scale), [{"s": float("nan")}]))
        for config in configs:
            runs = results[(config, scale)]
            seconds = statistics.median(r["s"] for r in runs)
            loop = statistics.median(r["loop_fps"] for r in runs)
            db = f"{quality[scale][0]:7.2f}" if config == "ours" else "      -"
            print(f"   x{scale} {config:18s} {seconds:7.1f} {args.frames / seconds:7.3f} {base / seconds:10.2f}x "
                  f"{loop:8.3f} {db}  {runs[-1]['engine']}")
    if "realesrganer" in configs:
        print(f"issue 16 target: ours >= {TARGET[0]:.0f}x RealESRGANer's fps at >= {TARGET[1]:.0f} dB "
              "against our fp32:")
        for scale in args.scales:
            base = statistics.median(r["s"] for r in results[("realesrganer", scale)])
            speed = base / statistics.median(r["s"] for r in results[("ours", scale)])
            met = speed >= TARGET[0] and quality[scale][0] >= TARGET[1]
            print(f"  x{scale}: x{speed:.2f}, {quality[scale][0]:.1f} dB: {'met' if met else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
