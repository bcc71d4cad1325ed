"""Real-ESRGAN's training-pair pool: mixes degradations across batches.

One batch shares each random resize factor and mode of the pipeline (they are drawn per
batch), so a batch alone is little variety. The pool keeps ``size`` earlier (LR, HR) pairs;
once full, every new batch goes in and a random batch of stored pairs comes out. Each
process (DDP rank) keeps its own pool. Same algorithm and random draws as basicsr's
``RealESRGANModel._dequeue_and_enqueue``. ``state_dict`` / ``load_state_dict`` carry the pool
through a training state, so a resumed run draws the same pairs as an uninterrupted one.
"""

from __future__ import annotations

from typing import Any

import torch


class TrainingPairPool:
    """A fixed-size pool of (lq, gt) pairs on the tensors' device; ``size`` must be a multiple of the batch."""

    def __init__(self, size: int) -> None:
        if size < 0:
            raise ValueError(f"pool size must be >= 0, got {size}")
        self.size = size
        self.lq: torch.Tensor | None = None
        self.gt: torch.Tensor | None = None
        self.filled = 0

    @torch.no_grad()
    def exchange(self, lq: torch.Tensor, gt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store this batch; return it while the pool fills, then a random stored batch of the same size."""
        if self.size == 0:
            return lq, gt
        b = lq.size(0)
        if self.size % b:
            raise ValueError(f"pool_size {self.size} must be a multiple of the batch size {b}")
        if self.lq is not None and (self.lq.shape[1:] != lq.shape[1:] or self.gt.shape[1:] != gt.shape[1:]):
            raise ValueError(f"the pool holds pairs of {tuple(self.lq.shape[1:])} / {tuple(self.gt.shape[1:])}, this "
                             f"batch is {tuple(lq.shape[1:])} / {tuple(gt.shape[1:])} (gt_size or scale changed?)")
        if self.lq is None:
            self.lq = lq.new_zeros((self.size, *lq.shape[1:]))
            self.gt = gt.new_zeros((self.size, *gt.shape[1:]))
        if self.filled < self.size:
            self.lq[self.filled:self.filled + b] = lq
            self.gt[self.filled:self.filled + b] = gt
            self.filled += b
            return lq, gt
        order = torch.randperm(self.size)
        self.lq, self.gt = self.lq[order], self.gt[order]
        out_lq, out_gt = self.lq[:b].clone(), self.gt[:b].clone()
        self.lq[:b], self.gt[:b] = lq, gt
        return out_lq, out_gt

    def state_dict(self) -> dict[str, Any]:
        """The fill position and the stored pairs (the first ``filled``), on the CPU, for a training state."""
        state: dict[str, Any] = {"size": self.size, "filled": self.filled}
        if self.lq is not None:
            state.update(lq=_pack(self.lq[:self.filled]), gt=_pack(self.gt[:self.filled]))
        return state

    def load_state_dict(self, state: dict[str, Any], device: torch.device | str = "cpu") -> None:
        """Restore what ``state_dict`` returned, onto ``device``; a pool saved with another size is an error."""
        if state["size"] != self.size:
            raise ValueError(f"the saved pool holds {state['size']} pairs, train.pool_size is {self.size}")
        self.lq = self.gt = None
        self.filled = state["filled"]
        if "lq" in state:
            self.lq, self.gt = (_padded(_unpack(state[key]), self.size).to(device) for key in ("lq", "gt"))


def _pack(x: torch.Tensor) -> dict[str, Any]:
    """``x`` on the CPU, as uint8 levels when ``levels / 255`` gives it back bit for bit, else as it is.

    Real-ESRGAN's LR is rounded to 8-bit levels and its HR comes from 8-bit images, so a pool of
    180 pairs of 256 px takes ~38 MB instead of ~150 MB in float32; 16-bit HR stays float.
    """
    x = x.detach().cpu()
    levels = (x * 255).round().clamp(0, 255).to(torch.uint8)
    if torch.equal(levels.to(x.dtype) / 255, x) and not x.signbit().any():  # signbit: a -0.0 would come back +0.0
        return {"levels": levels, "dtype": str(x.dtype).removeprefix("torch.")}
    return {"values": x}


def _unpack(packed: dict[str, Any]) -> torch.Tensor:
    if "values" in packed:
        return packed["values"]
    return packed["levels"].to(getattr(torch, packed["dtype"])) / 255


def _padded(x: torch.Tensor, size: int) -> torch.Tensor:
    """``x`` with zero rows appended up to ``size`` rows (a pool that was still filling)."""
    return torch.cat([x, x.new_zeros((size - x.size(0), *x.shape[1:]))])
