"""VGG-style discriminator of SRGAN / ESRGAN for any training patch size >= 32.

Design: ``num_stages`` stages of [3x3 conv stride 1 + BN + LeakyReLU(0.2), 4x4 conv stride 2
+ BN + LeakyReLU(0.2)], channels ``num_feat * (1, 2, 4, 8, 8, ...)`` (capped at 8x); the very
first conv has a bias and no BN. By default the stage count is the largest that leaves a map
of at least 4x4, at most 5 (32 -> 3 stages, 64 -> 4, 128 and up -> 5). An
``AdaptiveAvgPool2d(4)`` then brings whatever map is left (4x4 for 32/64/128, 6x6 for 96,
8x8 for 256) to a fixed 4x4, so the head, Linear(8 * num_feat * 16, 100) + LeakyReLU +
Linear(100, 1), has one size for every patch size: one logit per image.

Layer names follow BasicSR's ``VGGStyleDiscriminator`` (``conv{i}_0``, ``bn{i}_0``,
``conv{i}_1``, ``bn{i}_1``, ``linear1``, ``linear2``): at input size 128 (or 256 with
``num_stages=6``) its checkpoints load here with ``strict=True``, where pooling a 4x4 map to
4x4 is the identity.
"""

from __future__ import annotations

import torch
from torch import nn

from realesrgan_ext.registry import register_part

MIN_INPUT_SIZE = 32
HEAD_MAP_SIZE = 4  # spatial size the last map is pooled to before the linear head
MAX_AUTO_STAGES = 5
MAX_CHANNEL_MULT = 8  # channel growth stops at 8 * num_feat
HIDDEN_FEATURES = 100  # SRGAN / ESRGAN hidden layer width (the paper's 1024 shrunk as in ESRGAN)
LRELU_SLOPE = 0.2
DOWNSAMPLE = 2  # each stage's 4x4 stride-2 conv halves the map (floor for odd sizes)


def auto_num_stages(input_size: int) -> int:
    """Most stride-2 stages that keep the map at least 4x4, at most 5."""
    stages, size = 0, input_size
    while stages < MAX_AUTO_STAGES and size // DOWNSAMPLE >= HEAD_MAP_SIZE:
        size //= DOWNSAMPLE
        stages += 1
    return stages


@register_part("arch")
class VGGDiscriminator(nn.Module):
    """VGG-style discriminator: one real/fake logit per image, for square patches of ``input_size``.

    Args:
        num_in_ch: channels of the input image.
        num_feat: channels of the first stage (doubled per stage up to 8x).
        input_size: training patch size (height = width), >= 32; forward checks it.
        num_stages: stride-2 stages; None picks ``auto_num_stages(input_size)``.

    Attributes:
        input_size, num_stages, final_map_size (map size before pooling to 4x4).
    """

    def __init__(self, num_in_ch: int = 3, num_feat: int = 64, input_size: int = 128,
                 num_stages: int | None = None) -> None:
        super().__init__()
        if input_size < MIN_INPUT_SIZE:
            raise ValueError(f"VGGDiscriminator input_size must be >= {MIN_INPUT_SIZE}, got {input_size}")
        if num_stages is None:
            num_stages = auto_num_stages(input_size)
        if num_stages < 1 or input_size >> num_stages < 1:
            raise ValueError(f"VGGDiscriminator num_stages={num_stages} does not fit input_size={input_size}")
        self.input_size = input_size
        self.num_stages = num_stages
        self.final_map_size = input_size >> num_stages

        def channels(stage: int) -> int:
            return num_feat * min(2**stage, MAX_CHANNEL_MULT)

        # stage 0: conv0_0 has a bias and no BN (the first layer sees raw pixels)
        self.conv0_0 = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1, bias=True)
        for i in range(num_stages):
            in_ch, out_ch = channels(i - 1) if i else num_feat, channels(i)
            if i:
                setattr(self, f"conv{i}_0", nn.Conv2d(in_ch, out_ch, 3, 1, 1, bias=False))
                setattr(self, f"bn{i}_0", nn.BatchNorm2d(out_ch))
            setattr(self, f"conv{i}_1", nn.Conv2d(out_ch, out_ch, 4, DOWNSAMPLE, 1, bias=False))
            setattr(self, f"bn{i}_1", nn.BatchNorm2d(out_ch))
        self.pool = nn.AdaptiveAvgPool2d(HEAD_MAP_SIZE)
        self.linear1 = nn.Linear(channels(num_stages - 1) * HEAD_MAP_SIZE**2, HIDDEN_FEATURES)
        self.linear2 = nn.Linear(HIDDEN_FEATURES, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=LRELU_SLOPE, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, input_size, input_size) -> (N, 1) logits."""
        height, width = x.shape[-2:]
        if height != self.input_size or width != self.input_size:
            raise ValueError(f"VGGDiscriminator was built for input_size={self.input_size} but got a "
                             f"{height}x{width} input; set network_d.input_size to the training patch size")
        feat = self.lrelu(self.conv0_0(x))
        for i in range(self.num_stages):
            if i:
                feat = self.lrelu(getattr(self, f"bn{i}_0")(getattr(self, f"conv{i}_0")(feat)))
            feat = self.lrelu(getattr(self, f"bn{i}_1")(getattr(self, f"conv{i}_1")(feat)))
        feat = self.pool(feat).flatten(1)
        return self.linear2(self.lrelu(self.linear1(feat)))
