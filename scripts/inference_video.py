#!/usr/bin/env python
"""Upscale a video with an ESRGAN / Real-ESRGAN (or spandrel-supported) model, keeping its sound and timing.

    python scripts/inference_video.py -i clip.mp4 -o clip_x2.mp4 -m realesr-animevideov3-x2

A thin front over ``realesrgan_ext.video`` (``probe_video`` -> ``upscale_video``) with the image
CLI's model loading and engines (``scripts/inference.py``), so each frame is upscaled exactly as
that CLI upscales an image. ``--ray [ADDRESS]`` makes the segments on a Ray cluster
(``realesrgan_ext.video.ray_segments``; files on shared storage). Exit status: 0 written, 1 some
segments failed on Ray (the others are kept for --resume), 2 nothing written (bad arguments, an
unreadable or corrupt input, an output that cannot be encoded, an unreachable cluster), 130
interrupted (finished segments are kept for --resume).
"""

from __future__ import annotations

import argparse
import signal
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the image CLI, for its options and model names

from realesrgan_ext.startup import frozen_startup  # noqa: E402

with frozen_startup():
    import inference as image_cli  # scripts/inference.py: model loading (names, --blend) and the shared option help

    from realesrgan_ext.inference import DEFAULT_TILE_PAD, PRECISIONS, ModelLoadError
    from realesrgan_ext.inference.engines import BACKENDS, make_upscaler
    from realesrgan_ext.inference.ray_batch import RayUnavailableError, UpscaleSettings
    from realesrgan_ext.video import (
        DEFAULT_BATCH,
        DEFAULT_CODEC,
        DEFAULT_CRF,
        DEFAULT_SEGMENT_FRAMES,
        VideoEncodeError,
        VideoInputError,
        default_codec,
        encode_settings,
        probe_video,
        upscale_video,
        work_folder_for,
    )
    from realesrgan_ext.video.deinterlace import MODES as DEINTERLACE_MODES
    from realesrgan_ext.video.pipeline import auto_tile
    from realesrgan_ext.video.ray_segments import SegmentsFailedError, ray_frames_runner


INTERRUPTED = 130  # the shell's status for a process ended by SIGINT


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    image = {a.dest: a for a in image_cli.build_parser()._actions}
    p.add_argument("-i", "--input", required=True, help="a video file (any container and codec FFmpeg reads)")
    p.add_argument("-o", "--output", required=True,
                   help="output video; its suffix picks the container (.mp4, .mkv, .mov...)")
    p.add_argument("-m", "--model", required=True, help=image["model"].help)
    p.add_argument("--blend", metavar="MODEL:ALPHA", help=image["blend"].help)
    p.add_argument("--outscale", type=float, default=None, help=image["outscale"].help)
    p.add_argument("--tile", type=int, default=0,
                   help="tile side in input px; 0 = automatic: the whole frame for a compact "
                        "(realesr-animevideov3) model up to 1920x1088, else as the image CLI")
    p.add_argument("--tile-pad", type=int, default=DEFAULT_TILE_PAD, help=image["tile_pad"].help)
    p.add_argument("--precision", choices=PRECISIONS, default="auto", help=image["precision"].help)
    p.add_argument("--backend", choices=BACKENDS, default="auto", help=image["backend"].help)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--codec", default=None, help=f"video encoder (default {DEFAULT_CODEC} in yuv420p where the "
                   "container holds H.264, else the container's own: VP9 for .webm)")
    p.add_argument("--crf", type=int, default=None,
                   help=f"constant rate factor for encoders that take one (default {DEFAULT_CRF}; lower is better)")
    p.add_argument("--lossless", action="store_true", help="FFV1 in RGB, every upscaled pixel kept exactly (.mkv)")
    p.add_argument("--deinterlace", choices=DEINTERLACE_MODES, default="auto",
                   help="rebuild interlaced frames from one field (FFmpeg's estdif) before the network: auto = "
                   "the frames the stream flags as interlaced, on = every frame, off = none")
    p.add_argument("--batch", type=int, default=None,
                   help=f"frames per network call; default {DEFAULT_BATCH} on a GPU, 1 on a CPU (batches run no "
                   "faster there, and may round 1 level differently from the image command in a few pixels)")
    p.add_argument("--segment-frames", type=int, default=DEFAULT_SEGMENT_FRAMES,
                   help="frames per resumable segment (what an interruption can lose)")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run of the same command from its last finished segment")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    ray = p.add_argument_group("Ray (bash scripts/install.sh --ray): segments on many machines, files on shared "
                               "storage")
    for dest in ("ray", "ray_actors", "ray_cpus", "ray_gpus"):  # the image CLI's options, as it defines them
        option = image[dest]
        ray.add_argument(*option.option_strings, **{k: getattr(option, k) for k in (
            "nargs", "const", "default", "type", "metavar", "help")})
    return p


def ray_runner(args: argparse.Namespace, tile: int):
    """``upscale_video``'s frames runner for ``--ray``: actors build the upscaler the driver built here."""
    blend = None
    if args.blend:
        other, alpha = image_cli.parse_blend_spec(args.blend)
        blend = (str(Path(image_cli.resolve_model(other)).resolve()), alpha)
    settings = UpscaleSettings(str(Path(image_cli.resolve_model(args.model)).resolve()), args.backend,
                               args.precision, args.device, tile, args.tile_pad, blend=blend)
    return ray_frames_runner(settings, args.ray or None, args.ray_actors, args.ray_cpus, args.ray_gpus)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        info = replace(probe_video(args.input), deinterlace=args.deinterlace)
        codec = args.codec or (None if args.lossless else default_codec(Path(args.output)))
        settings = encode_settings(codec, args.crf, args.lossless, info.bit_depth)
        model = image_cli.load_chosen_model(args.model, args.blend)
        tile = args.tile or auto_tile(model, info.width, info.height)
        upscaler = make_upscaler(model, args.backend, args.precision, args.device, tile=tile,
                                 tile_pad=args.tile_pad)
    except (VideoInputError, VideoEncodeError, ModelLoadError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not args.quiet:
        for note in upscaler.engine.notes:
            print(f"note: passed over {note}", file=sys.stderr)
        print(f"{info.describe()}\n{upscaler}\nencoding: {settings.describe()}", file=sys.stderr)
    run = {"model": str(Path(model.source).resolve()) if Path(model.source).is_file() else args.model,
           "blend": args.blend,
           "tile": upscaler.tile, "tile_pad": args.tile_pad, "precision": args.precision,
           "engine": upscaler.engine.describe() if upscaler.engine else None}
    signal.signal(signal.SIGTERM, _interrupt)  # a kill ends like Ctrl-C: no output, segments kept
    try:
        runner = ray_runner(args, tile) if args.ray is not None else None
        result = upscale_video(info, args.output, upscaler, settings, args.outscale, args.batch,
                               args.segment_frames, args.resume, run, progress=not args.quiet, frames_runner=runner)
    except KeyboardInterrupt:
        print(f"\ninterrupted: no output written; finished segments are kept in {work_folder_for(Path(args.output))}"
              f" (run the same command with --resume to continue)", file=sys.stderr)
        return INTERRUPTED
    except SegmentsFailedError as err:
        print(f"error: {err}\nno output written; finished segments are kept in "
              f"{work_folder_for(Path(args.output))} (run the same command with --resume to continue)",
              file=sys.stderr)
        return 1
    except (VideoInputError, VideoEncodeError, ValueError, RayUnavailableError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    print(result.summary())
    return 0


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # before the run started (loading the model, choosing the engine): nothing written
        print("\ninterrupted", file=sys.stderr)
        sys.exit(INTERRUPTED)
