"""Real-ESRGAN's training-pair pool: mixes degradations across batches.

One batch shares each random resize factor and mode of the pipeline (they are drawn per
batch), so a batch alone is little variety. The pool keeps ``size`` earlier (LR, HR) pairs;
once full, every new batch goes in and a random batch of stored pairs comes out. Each
process (DDP rank) keeps its own pool. Same algorithm and random draws as basicsr's
``RealESRGANModel._dequeue_and_enqueue``.
"""

from __future__ import annotations

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
        if self.lq is None:
            if self.size % b:
                raise ValueError(f"pool_size {self.size} must be a multiple of the batch size {b}")
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
