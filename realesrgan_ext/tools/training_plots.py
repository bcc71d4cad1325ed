"""Pictures of a BasicSR training run, drawn only from what training already wrote.

``plot_training(exp_dir)`` writes into ``experiments/NAME/plots/``:

- ``losses.png``: generator terms (``l_g_*`` and any other key), discriminator terms
  (``l_d_*``) and mean discriminator outputs (``out_d_*``) over iterations, each panel only
  when logged; tensorboard-style EMA smoothing drawn over the faint raw values.
- ``validation.png``: one panel per validation metric, one line per val set, with the
  bicubic baseline as a dashed line and, for a fine-tune validated at iteration 0, the starting
  model's score as a dotted one.
- ``samples.png``: center crops of validation images: LR (nearest), bicubic, SR at a few
  saved iterations, HR, each titled with that image's PSNR.

Scalars come from ``training_plot_logs`` (tensorboard events, else the text log), images
from ``training_plot_images`` (the copied option file and ``visualization/``). Figures are
plain ``matplotlib.figure.Figure`` objects on the Agg canvas (no pyplot state), returned so
callers and tests can inspect them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from realesrgan_ext.tools.training_plot_images import (
    ValSet,
    bicubic_baseline,
    experiment_val_sets,
    image_metric,
    load_pair,
    psnr_opt,
    sr_checkpoints,
)
from realesrgan_ext.tools.training_plot_logs import Series, TrainingScalars, read_training_scalars

__all__ = [
    "PlotResult", "PsnrSummary", "bicubic_baseline", "ema_smooth", "experiment_baseline", "group_losses",
    "plot_losses", "plot_samples", "plot_training", "plot_validation", "psnr_summary", "read_training_scalars",
]

LOWER_IS_BETTER = {"niqe", "lpips", "stlpips"}
METRIC_LABELS = {"psnr": ("PSNR", "PSNR (dB)"), "ssim": ("SSIM", "SSIM (0-1)")}
PANELS = (  # (group, title, y label)
    ("G", "Generator loss terms", "loss"),
    ("D", "Discriminator loss terms", "loss"),
    ("D_out", "Mean discriminator output on real vs fake", "mean D output (logit)"),
)


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _iteration_axis(ax) -> None:
    """Whole-number iteration ticks, thousands written as 10k so long runs stay readable."""
    ax.xaxis.set_major_locator(MaxNLocator(nbins=7, integer=True))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x / 1000:g}k" if abs(x) >= 1000 else f"{x:g}"))


def _xy(series: Series) -> tuple[np.ndarray, np.ndarray]:
    return np.fromiter(series.keys(), float, len(series)), np.fromiter(series.values(), float, len(series))


def ema_smooth(values: np.ndarray, weight: float) -> np.ndarray:
    """Tensorboard's scalar smoothing: a debiased exponential moving average; NaN/inf pass through."""
    values = np.asarray(values, dtype=float)
    out = values.copy()
    finite = values[np.isfinite(values)]
    if weight <= 0 or finite.size == 0 or np.all(finite == finite[0]):
        return out
    last, count = 0.0, 0
    for i, v in enumerate(values):
        if not math.isfinite(v):
            continue
        last = last * weight + (1 - weight) * v
        count += 1
        out[i] = last / (1 - weight**count)
    return out


def _spans_decade(series_by_key: dict[str, Series]) -> bool:
    values = np.array([v for s in series_by_key.values() for v in s.values()], dtype=float)
    values = values[np.isfinite(values)]
    return values.size > 0 and values.max() > 10 * values.min()


def group_losses(losses: dict[str, Series]) -> dict[str, dict[str, Series]]:
    """Log keys by panel: ``l_d_*`` -> "D", ``out_d_*`` -> "D_out", anything else -> "G"."""
    groups: dict[str, dict[str, Series]] = {"G": {}, "D": {}, "D_out": {}}
    for key, series in sorted(losses.items()):
        group = "D" if key.startswith("l_d_") else "D_out" if key.startswith("out_d_") else "G"
        groups[group][key] = series
    return {g: keys for g, keys in groups.items() if keys}


