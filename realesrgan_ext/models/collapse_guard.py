"""The collapse guard: does the generator's output on the validation images still look like its input?

A fine-tune that goes wrong (too high a learning rate, a GAN that ran away) usually fails in
one of three ways that show before any metric is read: the output loses its variance (flat,
washed out), turns gray (colour gone), or drifts in colour (darker, tinted). Each is judged
against the network's own LR input, so no ground truth and no threshold per data set is needed.

Both images are first area-averaged to the same coarse grid (at most ``GRID`` x ``GRID`` regions
of at least ``MIN_REGION`` LR pixels a side): noise, JPEG blocks and hallucinated texture average
out, and what is left is the picture's layout and colour, which a healthy super-resolution
network keeps. The regions are large on purpose: strong colour noise on a gray photo must not
count as colour the output then "loses" when a fine-tune learns to remove it. Per validation set:

- ``min_std_ratio``: spatial standard deviation of the output's luma over the input's (summed
  over the images) must stay at least this; a collapsed network's ratio falls toward 0.
- ``min_chroma_ratio``: mean chroma (per-pixel standard deviation across R, G, B) of the
  output over the input's; judged only when the input has colour (mean chroma of at least
  ``GRAY_INPUT_CHROMA``): a gray photo cannot turn gray.
- ``max_color_shift``: the mean over images of the largest per-channel difference of mean
  colour (0..1 units) must stay at most this (0.06 is about 15 of 255 levels).

Option file: ``val.collapse_guard: true`` (the defaults), or a mapping overriding any of the
keys above (the keys are this dataclass's fields).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import torch
from torch.nn import functional as F

GRID = 8  # compare on at most GRID x GRID regions ...
MIN_REGION = 4  # ... of at least this many LR pixels a side (fewer regions on a small image)
GRAY_INPUT_CHROMA = 0.02  # below this mean chroma the input counts as gray
LUMA = (0.299, 0.587, 0.114)


@dataclass(frozen=True)
class CollapseGuardOptions:
    """The bounds of ``val.collapse_guard``."""

    min_std_ratio: float = 0.5
    min_chroma_ratio: float = 0.5
    max_color_shift: float = 0.06

    @classmethod
    def from_options(cls, value: Any, where: str = "val.collapse_guard") -> CollapseGuardOptions | None:
        """``None`` when off (absent / false), else the bounds; a bad key or value is an error naming it."""
        if value is None or value is False:
            return None
        if value is True:
            return cls()
        if not isinstance(value, dict):
            raise ValueError(f"{where}: expected true/false or a mapping of {_field_names()}, got {value!r}")
        unknown = sorted(set(value) - set(_field_names()))
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {unknown}; allowed: {_field_names()}")
        for key, number in value.items():
            if not isinstance(number, (int, float)) or isinstance(number, bool) or not 0 <= number <= 1:
                raise ValueError(f"{where}.{key}: expected a number in [0, 1], got {number!r}")
        return cls(**{k: float(v) for k, v in value.items()})


def _field_names() -> list[str]:
    return [f.name for f in dataclasses.fields(CollapseGuardOptions)]


@dataclass
class ImageStats:
    """Pooled statistics of one image: luma std, mean chroma, mean of each channel."""

    std: float
    chroma: float
    means: tuple[float, float, float]


def pooled_stats(img: torch.Tensor, size: tuple[int, int]) -> ImageStats:
    """Statistics of a ``(1, 3, H, W)`` RGB image in [0, 1] after area-resizing it to ``size``."""
    small = F.interpolate(img.detach().float().clamp(0, 1), size=size, mode="area")[0]
    luma = sum(w * c for w, c in zip(LUMA, small, strict=True))
    return ImageStats(std=float(luma.std(unbiased=False)), chroma=float(small.std(dim=0, unbiased=False).mean()),
                      means=tuple(float(m) for m in small.mean(dim=(1, 2))))


def compare_size(lq: torch.Tensor) -> tuple[int, int]:
    """The grid both images are pooled to: at most ``GRID`` regions a side, each at least ``MIN_REGION``
    LR pixels, so zero-mean noise of any strength averages out over hundreds of pixels per region."""
    return tuple(max(1, min(GRID, side // MIN_REGION)) for side in lq.shape[-2:])


@dataclass
class OutputCheck:
    """Input and output statistics of one validation pass, and the verdict on them."""

    inputs: list[ImageStats] = dataclasses.field(default_factory=list)
    outputs: list[ImageStats] = dataclasses.field(default_factory=list)

    def add(self, lq: torch.Tensor, output: torch.Tensor) -> None:
        """Record every image of a batch (its LR input and the network's output)."""
        size = compare_size(lq)
        for i in range(lq.shape[0]):
            self.inputs.append(pooled_stats(lq[i:i + 1, :3], size))
            self.outputs.append(pooled_stats(output[i:i + 1, :3], size))

    def measures(self) -> dict[str, float]:
        """``std_ratio``, ``chroma_ratio`` (NaN when the input is gray) and ``color_shift``."""
        if not self.inputs:
            return {"std_ratio": math.nan, "chroma_ratio": math.nan, "color_shift": math.nan}
        in_std, out_std = sum(s.std for s in self.inputs), sum(s.std for s in self.outputs)
        in_chroma, out_chroma = sum(s.chroma for s in self.inputs), sum(s.chroma for s in self.outputs)
        shifts = [max(abs(a - b) for a, b in zip(i.means, o.means, strict=True))
                  for i, o in zip(self.inputs, self.outputs, strict=True)]
        colourful = in_chroma / len(self.inputs) >= GRAY_INPUT_CHROMA
        return {"std_ratio": out_std / in_std if in_std > 0 else math.inf,
                "chroma_ratio": out_chroma / in_chroma if colourful else math.nan,
                "color_shift": sum(shifts) / len(shifts)}

    def problems(self, bounds: CollapseGuardOptions) -> list[str]:
        """What is wrong with the output, one phrase each (empty: it looks healthy)."""
        m = self.measures()
        found = []
        if not m["std_ratio"] >= bounds.min_std_ratio:
            found.append(f"lost its variance (luma std {m['std_ratio']:.3f} of the input's, "
                         f"min_std_ratio {bounds.min_std_ratio:g})")
        if not math.isnan(m["chroma_ratio"]) and not m["chroma_ratio"] >= bounds.min_chroma_ratio:
            found.append(f"turned gray (chroma {m['chroma_ratio']:.3f} of the input's, "
                         f"min_chroma_ratio {bounds.min_chroma_ratio:g})")
        if not m["color_shift"] <= bounds.max_color_shift:
            found.append(f"drifted in colour (mean colour off the input's by {m['color_shift']:.3f}, "
                         f"max_color_shift {bounds.max_color_shift:g})")
        return found
