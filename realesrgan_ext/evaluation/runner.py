"""``evaluate``: score bicubic and any models on HR/LR pairs and on real photos, and write the report.

    from realesrgan_ext.evaluation import evaluate

    report = evaluate(["realesrgan-x4plus", "tuned=experiments/tune/models/net_g_best.pth"], "results/eval",
                      hr="photos/val", degradation="options/my_damage.yml")
    report.beats("tuned", "realesrgan-x4plus", ("psnr_y", "stlpips"))   # True / False
    report.files["html"]                                                 # results/eval/report.html

For each image every row upscales the same LR, is timed, and is scored; then the same
detail-rich crop of the reference and of every output is cut into the image's grid. A file
that cannot be read is reported (on stderr, and in the report's "Not scored" list) and the
rest are still scored. ``scripts/evaluate.py`` is the command-line front.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from realesrgan_ext.evaluation import crops, report_files
from realesrgan_ext.evaluation.contestants import Contestant, bicubic_contestant, model_contestant, resolve_labels
from realesrgan_ext.evaluation.image_sets import (
    DEFAULT_MAX_PIXELS,
    EvalImage,
    ImageSet,
    load_pair,
    plan_real_set,
    plan_reference_set,
)
from realesrgan_ext.evaluation.lr_sources import LrFolder, LrSource, lr_source
from realesrgan_ext.evaluation.metrics import METRICS, SSIM_Y, full_reference_scores, no_reference_scores
from realesrgan_ext.evaluation.photos import EvaluationError, UnreadableImage, read_bgr8
from realesrgan_ext.evaluation.results import EvaluationReport, Score

Log = Callable[[str], None]
CROPS_FOLDER = "crops"


def _stderr(message: str) -> None:
    tqdm.write(message, file=sys.stderr)


def evaluate(models: Sequence[str], output: str | Path, *, hr: str | Path | None = None,
             lr: str | Path | None = None, degradation: str | Path | None = None, bicubic: bool = False,
             real: str | Path | None = None, scale: int | None = None, seed: int = 0, backend: str = "auto",
             precision: str = "auto", device: str = "auto", tile: int = 0,
             max_pixels: int = DEFAULT_MAX_PIXELS, progress: bool = True, log: Log = _stderr) -> EvaluationReport:
    """Compare bicubic and ``models`` (bundled names, checkpoints, ``LABEL=MODEL``) and write the report to ``output``.

    ``hr`` with one of ``lr`` / ``degradation`` / ``bicubic``: full-reference scores (PSNR-Y,
    SSIM-Y, ST-LPIPS); ``real``: NIQE on real LR photos. ``scale``: given, else the degradation
    file's, the LR folder's, or the first model's. ``backend``, ``precision``, ``device``, ``tile``:
    as ``scripts/inference.py``. Images larger than ``max_pixels`` (output size) are reported, not scored.
    """
    from realesrgan_ext.inference.onnx_export import resolve_model

    if hr is None and real is None:
        raise EvaluationError("nothing to score: give HR photos (--hr) and an LR source, or real photos (--real)")
    if hr is None and (lr or degradation or bicubic):
        raise EvaluationError("--lr, --degradation and --bicubic say where the LR of the --hr photos comes from; "
                              "give --hr too")
    output = Path(output)
    _check_output(output, hr, lr, real)
    source, stated = lr_source(lr, degradation, bicubic, seed) if hr is not None else (None, None)
    loaded = {label: resolve_model(model) for label, model in resolve_labels(models)}
    scale = scale or stated
    sets: list[ImageSet] = []
    if hr is not None:
        reference, scale = plan_reference_set(hr, source, scale or _first_scale(loaded, source), max_pixels)
        sets.append(reference)
    scale = scale or _first_scale(loaded, None) or 4
    if real is not None:
        sets.append(plan_real_set(real, scale, max_pixels))
    contestants = [bicubic_contestant(scale)] + [
        model_contestant(label, model, scale, backend=backend, precision=precision, device=device, tile=tile)
        for label, model in loaded.items()]
    report = EvaluationReport([c.label for c in contestants], {c.label: c.description for c in contestants},
                              {s.kind: s.description for s in sets}, scale)
    gallery = _Gallery(output)
    with tqdm(total=sum(len(s.images) for s in sets) * len(contestants), unit="run", desc="evaluate",
              disable=not progress, file=sys.stderr) as bar:
        for image_set in sets:
            for path, reason in image_set.problems:
                _problem(report, log, path, reason)
            for image in image_set.images:
                bar.set_postfix_str(image.name)
                try:
                    hr_img, lr_img = _inputs(image, source, scale, output)
                except UnreadableImage as err:
                    _problem(report, log, err.path, err.reason)
                    bar.update(len(contestants))
                    continue
                title = image.name if hr_img is not None else f"{image.name} (real)"
                gallery.add(title, _score_image(report, image_set.kind, image.name, lr_img, hr_img, contestants, bar))
    _write_report(report, output, gallery)
    return report


@dataclass
class _Gallery:
    """Each image's crop row, written to ``crops/NNN.png`` at once (stale ones of an earlier run removed);
    only the first ``MAX_GRID_ROWS`` stay in memory, for ``grid.png`` and the HTML page."""

    output: Path
    files: dict[str, str] = field(default_factory=dict)  # title -> path relative to the report
    rows: dict[str, np.ndarray] = field(default_factory=dict)
    pngs: dict[str, bytes] = field(default_factory=dict)

    def __post_init__(self) -> None:
        folder = self.output / CROPS_FOLDER
        for stale in folder.glob("*.png") if folder.is_dir() else ():
            if stale.stem.isdigit():
                stale.unlink()

    def add(self, title: str, row: np.ndarray) -> None:
        png = _png(row)
        rel = f"{CROPS_FOLDER}/{len(self.files):03d}.png"
        report_files.write_bytes(self.output / rel, png)
        self.files[title] = rel
        if len(self.rows) < crops.MAX_GRID_ROWS:
            self.rows[title], self.pngs[title] = row, png


def _check_output(output: Path, *inputs: str | Path | None) -> None:
    """Refuse a report folder inside an input folder: its PNGs would be scored as photos next time."""
    for folder in filter(None, inputs):
        folder = Path(folder).resolve()
        if output.resolve() == folder or folder in output.resolve().parents:
            raise EvaluationError(f"the report folder {output} is inside the input folder {folder}; its images would "
                                  f"be scored as photos on the next run: choose another -o")


def _inputs(image: EvalImage, source: LrSource | None, scale: int,
            output: Path) -> tuple[np.ndarray | None, np.ndarray]:
    """(HR or None for a real photo, LR) of one image; an LR made here is saved under ``output/lr``."""
    if image.hr_path is None:
        return None, read_bgr8(image.lr_path)
    hr_img, lr_img = load_pair(image, source, scale)
    if not isinstance(source, LrFolder):
        report_files.write_bytes(output / "lr" / f"{image.name}.png", _png(lr_img))
    return hr_img, lr_img


def _first_scale(loaded: dict, source: LrSource | None) -> int | None:
    """The first model's scale where nothing else states one (an LR folder states its own)."""
    if isinstance(source, LrFolder) or not loaded:
        return None
    return next(iter(loaded.values())).scale


