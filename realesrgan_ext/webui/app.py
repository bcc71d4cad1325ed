"""The Gradio page: upload images (or a zip), pick a model, compare before/after, download; a Video tab (``video_tab``).

``launch(settings)`` serves it on ``127.0.0.1`` unless another host is asked for. Gradio keeps
uploads and the files it serves in ``OUTPUT/.gradio`` (``GRADIO_TEMP_DIR``, set before Gradio
is imported), and each request writes its results to a new folder under ``OUTPUT``, so the
page writes nowhere else, but for the caches the CLI fills too (a bundled model's conversion, an
engine's ONNX export).

Many people may use it at once (docs/serving.md): ``settings.concurrency`` requests run together
(Gradio's queue holds ``settings.queue_size`` more and refuses the rest), each with its own
``Upscaler``, each first holding its estimated memory in a ``MemoryBudget`` shared by all; old run
folders are removed by age and total size; the page's text never shows a server path, and a request
that fails says why without stopping the others.
"""

from __future__ import annotations

import os
import sys
import traceback
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

from realesrgan_ext.data.image_header import allow_in_pillow
from realesrgan_ext.inference.engines import BACKENDS
from realesrgan_ext.inference.model_loader import ModelLoadError
from realesrgan_ext.inference.upscaler import PRECISIONS, check_outscale
from realesrgan_ext.webui.memory_budget import MemoryBudget, OverBudgetError, request_bytes
from realesrgan_ext.webui.model_choices import CHECKPOINT_SUFFIXES, UpscalerCache, list_models, resolve_choice
from realesrgan_ext.webui.redact import hide_paths
from realesrgan_ext.webui.runs import RunFolders, RunReport, upscale_uploads
from realesrgan_ext.webui.settings import DEFAULT_PORT, LOCALHOST, UPSCALE_QUEUE, WebSettings, is_loopback
from realesrgan_ext.webui.uploads import UPLOAD_SUFFIXES, Failures, collect_uploads
from realesrgan_ext.webui.video_tab import with_video_tab

if TYPE_CHECKING:
    import gradio as gr

DEFAULT_MODEL = "realesrgan-x4plus"
GRADIO_DIR = ".gradio"  # under the output folder: Gradio's uploads and served copies
UPLOAD_CLEANUP = (3600, 24 * 3600)  # hourly, Gradio deletes its copies older than a day (and all on restart)


def prepare_environment(settings: WebSettings) -> None:
    """Point Gradio's upload/cache folder into the output folder and turn its analytics off;
    must run before ``gradio`` is first imported (some of its modules read these at import)."""
    settings.output.mkdir(parents=True, exist_ok=True)
    os.environ["GRADIO_TEMP_DIR"] = str((settings.output / GRADIO_DIR).resolve())
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"


class Serving:
    """What requests running at once share: built upscalers, the memory budget, the run folders."""

    def __init__(self, settings: WebSettings) -> None:
        self.cache = UpscalerCache(settings.device, settings.limits, keep=settings.concurrency)
        self.budget = MemoryBudget(settings.memory_budget_bytes)
        self.runs = RunFolders(settings.output, settings.keep_runs_hours * 3600, int(settings.keep_runs_mb * 2**20))


def run_request(settings: WebSettings, cache: UpscalerCache, files: list[str] | None, model: str | None,
                checkpoint: str | None, outscale: float | None, tile: int | None, precision: str,
                backend: str = "auto", progress=None, blend_model: str | None = None,
                blend_alpha: float = 0.0, serving: Serving | None = None) -> tuple[str, RunReport | None]:
    """Everything one click does, without Gradio: returns (status markdown, report or None).

    ``blend_model`` (a dropdown value) and ``blend_alpha`` > 0 blend the model with it first
    (``model_blending``: (1 - alpha) * model + alpha * blend model). ``serving``: the budget and run
    folders shared with other requests (a fresh one by default). The status never names a server path;
    an unexpected error is reported in it (and its traceback on the server's stderr), never raised."""
    progress = progress or (lambda fraction, text: None)
    serving = serving or Serving(settings)
    try:
        status, report = _run_request(settings, cache, serving, files, model, checkpoint, outscale, tile,
                                      precision, backend, progress, blend_model, blend_alpha)
    except Exception as err:  # noqa: BLE001  (this request fails with its reason; the page serves the others)
        traceback.print_exc()
        status, report = f"**Error:** the request failed: {type(err).__name__}: {err}", None
    return hide_paths(status), report


