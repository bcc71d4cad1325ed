"""Pixel loss: L1 or MSE between the super-resolved image and the ground truth."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from realesrgan_ext.registry import register_part

PIXEL_CRITERIA = {"l1": F.l1_loss, "mse": F.mse_loss}
REDUCTIONS = ("mean", "sum", "none")


@register_part("loss")
class PixelLoss(nn.Module):
    """``loss_weight * criterion(pred, target)``; ``criterion`` is ``'l1'`` or ``'mse'``.

    Args:
        loss_weight: factor on the loss.
        criterion: ``'l1'`` (mean absolute error) or ``'mse'`` (mean squared error).
        reduction: ``'mean'``, ``'sum'`` or ``'none'`` (per-element loss).
    """

    def __init__(self, loss_weight: float = 1.0, criterion: str = "l1", reduction: str = "mean") -> None:
        super().__init__()
        if criterion not in PIXEL_CRITERIA:
            raise ValueError(f"PixelLoss criterion must be one of {sorted(PIXEL_CRITERIA)}, got {criterion!r}")
        if reduction not in REDUCTIONS:
            raise ValueError(f"PixelLoss reduction must be one of {REDUCTIONS}, got {reduction!r}")
        self.loss_weight = loss_weight
        self.criterion = criterion
        self.reduction = reduction

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.loss_weight * PIXEL_CRITERIA[self.criterion](pred, target, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"criterion={self.criterion}, loss_weight={self.loss_weight}, reduction={self.reduction}"
