"""``val.keep_best``: which validation score is better, and the record kept beside the best checkpoint.

The direction of a metric is BasicSR's ``better: higher|lower`` in its ``val.metrics`` entry;
without it, the metric functions known to be distances (lower is better) count as lower and
everything else as higher (BasicSR's default). The best checkpoint is ``models/net_g_best.pth``
and its record ``models/net_g_best.json``: the iteration, the metric, its value and direction,
the validation set, and the starting model's value (the baseline at iteration 0).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

DIRECTIONS = ("higher", "lower")
# BasicSR / this project's metric functions that are distances or naturalness scores (lower is better).
LOWER_IS_BETTER = frozenset({"calculate_niqe", "calculate_lpips", "calculate_stlpips"})
BEST_LABEL = "best"  # models/net_g_best.pth


def metric_direction(metric_opt: dict[str, Any]) -> str:
    """``'higher'`` or ``'lower'`` for one ``val.metrics`` entry (explicit ``better`` wins)."""
    better = metric_opt.get("better")
    if better is not None:
        if better not in DIRECTIONS:
            raise ValueError(f"better: {better!r}, expected one of {list(DIRECTIONS)}")
        return better
    return "lower" if metric_opt.get("type") in LOWER_IS_BETTER else "higher"


def is_improvement(value: float, best: float | None, direction: str) -> bool:
    """Whether ``value`` beats ``best`` (strictly; a NaN never does, anything beats no best)."""
    if not math.isfinite(value):
        return False
    if best is None:
        return True
    return value > best if direction == "higher" else value < best


@dataclass
class BestRecord:
    """What ``net_g_best.json`` says about ``net_g_best.pth``."""

    iteration: int
    metric: str
    value: float
    better: str
    val_set: str
    checkpoint: str
    baseline: float | None = None  # the metric at iteration 0 (the starting model), when measured

    def save(self, path: str | os.PathLike) -> None:
        """Write atomically (a temporary file renamed into place)."""
        path = Path(path)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> BestRecord | None:
        """The record, or None when there is none (an unreadable one is an error naming the file)."""
        path = Path(path)
        if not path.is_file():
            return None
        try:
            return cls(**json.loads(path.read_text(encoding="utf-8")))
        except (ValueError, TypeError) as error:
            raise ValueError(f"{path}: not a best-checkpoint record ({error}); delete it to start a new one") from error

    def describe(self) -> str:
        """``net_g_best.pth (iteration 400, psnr 24.31; iteration 0: 24.02)``."""
        score = f", {self.metric} {self.value:.4g}" if math.isfinite(self.value) else ""
        start = f"; iteration 0: {self.baseline:.4g}" if self.baseline is not None else ""
        return f"{self.checkpoint} (iteration {self.iteration}{score}{start})"