def _run_request(settings: WebSettings, cache: UpscalerCache, serving: Serving, files: list[str] | None,
                 model: str | None, checkpoint: str | None, outscale: float | None, tile: int | None,
                 precision: str, backend: str, progress, blend_model: str | None,
                 blend_alpha: float) -> tuple[str, RunReport | None]:
    if not files:
        return "Upload one or more images (or a .zip of images) first.", None
    try:
        outscale = check_outscale(outscale or None, settings.limits)  # 0 or empty: the model's scale
    except ValueError as err:
        return f"**Error:** {err} (or 0 for the model's own scale).", None
    images, failed = collect_uploads([Path(f) for f in files], settings.max_upload_bytes, settings.limits)
    if not images:
        return _nothing_to_do(failed), None
    with ExitStack() as stack:
        try:
            progress(0.0, "loading the model")
            path = Path(checkpoint) if checkpoint else resolve_choice(model or "", settings.experiments)
            blend = (resolve_choice(blend_model, settings.experiments), float(blend_alpha)) \
                if blend_model and blend_alpha else None
            upscaler = stack.enter_context(cache.use(path, int(tile or 0), precision, backend, blend))
        except (ModelLoadError, ValueError, FileNotFoundError, OSError) as err:
            return f"**Error:** cannot use the model: {err}", None
        try:
            need = request_bytes([item.header for item in images], outscale, upscaler)
            stack.enter_context(serving.budget.reserve(
                need, on_wait=lambda: progress(0.0, "waiting for memory: other requests are running")))
        except OverBudgetError as err:
            return f"**Error:** {err}.", None
        report = upscale_uploads(upscaler, images, stack.enter_context(serving.runs.new()), outscale, progress,
                                 failed)
    engine = f"; engine: {upscaler.engine.describe()}" if upscaler.engine is not None else ""
    return f"{report.message()}\n\nModel: {upscaler.model.describe()}{engine}", report


def _nothing_to_do(failed: Failures) -> str:
    lines = [f"**None of the {len(failed)} file(s) can be upscaled:**"]
    return "\n".join(lines + [f"- `{name}`: {reason}" for name, reason in failed])


