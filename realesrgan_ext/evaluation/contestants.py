"""The rows of an evaluation: bicubic, then each model, each upscaling 8-bit BGR images by the set's scale.

A model is named as the image CLI names it (``scripts/inference.py -m``): a bundled official
model (``realesrgan-x4plus``), or any checkpoint ``load_model`` reads. It runs through the same
engine choice and tiling (``engines.make_upscaler``), so its time per image is what the CLI
would take. ``LABEL=MODEL`` names a row; otherwise the label is the bundled name, or the
checkpoint's file stem, with its parent folders added until labels are unique
(``run_a/net_g_best`` and ``run_b/net_g_best``).

A model whose scale differs from the set's is run at its own scale and resized to the set's
(Lanczos up, area down, as ``--outscale``); the report says so.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from realesrgan_ext.data.image_io import to_float
from realesrgan_ext.inference.model_loader import LoadedModel

BICUBIC = "bicubic"


@dataclass
class Contestant:
    """One row: ``label``, what it is, and ``upscale(bgr_uint8) -> bgr_uint8`` at the set's scale."""

    label: str
    description: str
    upscale: Callable[[np.ndarray], np.ndarray]

    def timed(self, lr: np.ndarray) -> tuple[np.ndarray, float]:
        """The output and the seconds it took."""
        start = time.perf_counter()
        out = self.upscale(lr)
        return out, time.perf_counter() - start


def bicubic_upscale(lr: np.ndarray, scale: int) -> np.ndarray:
    """MATLAB's bicubic ``imresize`` up by ``scale`` (the classic SR baseline), 8-bit."""
    from realesrgan_ext import compat

    compat.apply()  # basicsr imports only once patched
    from basicsr.utils.matlab_functions import imresize

    out = imresize(to_float(lr), scale)
    return np.clip(np.round(np.asarray(out) * 255), 0, 255).astype(np.uint8)


def bicubic_contestant(scale: int) -> Contestant:
    return Contestant(BICUBIC, f"bicubic x{scale} (MATLAB imresize)", lambda lr: bicubic_upscale(lr, scale))


def split_label(spec: str) -> tuple[str | None, str]:
    """``'LABEL=MODEL'`` -> (LABEL, MODEL); a plain model (or a path holding '=') -> (None, spec)."""
    label, sep, model = spec.partition("=")
    if sep and label and "/" not in label and "\\" not in label and not Path(spec).exists():
        return label, model
    return None, spec


def default_labels(models: Sequence[str]) -> list[str]:
    """Short unique labels: the bundled name or file stem, with parent folders added until unique."""
    parts = [Path(m).with_suffix("").parts if Path(m).suffix else (m,) for m in models]
    depth = [1] * len(models)
    while True:
        labels = ["/".join(p[-d:]) for p, d in zip(parts, depth, strict=True)]
        clashes = {label for label in labels if labels.count(label) > 1}
        grow = [i for i, label in enumerate(labels) if label in clashes and depth[i] < len(parts[i])]
        if not grow:
            return labels
        for i in grow:
            depth[i] += 1


def resolve_labels(specs: Sequence[str]) -> list[tuple[str, str]]:
    """(label, model) of each ``-m`` value; duplicate labels or the reserved ``bicubic`` are errors."""
    from realesrgan_ext.evaluation.photos import EvaluationError

    split = [split_label(s) for s in specs]
    defaults = default_labels([model for _, model in split])
    pairs = [(label or default, model) for (label, model), default in zip(split, defaults, strict=True)]
    labels = [label for label, _ in pairs]
    for label in labels:
        if label == BICUBIC:
            raise EvaluationError(f"the label {BICUBIC!r} is the built-in bicubic row; name the model LABEL=MODEL")
        if labels.count(label) > 1:
            raise EvaluationError(f"two models are labelled {label!r}; name them LABEL=MODEL")
    return pairs


def model_contestant(label: str, loaded: LoadedModel, scale: int, *, backend: str = "auto", precision: str = "auto",
                     device: str = "auto", tile: int = 0) -> Contestant:
    """A loaded model on the engine the image CLI would pick (``make_upscaler``), at ``scale``."""
    from realesrgan_ext.inference.engines import make_upscaler

    upscaler = make_upscaler(loaded, backend, precision, device, tile=tile)
    outscale = None if loaded.scale == scale else float(scale)
    resized = "" if outscale is None else f", resized from x{loaded.scale} to x{scale}"
    description = f"{loaded.describe()}; {upscaler.engine.describe()}{resized}"

    def upscale(lr: np.ndarray) -> np.ndarray:
        rgb = np.ascontiguousarray(lr[:, :, ::-1])
        return np.ascontiguousarray(upscaler.upscale(rgb, outscale=outscale)[:, :, ::-1])

    return Contestant(label, description, upscale)
