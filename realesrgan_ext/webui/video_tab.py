"""The web page's Video tab: upload a clip, pick a model and the video CLI's options, download the result.

``run_video_request`` is one click without Gradio (tests call it); ``with_video_tab`` puts the
image page and the Video tab side by side as two tabs of one page. The video runs through
``realesrgan_ext.video.upscale_video`` with the page's cached upscaler, as
``scripts/inference_video.py`` runs it (same tiles, engine, encoding), into a new run folder.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import av

from realesrgan_ext.inference.engines import BACKENDS
from realesrgan_ext.inference.model_loader import ModelLoadError
from realesrgan_ext.inference.upscaler import PRECISIONS, Upscaler
from realesrgan_ext.limits import Limits, over_limit
from realesrgan_ext.video import (
    DEFAULT_CODEC,
    DEFAULT_CRF,
    VideoEncodeError,
    VideoInfo,
    VideoInputError,
    crf_encoders,
    encode_settings,
    probe_video,
    upscale_video,
)
from realesrgan_ext.video.deinterlace import MODES as DEINTERLACE_MODES
from realesrgan_ext.video.deinterlace import check_mode
from realesrgan_ext.video.pipeline import auto_tile, default_batch
from realesrgan_ext.webui.memory_budget import MemoryBudget, OverBudgetError, video_request_bytes
from realesrgan_ext.webui.model_choices import CHECKPOINT_SUFFIXES, UpscalerCache, resolve_choice
from realesrgan_ext.webui.redact import hide_paths
from realesrgan_ext.webui.runs import RunFolders
from realesrgan_ext.webui.settings import UPSCALE_QUEUE, WebSettings

if TYPE_CHECKING:
    import gradio as gr

VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".webm", ".avi", ".m4v")  # offered in the upload dialog


def run_video_request(settings: WebSettings, cache: UpscalerCache, video: str | None, model: str | None,
                      checkpoint: str | None, outscale: float | None, tile: int | None, precision: str,
                      backend: str = "auto", codec: str = DEFAULT_CODEC, crf: int | None = DEFAULT_CRF,
                      lossless: bool = False, blend_model: str | None = None, blend_alpha: float = 0.0,
                      progress=None, runs: RunFolders | None = None, budget: MemoryBudget | None = None,
                      deinterlace: str = "auto") -> tuple[str, Path | None]:
    """Everything one click of the Video tab does: returns (status markdown, the output file or None).

    The upscalers are this request's alone while it runs (``UpscalerCache.use``), its folder is kept from
    ``runs``' removal of old runs until it ends, it holds its estimated memory in ``budget`` (the page's,
    shared with the image requests) while it runs, and the status names no server path. ``deinterlace``:
    as the video command's ``--deinterlace``."""
    progress = progress or (lambda fraction, text: None)
    runs = runs or RunFolders(settings.output, settings.keep_runs_hours * 3600, int(settings.keep_runs_mb * 2**20))
    budget = budget or MemoryBudget(settings.memory_budget_bytes)
    with ExitStack() as stack:
        text, output = _video_request(stack, settings, cache, runs, budget, video, model, checkpoint, outscale,
                                      tile, precision, backend, codec, crf, lossless, blend_model, blend_alpha,
                                      progress, deinterlace)
    return hide_paths(text), output