def plot_losses(scalars: TrainingScalars, smoothing: float = 0.9, title: str = "") -> Figure:
    """One panel per logged group (G, D, D outputs); per key a faint raw line and its smoothed line.

    Each axis holds exactly two lines per key, raw first; only smoothed lines are in the legend.
    """
    groups = group_losses(scalars.losses)
    if not groups:
        raise ValueError(f"no loss terms logged ({scalars.source or 'nothing read'})")
    fig = _figure(9, 3.0 * len(groups) + 0.6)
    axes = fig.subplots(len(groups), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (group, panel_title, ylabel) in zip(axes, [p for p in PANELS if p[0] in groups], strict=True):
        positive = True
        for key, series in groups[group].items():
            x, y = _xy(series)
            marker = "o" if len(x) < 20 else None
            raw = ax.plot(x, y, alpha=0.25, linewidth=1, marker=marker, markersize=3, label=f"_{key} raw")[0]
            ax.plot(x, ema_smooth(y, smoothing), color=raw.get_color(), linewidth=1.8, label=key)
            positive &= bool(np.all(y[np.isfinite(y)] > 0))
        if group != "D_out" and positive and _spans_decade(groups[group]):
            ax.set_yscale("log")
            ylabel += " (log scale)"
        _iteration_axis(ax)
        ax.set_title(panel_title)
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3, which="both")
        ax.legend(loc="best", fontsize="small")
    axes[-1].set_xlabel("iteration")
    fig.suptitle(f"{title + ': ' if title else ''}training losses "
                 f"(EMA smoothing {smoothing:g}, raw values faint)")
    return fig


def plot_validation(scalars: TrainingScalars, baseline: dict[str, dict[str, float]] | None = None,
                    title: str = "") -> Figure:
    """One panel per metric (PSNR first), one line per val set, bicubic baselines dashed."""
    order = list(METRIC_LABELS)
    metrics = sorted({m for per_set in scalars.metrics.values() for m in per_set},
                     key=lambda m: (order.index(m) if m in order else len(order), m))
    if not metrics:
        raise ValueError(f"no validation metrics logged ({scalars.source or 'nothing read'})")
    baseline = baseline or {}
    fig = _figure(5.2 * len(metrics), 4.2)
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    for ax, metric in zip(axes, metrics, strict=True):
        name, ylabel = METRIC_LABELS.get(metric, (metric, metric))
        unit = " dB" if metric == "psnr" else ""
        for val_set, per_set in sorted(scalars.metrics.items()):
            if metric not in per_set:
                continue
            x, y = _xy(per_set[metric])
            best = _best_index(y, lower_is_better=metric in LOWER_IS_BETTER)
            line = ax.plot(x, y, marker="o", markersize=4,
                           label=f"{val_set} (last {y[-1]:.4g}{unit}, best {y[best]:.4g}{unit} @ {int(x[best])})")[0]
            if 0 in per_set[metric]:  # val_at_start: the starting model (models/training_guardrails.py)
                ax.axhline(per_set[metric][0], color=line.get_color(), linestyle=":", linewidth=1.2,
                           label=f"{val_set} starting model, iter 0 ({per_set[metric][0]:.4g}{unit})")
            base = baseline.get(val_set, {}).get(metric)
            if base is not None:
                ax.axhline(base, color=line.get_color(), linestyle="--", linewidth=1.2,
                           label=f"{val_set} bicubic ({base:.4g}{unit})")
        _iteration_axis(ax)
        ax.set_title(f"Validation {name}")
        ax.set_xlabel("iteration")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best", fontsize="small")
    fig.suptitle(f"{title + ': ' if title else ''}validation over training (dashed: bicubic upscaling)")
    return fig


def _best_index(values: np.ndarray, lower_is_better: bool = False) -> int:
    """Index of the best finite value, the latest on ties (BasicSR's ``Best: ... @ iter`` rule)."""
    scores = np.where(np.isfinite(values), -values if lower_is_better else values, -np.inf)
    return int(len(scores) - 1 - np.argmax(scores[::-1]))


