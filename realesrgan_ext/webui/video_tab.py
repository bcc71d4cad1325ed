"""The web page's Video tab: upload a clip, pick a model and the video CLI's options, download the result.

``run_video_request`` is one click without Gradio (tests call it); ``with_video_tab`` puts the
image page and the Video tab side by side as two tabs of one page. The video runs through
``realesrgan_ext.video.upscale_video`` with the page's cached upscaler, as
``scripts/inference_video.py`` runs it (same tiles, engine, encoding), into a new run folder.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

from realesrgan_ext.inference.engines import BACKENDS
from realesrgan_ext.inference.model_loader import ModelLoadError
from realesrgan_ext.inference.upscaler import PRECISIONS
from realesrgan_ext.video import (
    DEFAULT_CODEC,
    DEFAULT_CRF,
    VideoEncodeError,
    VideoInputError,
    crf_encoders,
    encode_settings,
    probe_video,
    upscale_video,
)
from realesrgan_ext.video.pipeline import auto_tile
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
                      progress=None, runs: RunFolders | None = None) -> tuple[str, Path | None]:
    """Everything one click of the Video tab does: returns (status markdown, the output file or None).

    The upscalers are this request's alone while it runs (``UpscalerCache.use``), its folder is kept from
    ``runs``' removal of old runs until it ends, and the status names no server path."""
    progress = progress or (lambda fraction, text: None)
    runs = runs or RunFolders(settings.output, settings.keep_runs_hours * 3600, int(settings.keep_runs_mb * 2**20))
    with ExitStack() as stack:
        text, output = _video_request(stack, settings, cache, runs, video, model, checkpoint, outscale, tile,
                                      precision, backend, codec, crf, lossless, blend_model, blend_alpha, progress)
    return hide_paths(text), output


def _video_request(stack: ExitStack, settings: WebSettings, cache: UpscalerCache, runs: RunFolders,
                   video: str | None, model: str | None, checkpoint: str | None, outscale: float | None,
                   tile: int | None, precision: str, backend: str, codec: str, crf: int | None, lossless: bool,
                   blend_model: str | None, blend_alpha: float, progress) -> tuple[str, Path | None]:
    if not video:
        return "Upload a video first.", None
    if outscale is not None and outscale < 0:
        return f"**Error:** outscale must be > 0 (or 0 for the model's own scale), got {outscale}.", None
    try:
        progress(0.0, "reading the video and loading the model")
        encoding = encode_settings(None if lossless else codec, None if lossless or crf is None else int(crf), lossless)
        info = probe_video(video)
        path = Path(checkpoint) if checkpoint else resolve_choice(model or "", settings.experiments)
        blend = (resolve_choice(blend_model, settings.experiments), float(blend_alpha)) \
            if blend_model and blend_alpha else None
        upscaler = stack.enter_context(cache.use(path, int(tile or 0), precision, backend, blend))
        whole_frame = auto_tile(upscaler.model, info.width, info.height) if not tile else 0
        if whole_frame:
            upscaler = stack.enter_context(cache.use(path, whole_frame, precision, backend, blend))
    except (VideoInputError, VideoEncodeError, ModelLoadError, ValueError, FileNotFoundError, OSError) as err:
        return f"**Error:** {err}", None
    suffix = ".mkv" if lossless else ".mp4"
    output = stack.enter_context(runs.new()) / f"{Path(video).stem}_out{suffix}"

    def on_frames(done: int, total: int) -> None:
        progress(done / total if total else 0.0, f"{done} of {total or '?'} frames")

    try:
        result = upscale_video(info, output, upscaler, encoding, outscale or None, progress=False,
                               on_frames=on_frames)
    except (VideoInputError, VideoEncodeError, ValueError) as err:
        return f"**Error:** {err}", None
    notes = "".join(f"\n\nNote: {note}" for note in result.notes)
    engine = f"; engine: {upscaler.engine.describe()}" if upscaler.engine is not None else ""
    return f"{result.summary()}{notes}\n\nModel: {upscaler.model.describe()}{engine}", output


def with_video_tab(images: gr.Blocks, settings: WebSettings, cache: UpscalerCache,
                   choices: list[tuple[str, str]], default: str | None, runs: RunFolders | None = None,
                   **blocks_options: Any) -> gr.Blocks:
    """One page with two tabs: ``images`` (the image page) and Video (its requests count in the page's
    ``concurrency`` with the images'; ``runs``: the page's run folders)."""
    import gradio as gr

    with gr.Blocks(title="realesrgan_ext: upscale images and video", analytics_enabled=False,
                   **blocks_options) as page:
        with gr.Tab("Images", elem_id="images-tab"):
            images.render()
        with gr.Tab("Video", elem_id="video-tab"):
            _video_tab(settings, cache, choices, default, runs)
    return page


def _video_tab(settings: WebSettings, cache: UpscalerCache, choices: list[tuple[str, str]],
               default: str | None, runs: RunFolders | None) -> None:
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
            run = gr.Button("Upscale video", variant="primary", elem_id="video-upscale")
        with gr.Column():
            status = gr.Markdown(elem_id="video-status")
            result = gr.Video(label="Result", interactive=False, elem_id="video-result")
            download = gr.File(label="Download", interactive=False, elem_id="video-download")

    def on_run(video, model, checkpoint, outscale, tile, precision, backend, codec, crf, lossless, blend,
               blend_alpha, progress=gr.Progress()):
        text, output = run_video_request(settings, cache, video, model, checkpoint, outscale, tile, precision,
                                         backend, codec, crf, lossless, blend, blend_alpha,
                                         lambda fraction, desc: progress(fraction, desc=desc), runs)
        shown = str(output) if output is not None and output.suffix == ".mp4" else None  # browsers play MP4
        return text, shown, str(output) if output is not None else None

    run.click(on_run, [video, model, checkpoint, outscale, tile, precision, backend, codec, crf, lossless, blend,
                       blend_alpha], [status, result, download], concurrency_id=UPSCALE_QUEUE,
              concurrency_limit=settings.concurrency)