def _problem(report: EvaluationReport, log: Log, path: str, reason: str) -> None:
    report.problems.append((path, reason))
    log(f"not scored: {path}: {reason}")


def _score_image(report: EvaluationReport, kind: str, name: str, lr: np.ndarray, hr: np.ndarray | None,
                 contestants: list[Contestant], bar: tqdm) -> np.ndarray:
    """Run every row on one LR, record its scores; returns the image's crop grid row."""
    outputs = []
    for contestant in contestants:
        out, seconds = contestant.timed(lr)
        values = full_reference_scores(out, hr, report.scale) if hr is not None else no_reference_scores(out)
        report.scores.append(Score(kind, name, contestant.label, values, seconds))
        outputs.append((f"{contestant.label}\n{_caption(values)}", out))
        bar.update(1)
    lr_big = ("LR", cv2.resize(lr, outputs[0][1].shape[1::-1], interpolation=cv2.INTER_NEAREST))
    if hr is not None:
        return crops.crop_row([("HR", hr), lr_big, *outputs], reference=hr)
    return crops.crop_row([lr_big, *outputs], reference=outputs[0][1])


def _caption(values: dict[str, float]) -> str:
    """A row's scores on one image, short enough for a crop panel (``22.45 dB  ST-LPIPS 0.352``)."""
    parts = []
    for key, value in values.items():
        metric = METRICS[key]
        if key != SSIM_Y.key and not np.isnan(value):
            parts.append(f"{value:.2f} {metric.unit}" if metric.unit else f"{metric.title} {value:.3f}")
    return "  ".join(parts)


def _png(img: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", img)
    if not ok:
        raise EvaluationError(f"PNG encoding failed for an image of shape {img.shape}")
    return data.tobytes()


def _write_report(report: EvaluationReport, output: Path, gallery: _Gallery) -> None:
    """report.md / .html, scores.csv, means.csv and grid.png into ``output`` (the crops are written)."""
    files = {"csv": ("scores.csv", report_files.scores_csv(report).encode()),
             "means_csv": ("means.csv", report_files.means_csv(report).encode()),
             "markdown": ("report.md", report_files.markdown(report, gallery.files).encode())}
    if gallery.rows:
        files["grid"] = ("grid.png", _png(crops.stack_rows(list(gallery.rows.values()), list(gallery.rows))))
    files["html"] = ("report.html", report_files.html_page(report, gallery.pngs, len(gallery.files)).encode())
    for key, (name, data) in files.items():
        report.files[key] = report_files.write_bytes(output / name, data)
