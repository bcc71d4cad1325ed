"""SRGAN's generator (SRResNet), with BatchNorm optional.

Layout (Ledig et al. 2017): 9x9 conv + PReLU; ``num_block`` residual blocks
(conv-BN-PReLU-conv-BN + skip); conv-BN + a global skip to the first conv's features;
sub-pixel upsampling stages (conv to ``r*r*num_feat`` + PixelShuffle(r) + PReLU); 9x9 conv.
``use_batchnorm=False`` drops every BN, as EDSR and BasicSR's MSRResNet do: BN statistics
shift between training patches and full test images and cause colour artefacts.
"""

from __future__ import annotations

import torch
from torch import nn

from realesrgan_ext.archs.weight_init import scaled_kaiming_init
from realesrgan_ext.registry import register_part

HEAD_TAIL_KERNEL = 9  # SRGAN's wide first and last convolutions
BODY_KERNEL = 3
RESBLOCK_INIT_SCALE = 0.1  # scaled-down kaiming init in residual blocks, as BasicSR's MSRResNet

# Upsampling stages per scale: each entry is one PixelShuffle factor.
UPSAMPLE_STAGES = {2: (2,), 3: (3,), 4: (2, 2), 8: (2, 2, 2)}


def _conv_norm(in_ch: int, out_ch: int, kernel: int, use_batchnorm: bool) -> list[nn.Module]:
    """Conv (+ BN). With BN the conv has no bias: BN's shift would cancel it."""
    layers: list[nn.Module] = [nn.Conv2d(in_ch, out_ch, kernel, 1, kernel // 2, bias=not use_batchnorm)]
    if use_batchnorm:
        layers.append(nn.BatchNorm2d(out_ch))
    return layers


class SRResidualBlock(nn.Module):
    """conv-BN-PReLU-conv-BN with an identity skip (BN optional)."""

    def __init__(self, num_feat: int = 64, use_batchnorm: bool = True) -> None:
        super().__init__()
        self.body = nn.Sequential(
            *_conv_norm(num_feat, num_feat, BODY_KERNEL, use_batchnorm),
            nn.PReLU(),
            *_conv_norm(num_feat, num_feat, BODY_KERNEL, use_batchnorm),
        )
        scaled_kaiming_init(self.body, RESBLOCK_INIT_SCALE)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


@register_part("arch")
class SRResNetGenerator(nn.Module):
    """SRGAN / SRResNet generator.

    Args:
        num_in_ch: channels of the input image.
        num_out_ch: channels of the output image.
        scale: 2, 3, 4 or 8 (x3 is one PixelShuffle(3) stage, the others x2 stages).
        num_feat: trunk channels.
        num_block: number of residual blocks.
        use_batchnorm: keep SRGAN's BatchNorm layers; False gives the BN-free variant.

    Attributes:
        scale, num_in_ch, num_out_ch: the constructor arguments.
        size_multiple: 1, any input size works (same attribute as ``RRDBGenerator``).
    """

    size_multiple = 1

    def __init__(self, num_in_ch: int = 3, num_out_ch: int = 3, scale: int = 4, num_feat: int = 64,
                 num_block: int = 16, use_batchnorm: bool = True) -> None:
        super().__init__()
        if scale not in UPSAMPLE_STAGES:
            raise ValueError(f"SRResNetGenerator scale must be one of {sorted(UPSAMPLE_STAGES)}, got {scale}")
        self.scale = scale
        self.num_in_ch = num_in_ch
        self.num_out_ch = num_out_ch
        self.use_batchnorm = use_batchnorm

        self.head = nn.Sequential(
            nn.Conv2d(num_in_ch, num_feat, HEAD_TAIL_KERNEL, 1, HEAD_TAIL_KERNEL // 2), nn.PReLU())
        self.body = nn.Sequential(*(SRResidualBlock(num_feat, use_batchnorm) for _ in range(num_block)))
        self.body_end = nn.Sequential(*_conv_norm(num_feat, num_feat, BODY_KERNEL, use_batchnorm))
        upsample: list[nn.Module] = []
        for factor in UPSAMPLE_STAGES[scale]:
            upsample += [nn.Conv2d(num_feat, num_feat * factor**2, BODY_KERNEL, 1, BODY_KERNEL // 2),
                         nn.PixelShuffle(factor), nn.PReLU()]
        self.upsample = nn.Sequential(*upsample)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, HEAD_TAIL_KERNEL, 1, HEAD_TAIL_KERNEL // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.head(x)
        feat = feat + self.body_end(self.body(feat))
        return self.conv_last(self.upsample(feat))
