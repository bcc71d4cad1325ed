"""What an evaluation found: every score, the means per row, and which row beats which.

``EvaluationReport`` is what ``evaluate`` returns and what the report files are written from.
A caller that must decide (the fine-tune demo: did the tuned model beat x4plus?) asks
``report.beats('tuned', 'realesrgan-x4plus', ('psnr_y', 'stlpips'))``; the direction of each
metric comes from ``metrics.METRICS``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from realesrgan_ext.evaluation.metrics import FULL_REFERENCE, METRICS, NO_REFERENCE, Metric

SECONDS = "seconds"  # the time column: seconds to upscale one image
KINDS = {"reference": FULL_REFERENCE, "real": NO_REFERENCE}


@dataclass(frozen=True)
class Score:
    """One row's scores on one image of one set (``kind``: ``reference`` or ``real``)."""

    kind: str
    image: str
    row: str
    values: dict[str, float]
    seconds: float


@dataclass
class EvaluationReport:
    """Scores of every row on every scored image, what was compared, and the files written."""

    rows: list[str]  # labels, bicubic first
    descriptions: dict[str, str]  # label -> what it is (model, engine)
    sets: dict[str, str]  # kind -> how its images were made
    scale: int
    scores: list[Score] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)  # (file, why it was not scored)
    files: dict[str, Path] = field(default_factory=dict)  # "html", "markdown", "csv", "means_csv", "grid"

    def images(self, kind: str) -> list[str]:
        """Names of the images scored in set ``kind``, in order."""
        return list(dict.fromkeys(s.image for s in self.scores if s.kind == kind))

    def metrics(self, kind: str) -> tuple[Metric, ...]:
        return KINDS[kind]

    def means(self, kind: str = "reference") -> dict[str, dict[str, float]]:
        """``{row: {metric key: mean, 'seconds': mean, 'images': count}}`` over the images of ``kind``.

        An image a metric cannot score (NIQE on a small one: NaN) is left out of that mean only.
        """
        result = {}
        for row in self.rows:
            scores = [s for s in self.scores if s.kind == kind and s.row == row]
            means = {m.key: _nanmean([s.values[m.key] for s in scores]) for m in KINDS[kind]}
            means[SECONDS] = _nanmean([s.seconds for s in scores])
            means["images"] = float(len(scores))
            result[row] = means
        return result

    def beats(self, row: str, other: str, metrics: Sequence[str] = ("psnr_y", "stlpips")) -> bool:
        """True when ``row``'s mean is strictly better than ``other``'s on every metric named."""
        return all(better for better, _ in self.compare(row, other, metrics))

    def compare(self, row: str, other: str,
                metrics: Sequence[str] = ("psnr_y", "stlpips")) -> list[tuple[bool, str]]:
        """Per metric: (``row``'s mean strictly better than ``other``'s, a line saying so with both).

        Each metric is compared on the set it scores (NIQE on the real photos, the rest on the HR set).
        """
        for name in (row, other):
            if name not in self.rows:
                raise KeyError(f"no row {name!r}; rows: {', '.join(self.rows)}")
        result = []
        for key in metrics:
            metric = METRICS[key]
            kind = next(k for k, members in KINDS.items() if metric in members)
            if kind not in self.sets:
                raise KeyError(f"{metric.title} needs the {kind} photos, which this evaluation did not score")
            means = self.means(kind)
            ours, theirs = means[row][key], means[other][key]
            better = metric.better(ours, theirs)
            verdict = "better than" if better else "not better than"
            result.append((better, f"{row} {verdict} {other} on {metric.title} {metric.arrow}: "
                                   f"{metric.format(ours)} vs {metric.format(theirs)}"))
        return result

    def best(self, key: str, kind: str = "reference") -> str | None:
        """The row with the best mean of metric ``key`` (None when nothing was scored)."""
        means = {row: m[key] for row, m in self.means(kind).items() if not math.isnan(m[key])}
        if not means:
            return None
        pick = max if METRICS[key].higher_is_better else min
        return pick(means, key=means.get)


def _nanmean(values: list[float]) -> float:
    kept = [v for v in values if not math.isnan(v)]
    return sum(kept) / len(kept) if kept else float("nan")