def _video_request(stack: ExitStack, settings: WebSettings, cache: UpscalerCache, runs: RunFolders,
                   budget: MemoryBudget, video: str | None, model: str | None, checkpoint: str | None,
                   outscale: float | None, tile: int | None, precision: str, backend: str, codec: str,
                   crf: int | None, lossless: bool, blend_model: str | None, blend_alpha: float,
                   progress, deinterlace: str) -> tuple[str, Path | None]:
    if not video:
        return "Upload a video first.", None
    if outscale is not None and outscale < 0:
        return f"**Error:** outscale must be > 0 (or 0 for the model's own scale), got {outscale}.", None
    try:
        progress(0.0, "reading the video and loading the model")
        info = replace(probe_video(video, settings.limits), deinterlace=check_mode(deinterlace))
        encoding = encode_settings(None if lossless else codec, None if lossless or crf is None else int(crf), lossless,
                                   info.bit_depth)
        check_frame_count(info, settings.limits)
        path = Path(checkpoint) if checkpoint else resolve_choice(model or "", settings.experiments)
        blend = (resolve_choice(blend_model, settings.experiments), float(blend_alpha)) \
            if blend_model and blend_alpha else None
        upscaler = stack.enter_context(cache.use(path, int(tile or 0), precision, backend, blend))
        whole_frame = auto_tile(upscaler.model, info.width, info.height) if not tile else 0
        frame_tile, batch, need = fitting_plan(info, outscale or None, upscaler, whole_frame, budget.total)
        if frame_tile != upscaler.tile:
            upscaler = stack.enter_context(cache.use(path, frame_tile, precision, backend, blend))
        stack.enter_context(budget.reserve(
            need, on_wait=lambda: progress(0.0, "waiting for memory: other requests are running")))
    except (VideoInputError, VideoEncodeError, ModelLoadError, ValueError, FileNotFoundError, OSError,
            OverBudgetError) as err:
        return f"**Error:** {err}", None
    suffix = ".mkv" if lossless else ".mp4"
    output = stack.enter_context(runs.new()) / f"{Path(video).stem}_out{suffix}"

    def on_frames(done: int, total: int) -> None:
        if done > settings.limits.max_video_frames:  # the container understated its length
            raise over_limit(f"{info.path.name}: its frame count", done, "max_video_frames", settings.limits)
        progress(min(done / total, 1.0) if total else 0.0, f"{done} of {total or '?'} frames")

    try:
        result = upscale_video(info, output, upscaler, encoding, outscale or None, batch, progress=False,
                               on_frames=on_frames)
    except (VideoInputError, VideoEncodeError, ValueError) as err:
        return f"**Error:** {err}", None
    notes = "".join(f"\n\nNote: {note}" for note in result.notes)
    engine = f"; engine: {upscaler.engine.describe()}" if upscaler.engine is not None else ""
    return f"{result.summary()}{notes}\n\nModel: {upscaler.model.describe()}{engine}", output


def plays_in_browsers(path: Path) -> bool:
    """Whether browsers play ``path`` in the page's player: 8-bit 4:2:0 in MP4 (not FFV1, nor the 10-bit
    H.264 a 10-bit input gives, which is offered for download only)."""
    if path.suffix != ".mp4":
        return False
    with av.open(str(path)) as container:
        return container.streams.video[0].codec_context.pix_fmt == "yuv420p"


def check_frame_count(info: VideoInfo, limits: Limits) -> None:
    """Refuse a video the container says is over ``limits.max_video_frames`` (its frame count, or its
    duration at its frame rate); decoding checks again, since a container may understate it."""
    frames = info.expected_frames
    if frames > limits.max_video_frames:
        raise over_limit(f"{info.path.name}: its frame count", frames, "max_video_frames", limits)


def fitting_plan(info: VideoInfo, outscale: float | None, upscaler: Upscaler, whole_frame: int,
                 total: int) -> tuple[int, int, int]:
    """(tile, batch, estimated bytes) for the video: the first of whole frames (``whole_frame`` > 0) or
    ``upscaler``'s tiles, ``default_batch`` frames per call (4 on a GPU), then one, then tiles, whose
    estimate fits the page's whole memory budget ``total`` (the last, smallest, one when none does:
    the budget then refuses it, saying how much it needs)."""
    batch = default_batch(upscaler.device)
    tiles = (whole_frame, upscaler.tile) if whole_frame else (upscaler.tile,)
    plans = [(t, b) for t in tiles for b in dict.fromkeys((batch, 1))]
    for frame_tile, frames in plans:
        need = video_request_bytes(info.width, info.height, outscale, upscaler, frames, frame_tile,
                                   2 if info.deep else 1)
        if need <= total:
            break
    return frame_tile, frames, need


