"""The upsampling tail of a super-resolution network run in row stripes: exact, and far less memory.

The tail's activations at 4x / 16x the tile's pixels (64 channels) are a network's largest
tensors: for a 352² tile of an x4 RRDB, 0.5 GB each. Run on stripes of feature rows with a halo
wider than the tail's receptive field, and cropped back, the output is the same while only a
stripe's activations exist at a time.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

TileFn = Callable[[torch.Tensor], torch.Tensor]
# The tail's receptive field is at most 2 feature rows (pixel-shuffle x4: a 3x3 conv at 1x, one at
# 2x, two at 4x; nearest x4: 1.25), so 3 rows of halo make every stripe exact.
TAIL_HALO = 3
# Feature rows per tail stripe: chosen so one output-resolution activation (num_feat channels,
# float32) of a stripe stays near this size.
TAIL_STRIPE_BYTES = 16 << 20
MIN_STRIPE_ROWS = 16  # the 2-row halos cost at most 25 % more of the tail (8 % of the work)


def stripe_rows(num_feat: int, width: int, out_per_row: int) -> int:
    """Feature rows per stripe so one output-resolution activation of a stripe stays near TAIL_STRIPE_BYTES."""
    row_bytes = num_feat * 4 * width * out_per_row * out_per_row
    return max(MIN_STRIPE_ROWS, TAIL_STRIPE_BYTES // max(row_bytes, 1))


def run_tail_in_stripes(feat: torch.Tensor, tail: TileFn, factor: int, rows: int,
                        map_fn: Callable = map) -> torch.Tensor:
    """``tail(feat)`` computed ``rows`` feature rows at a time, each with ``TAIL_HALO`` rows of context.

    ``factor``: output rows per feature row. Exact because the tail's receptive field is smaller
    than the halo: the halo rows' outputs (touched by the stripe's zero padding) are cropped.
    ``map_fn``: how the stripes are mapped (e.g. a thread pool's ``map``, results in order).
    """
    height = feat.shape[2]
    if rows >= height:
        return tail(feat)
    spans = [(top, min(top + rows, height)) for top in range(0, height, rows)]

    def stripe(span: tuple[int, int]) -> torch.Tensor:
        top, bottom = span
        lo, hi = max(top - TAIL_HALO, 0), min(bottom + TAIL_HALO, height)
        return tail(feat[:, :, lo:hi])[:, :, (top - lo) * factor: (bottom - lo) * factor]

    return torch.cat(list(map_fn(stripe, spans)), dim=2)