def _pick(iterations: list[int], count: int) -> list[int]:
    """``count`` iterations spread evenly from first to last."""
    if len(iterations) <= count:
        return list(iterations)
    idx = np.unique(np.round(np.linspace(0, len(iterations) - 1, count)).astype(int))
    return [iterations[i] for i in idx]


def _center_box(shape: tuple[int, ...], size: int, scale: int) -> tuple[int, int, int, int]:
    """(y, x, h, w) of a center crop at most ``size`` square, aligned to LR pixels."""
    h, w = shape[:2]
    side = max(scale, min(size, h, w) // scale * scale)
    y = (h - side) // 2 // scale * scale
    x = (w - side) // 2 // scale * scale
    return y, x, min(side, h), min(side, w)


def plot_samples(exp_dir: str | Path, val_sets: list[ValSet] | None = None, crop_size: int = 128,
                 max_rows: int = 4, checkpoints: int = 4, title: str = "") -> Figure:
    """Grid of validation crops: LR (nearest), bicubic, SR at up to ``checkpoints`` iterations, HR.

    One row per validation image that has saved SR images (at most ``max_rows``); each
    bicubic / SR title gives the whole image's PSNR against HR with the option file's settings.
    """
    exp_dir = Path(exp_dir)
    val_sets = experiment_val_sets(exp_dir) if val_sets is None else val_sets
    rows = [(vs, img, sr_checkpoints(exp_dir, img.name)) for vs in val_sets for img in vs.images]
    rows = [r for r in rows if r[2]][:max_rows]
    if not rows:
        raise ValueError(f"no saved SR images under {exp_dir / 'visualization'} for the validation images "
                         "of the option file (train with val.save_img: true)")
    iters = _pick(sorted({it for _, _, found in rows for it in found}), checkpoints)
    columns = ["LR", "bicubic", *[f"SR @ iter {it}" for it in iters], "HR"]
    fig = _figure(2.3 * len(columns), 2.5 * len(rows) + 0.8)
    axes = fig.subplots(len(rows), len(columns), squeeze=False)
    for r, (vs, image, found) in enumerate(rows):
        pair = load_pair(image, vs.scale)
        popt = psnr_opt(vs)
        y, x, h, w = _center_box(pair.hr.shape, crop_size, vs.scale)
        lr_up = cv2.resize(pair.lr, (pair.hr.shape[1], pair.hr.shape[0]), interpolation=cv2.INTER_NEAREST)
        cells = [(lr_up, f"LR (nearest ×{vs.scale})"),
                 (pair.bicubic, f"bicubic\n{image_metric(pair.bicubic, pair.hr, popt):.2f} dB")]
        for it in iters:
            if it not in found:
                cells.append((None, f"SR @ iter {it}\n(not saved)"))
                continue
            sr = cv2.imread(str(found[it]), cv2.IMREAD_COLOR)
            psnr = f"{image_metric(sr, pair.hr, popt):.2f} dB" if sr.shape == pair.hr.shape else "size differs"
            cells.append((sr, f"SR @ iter {it}\n{psnr}"))
        cells.append((pair.hr, "HR (ground truth)"))
        for c, (img, cell_title) in enumerate(cells):
            ax = axes[r, c]
            if img is not None:
                crop = img[y:y + h, x:x + w]
                ax.imshow(cv2.cvtColor(crop, cv2.COLOR_BGR2RGB), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(cell_title, fontsize="small")
        axes[r, 0].set_ylabel(f"{vs.name}/{image.name}\n{w}×{h} px at x={x}, y={y}", fontsize="small")
    fig.suptitle(f"{title + ': ' if title else ''}validation crops (HR pixels; PSNR of the whole image vs HR)")
    return fig


@dataclass
class PsnrSummary:
    """Validation PSNR of one val set at the end of training and at its best, against bicubic."""

    val_set: str
    final_iter: int
    final_psnr: float
    best_iter: int
    best_psnr: float
    bicubic_psnr: float | None

    def __str__(self) -> str:
        bic = f"{self.bicubic_psnr:.2f} dB" if self.bicubic_psnr is not None else "n/a"
        return (f"{self.val_set}: model {self.final_psnr:.2f} dB vs bicubic {bic} "
                f"(iter {self.final_iter}; best {self.best_psnr:.2f} dB @ iter {self.best_iter})")


def experiment_baseline(exp_dir: str | Path) -> dict[str, dict[str, float]]:
    """Bicubic PSNR/SSIM of each val set of the experiment's option file (``{}`` without one)."""
    return bicubic_baseline(experiment_val_sets(exp_dir))


def psnr_summary(exp_dir: str | Path, val_set: str | None = None, scalars: TrainingScalars | None = None,
                 baseline: dict[str, dict[str, float]] | None = None) -> PsnrSummary:
    """Final and best logged validation PSNR of ``val_set`` (default: the first with PSNR) and bicubic's."""
    scalars = read_training_scalars(exp_dir) if scalars is None else scalars
    with_psnr = [name for name, per_set in scalars.metrics.items() if "psnr" in per_set]
    if not with_psnr:
        raise ValueError(f"no validation PSNR logged for {exp_dir} ({scalars.source or 'nothing read'})")
    val_set = val_set or with_psnr[0]
    if val_set not in with_psnr:
        raise ValueError(f"no validation PSNR logged for val set {val_set!r}; logged: {with_psnr}")
    series = scalars.metrics[val_set]["psnr"]
    final_iter = max(series)
    iters = list(series)
    best_iter = iters[_best_index(np.fromiter(series.values(), float, len(series)))]
    baseline = experiment_baseline(exp_dir) if baseline is None else baseline
    return PsnrSummary(val_set, final_iter, series[final_iter], best_iter, series[best_iter],
                       baseline.get(val_set, {}).get("psnr"))


@dataclass
class PlotResult:
    figures: dict[str, Figure] = field(default_factory=dict)  # "losses" / "validation" / "samples"
    paths: dict[str, Path] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # figure -> why it was not drawn
    baseline: dict[str, dict[str, float]] = field(default_factory=dict)
    summary: PsnrSummary | None = None


def plot_training(exp_dir: str | Path, out_dir: str | Path | None = None, smoothing: float = 0.9,
                  crop_size: int = 128, max_rows: int = 4, checkpoints: int = 4) -> PlotResult:
    """Write losses.png, validation.png and samples.png (default into ``exp_dir/plots``).

    A figure whose inputs were not written by training is skipped, with the reason in
    ``PlotResult.skipped``; nothing is skipped silently.
    """
    exp_dir = Path(exp_dir)
    if not exp_dir.is_dir():
        raise FileNotFoundError(f"{exp_dir}: no such experiment folder")
    out_dir = Path(out_dir) if out_dir is not None else exp_dir / "plots"
    out_dir.mkdir(parents=True, exist_ok=True)
    name = exp_dir.resolve().name
    result = PlotResult()
    scalars = read_training_scalars(exp_dir)
    val_sets = experiment_val_sets(exp_dir)
    result.baseline = bicubic_baseline(val_sets)
    draw = {
        "losses": lambda: plot_losses(scalars, smoothing, name),
        "validation": lambda: plot_validation(scalars, result.baseline, name),
        "samples": lambda: plot_samples(exp_dir, val_sets, crop_size, max_rows, checkpoints, name),
    }
    for key, make in draw.items():
        try:
            fig = make()
        except ValueError as err:
            result.skipped[key] = str(err)
            continue
        path = out_dir / f"{key}.png"
        fig.savefig(path, dpi=110)
        result.figures[key], result.paths[key] = fig, path
    if any("psnr" in per_set for per_set in scalars.metrics.values()):
        result.summary = psnr_summary(exp_dir, scalars=scalars, baseline=result.baseline)
    return result