def with_video_tab(images: gr.Blocks, settings: WebSettings, cache: UpscalerCache,
                   choices: list[tuple[str, str]], default: str | None, runs: RunFolders | None = None,
                   budget: MemoryBudget | None = None, **blocks_options: Any) -> gr.Blocks:
    """One page with two tabs: ``images`` (the image page) and Video (its requests count in the page's
    ``concurrency`` with the images', and hold their memory in its ``budget``; ``runs``: its run folders)."""
    import gradio as gr

    with gr.Blocks(title="realesrgan_ext: upscale images and video", analytics_enabled=False,
                   **blocks_options) as page:
        with gr.Tab("Images", elem_id="images-tab"):
            images.render()
        with gr.Tab("Video", elem_id="video-tab"):
            _video_tab(settings, cache, choices, default, runs, budget or MemoryBudget(settings.memory_budget_bytes))
    return page


def _video_tab(settings: WebSettings, cache: UpscalerCache, choices: list[tuple[str, str]],
               default: str | None, runs: RunFolders | None, budget: MemoryBudget) -> None:
    import gradio as gr

    gr.Markdown("## Upscale a video\nFrame count, frame times, rotation, colour tags, sound and subtitles are "
                "kept. H.264 (CRF) by default; lossless is FFV1 in .mkv.")
    with gr.Row():
        with gr.Column():
            video = gr.File(label="Video", file_types=list(VIDEO_SUFFIXES), type="filepath", elem_id="video-input")
            model = gr.Dropdown(choices, value=default, label="Model", elem_id="video-model")
            with gr.Row():
                blend = gr.Dropdown(choices, value=None, label="Blend with (same architecture, optional)",
                                    elem_id="video-blend", scale=3)
                blend_alpha = gr.Slider(0, 1, value=0, step=0.05, label="Blend: 0 = the model, 1 = the blend",
                                        elem_id="video-blend-alpha", scale=2)
            checkpoint = gr.File(label="Or upload a checkpoint (used instead of the list)",
                                 file_types=list(CHECKPOINT_SUFFIXES), type="filepath", elem_id="video-checkpoint")
            outscale = gr.Number(label="Outscale (0: the model's own scale)", value=0, minimum=0,
                                 elem_id="video-outscale")
            tile = gr.Number(label="Tile side in input px (0: automatic)", value=0, precision=0, minimum=0,
                             elem_id="video-tile")
            precision = gr.Dropdown(list(PRECISIONS), value="auto", label="Precision", elem_id="video-precision")
            backend = gr.Dropdown(list(BACKENDS), value="auto", label="Engine", elem_id="video-engine")
            with gr.Row():
                codec = gr.Dropdown(crf_encoders(), value=DEFAULT_CODEC, label="Codec", elem_id="video-codec")
                crf = gr.Number(label="CRF (lower is better)", value=DEFAULT_CRF, precision=0, minimum=0,
                                elem_id="video-crf")
                lossless = gr.Checkbox(label="Lossless (FFV1, .mkv)", value=False, elem_id="video-lossless")
            deinterlace = gr.Dropdown(list(DEINTERLACE_MODES), value="auto", elem_id="video-deinterlace",
                                      label="Deinterlace (auto: the frames the video flags as interlaced)")
            run = gr.Button("Upscale video", variant="primary", elem_id="video-upscale")
        with gr.Column():
            status = gr.Markdown(elem_id="video-status")
            result = gr.Video(label="Result", interactive=False, elem_id="video-result")
            download = gr.File(label="Download", interactive=False, elem_id="video-download")

    def on_run(video, model, checkpoint, outscale, tile, precision, backend, codec, crf, lossless, blend,
               blend_alpha, deinterlace, progress=gr.Progress()):
        text, output = run_video_request(settings, cache, video, model, checkpoint, outscale, tile, precision,
                                         backend, codec, crf, lossless, blend, blend_alpha,
                                         lambda fraction, desc: progress(fraction, desc=desc), runs, budget,
                                         deinterlace)
        shown = str(output) if output is not None and plays_in_browsers(output) else None
        return text, shown, str(output) if output is not None else None

    run.click(on_run, [video, model, checkpoint, outscale, tile, precision, backend, codec, crf, lossless, blend,
                       blend_alpha, deinterlace], [status, result, download], concurrency_id=UPSCALE_QUEUE,
              concurrency_limit=settings.concurrency)