def build_app(settings: WebSettings) -> gr.Blocks:
    """The page (call ``prepare_environment`` first when Gradio is not imported yet)."""
    import gradio as gr

    serving = Serving(settings)
    cache = serving.cache

    def choices() -> list[tuple[str, str]]:
        return [(c.label, c.value) for c in list_models(settings.experiments)]

    def on_upscale(files, model, checkpoint, outscale, tile, precision, backend, blend, blend_alpha,
                   progress=gr.Progress()):
        def report_progress(fraction: float, text: str) -> None:
            progress(fraction, desc=text)

        status, report = run_request(settings, cache, files, model, checkpoint, outscale, tile, precision,
                                     backend, report_progress, blend, blend_alpha, serving)
        if report is None:
            return status, gr.update(choices=[], value=None), None, None, []
        names = [c.name for c in report.comparisons]
        first = (str(report.comparisons[0].before), str(report.comparisons[0].after)) if names else None
        return (status, gr.update(choices=names, value=names[0] if names else None), first,
                [str(p) for p in report.downloads], report.comparisons)

    def on_pick(name: str | None, comparisons: list[Any]):
        match = next((c for c in comparisons if c.name == name), None)
        return (str(match.before), str(match.after)) if match and match.after.is_file() else None

    initial = choices()
    default = DEFAULT_MODEL if any(value == DEFAULT_MODEL for _, value in initial) else None
    with gr.Blocks(title="realesrgan_ext: upscale images", analytics_enabled=False, delete_cache=UPLOAD_CLEANUP) as app:
        gr.Markdown("## Upscale images\nUpload images or a .zip of images, pick a model, press **Upscale**. "
                    "Results keep the input's format (alpha, 16-bit and gray included).")
        with gr.Row():
            with gr.Column():
                files = gr.File(label="Images or a .zip", file_count="multiple", file_types=list(UPLOAD_SUFFIXES),
                                type="filepath", elem_id="inputs")
                with gr.Row():
                    model = gr.Dropdown(initial, value=default, label="Model", elem_id="model", scale=4)
                    refresh = gr.Button("Refresh list", size="sm", scale=1)
                with gr.Row():
                    blend = gr.Dropdown(initial, value=None, label="Blend with (same architecture, optional)",
                                        elem_id="blend", scale=3)
                    blend_alpha = gr.Slider(0, 1, value=0, step=0.05, label="Blend: 0 = the model, 1 = the blend",
                                            elem_id="blend-alpha", scale=2)
                checkpoint = gr.File(label="Or upload a checkpoint (used instead of the list)",
                                     file_types=list(CHECKPOINT_SUFFIXES), type="filepath", elem_id="checkpoint")
                outscale = gr.Number(label="Outscale (0: the model's own scale)", value=0, minimum=0,
                                     elem_id="outscale")
                tile = gr.Number(label="Tile side in input px (0: automatic)", value=0, precision=0, minimum=0,
                                 elem_id="tile")
                precision = gr.Dropdown(list(PRECISIONS), value="auto", label="Precision", elem_id="precision")
                backend = gr.Dropdown(list(BACKENDS), value="auto", elem_id="engine",
                                      label="Engine (auto: the fastest that matches the network at this precision)")
                run = gr.Button("Upscale", variant="primary", elem_id="upscale")
            with gr.Column():
                status = gr.Markdown(elem_id="status")
                pick = gr.Dropdown([], label="Compare", elem_id="pick")
                compare = gr.ImageSlider(label="Before (input, enlarged) / after", format="png", image_mode=None,
                                         elem_id="compare")
                downloads = gr.File(label="Download", file_count="multiple", interactive=False, elem_id="downloads")
        comparisons = gr.State([])  # Comparison: a name and two preview files, never pixels
        refresh.click(lambda: (gr.update(choices=choices()),) * 2, None, [model, blend])
        run.click(on_upscale, [files, model, checkpoint, outscale, tile, precision, backend, blend, blend_alpha],
                  [status, pick, compare, downloads, comparisons], concurrency_id=UPSCALE_QUEUE,
                  concurrency_limit=settings.concurrency)
        pick.change(on_pick, [pick, comparisons], compare)
    return with_video_tab(app, settings, cache, initial, default, serving.runs, serving.budget,
                          delete_cache=UPLOAD_CLEANUP)


def launch(settings: WebSettings, host: str = LOCALHOST, port: int = DEFAULT_PORT) -> None:
    """Serve the page until interrupted (``host`` other than loopback only when the caller asks)."""
    prepare_environment(settings)
    allow_in_pillow(settings.limits)
    if not is_loopback(host):
        print(f"warning: serving on {host}: anyone who can reach this machine can upload files and use its "
              f"CPU/GPU", file=sys.stderr)
    share_cores(settings)
    app = build_app(settings)
    app.queue(max_size=settings.queue_size, default_concurrency_limit=settings.concurrency)
    app.launch(server_name=host, server_port=port, max_file_size=settings.max_upload_bytes,
               allowed_paths=[str(settings.output.resolve())], ssr_mode=False, share=False, inbrowser=False)


def share_cores(settings: WebSettings) -> None:
    """On a CPU, give each of the ``concurrency`` requests its share of the cores (PyTorch's threads, and
    the engines', which take PyTorch's count), so requests running at once do not oversubscribe them."""
    import torch

    from realesrgan_ext.inference.upscaler import resolve_device

    if resolve_device(settings.device).type == "cpu":
        torch.set_num_threads(max(1, len(os.sched_getaffinity(0)) // settings.concurrency))
