"""ESRGAN's RRDB generator (Residual-in-Residual Dense Blocks), weight-compatible with BasicSR.

With ``upsampler='nearest'`` the state dict has exactly the keys and shapes of
``basicsr.archs.rrdbnet_arch.RRDBNet`` (``conv_first``, ``body.N.rdb1..3.conv1..5``,
``conv_body``, ``conv_up1``, ``conv_up2``, ``conv_hr``, ``conv_last``), so the official
ESRGAN / Real-ESRGAN / Real-ESRNet checkpoints load with ``strict=True``. Scale 8 adds
``conv_up3``; ``upsampler='pixelshuffle'`` replaces ``conv_upK`` by ``conv_shuffleK``.

A generator that computes something ESRGAN's network does not (``upsampler='pixelshuffle'`` or a
``global_skip``) saves its weights under a prefix naming the variant (``bicubic_skip.conv_first.weight``,
see ``variant_prefix``): loaders that recognise ESRGAN by its key names (spandrel, hence chaiNNer and
ComfyUI; BasicSR's ``RRDBNet``) then refuse the file instead of silently running another network,
and the keys alone say what the network is. Loading accepts the keys with or without the prefix.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from realesrgan_ext.archs.weight_init import scaled_kaiming_init
from realesrgan_ext.registry import register_part

RESIDUAL_SCALE = 0.2  # ESRGAN scales every residual branch by 0.2 for stable training of deep nets
RDB_INIT_SCALE = 0.1  # kaiming init scaled down in dense blocks, as ESRGAN / BasicSR do
LRELU_SLOPE = 0.2
UPSAMPLE_STAGE_FACTOR = 2  # every upsampling stage doubles height and width
DENSE_LAYERS = 5  # convolutions per residual dense block

# Pixel-unshuffle factor applied to the input, per scale (BasicSR's RRDBNet convention): the
# trunk always upsamples by at least x4, so x2 / x1 models first fold the input down 2x / 4x.
UNSHUFFLE_FACTOR = {1: 4, 2: 2, 4: 1, 8: 1}
UPSAMPLERS = ("nearest", "pixelshuffle")
GLOBAL_SKIPS = (None, "bilinear", "bicubic")
ESRGAN_VARIANT = ("nearest", None)  # (upsampler, global_skip) of ESRGAN's own network: no key prefix


def variant_prefix(upsampler: str = "nearest", global_skip: str | None = None) -> str:
    """Key prefix of a variant's state dict: ``''`` for ESRGAN's network, else e.g. ``'pixelshuffle.'``,
    ``'bicubic_skip.'``, ``'pixelshuffle_bilinear_skip.'``."""
    if (upsampler, global_skip) == ESRGAN_VARIANT:
        return ""
    parts = ([upsampler] if upsampler != ESRGAN_VARIANT[0] else []) + ([f"{global_skip}_skip"] if global_skip else [])
    return "_".join(parts) + "."


# prefix -> the settings it names, for every variant
VARIANT_PREFIXES = {variant_prefix(u, g): {"upsampler": u, "global_skip": g}
                    for u in UPSAMPLERS for g in GLOBAL_SKIPS if (u, g) != ESRGAN_VARIANT}


def split_variant_prefix(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, str | None]]:
    """A state dict's keys without a variant prefix, and the settings that prefix names (``{}`` if none).

    Only a state dict whose every key carries the same prefix of ``VARIANT_PREFIXES`` is changed.
    """
    first = next(iter(state), "")
    prefix = next((p for p in VARIANT_PREFIXES if first.startswith(p)), None)
    if prefix is None or not all(k.startswith(prefix) for k in state):
        return state, {}
    return {k[len(prefix):]: v for k, v in state.items()}, dict(VARIANT_PREFIXES[prefix])


class ResidualDenseBlock(nn.Module):
    """Five densely connected 3x3 convs; the last one's output is a scaled residual.

    Conv ``k`` sees the block input plus every earlier conv's ``num_grow_ch`` outputs.
    """

    def __init__(self, num_feat: int = 64, num_grow_ch: int = 32) -> None:
        super().__init__()
        for k in range(1, DENSE_LAYERS + 1):
            out_ch = num_feat if k == DENSE_LAYERS else num_grow_ch
            setattr(self, f"conv{k}", nn.Conv2d(num_feat + (k - 1) * num_grow_ch, out_ch, 3, 1, 1))
        self.lrelu = nn.LeakyReLU(negative_slope=LRELU_SLOPE, inplace=True)
        scaled_kaiming_init([getattr(self, f"conv{k}") for k in range(1, DENSE_LAYERS + 1)], RDB_INIT_SCALE)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [x]
        for k in range(1, DENSE_LAYERS):
            feats.append(self.lrelu(getattr(self, f"conv{k}")(torch.cat(feats, 1))))
        out = getattr(self, f"conv{DENSE_LAYERS}")(torch.cat(feats, 1))
        return out * RESIDUAL_SCALE + x


class RRDB(nn.Module):
    """Residual-in-Residual Dense Block: three dense blocks inside one more scaled residual."""

    def __init__(self, num_feat: int = 64, num_grow_ch: int = 32) -> None:
        super().__init__()
        self.rdb1 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb2 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb3 = ResidualDenseBlock(num_feat, num_grow_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rdb3(self.rdb2(self.rdb1(x))) * RESIDUAL_SCALE + x


@register_part("arch")
class RRDBGenerator(nn.Module):
    """ESRGAN generator: conv, ``num_block`` RRDBs + conv with a long skip, x2 upsampling stages, two convs.

    Args:
        num_in_ch: channels of the input image.
        num_out_ch: channels of the output image.
        scale: 1, 2, 4 or 8. x1 / x2 pixel-unshuffle the input by 4 / 2 first (so
            ``conv_first`` takes ``num_in_ch * 16`` / ``* 4`` channels) and then upsample x4;
            x8 has three x2 stages (``conv_up1..3``).
        num_feat: trunk channels.
        num_block: number of RRDBs.
        num_grow_ch: growth channels of each dense-block conv.
        upsampler: ``'nearest'``: nearest x2 + 3x3 conv ``conv_upK`` (num_feat -> num_feat) +
            LeakyReLU per stage, ESRGAN's and BasicSR's (checkpoint-compatible).
            ``'pixelshuffle'``: 3x3 conv ``conv_shuffleK`` (num_feat -> 4 * num_feat) +
            PixelShuffle(2) + LeakyReLU per stage, SRGAN-style sub-pixel upsampling
            (no checkpoint compatibility; its keys differ on purpose).
        global_skip: ``None`` (ESRGAN), or ``'bilinear'`` / ``'bicubic'``: add the interpolated
            input to the output, so the network learns only the detail interpolation misses
            (as VDSR and most lightweight SR nets do). ``conv_last`` then starts at zero, so an
            untrained model already equals the interpolation; small models beat bicubic within
            a few hundred iterations. Adds no parameters; the state dict's keys get the
            variant's prefix (see the module docstring), and our checkpoints also record it
            under ``'arch'``.

    Attributes:
        scale, num_in_ch, num_out_ch, upsampler: the constructor arguments.
        size_multiple: input height and width must be multiples of this (the pixel-unshuffle
            factor: 4 for x1, 2 for x2, 1 for x4 / x8); the inference engine pads to it.
    """

    def __init__(self, num_in_ch: int = 3, num_out_ch: int = 3, scale: int = 4, num_feat: int = 64,
                 num_block: int = 23, num_grow_ch: int = 32, upsampler: str = "nearest",
                 global_skip: str | None = None) -> None:
        super().__init__()
        if scale not in UNSHUFFLE_FACTOR:
            raise ValueError(f"RRDBGenerator scale must be one of {sorted(UNSHUFFLE_FACTOR)}, got {scale}")
        if upsampler not in UPSAMPLERS:
            raise ValueError(f"RRDBGenerator upsampler must be one of {UPSAMPLERS}, got {upsampler!r}")
        if global_skip not in GLOBAL_SKIPS:
            raise ValueError(f"RRDBGenerator global_skip must be one of {GLOBAL_SKIPS}, got {global_skip!r}")
        self.scale = scale
        self.num_in_ch = num_in_ch
        self.num_out_ch = num_out_ch
        self.upsampler = upsampler
        self.global_skip = global_skip
        unshuffle = UNSHUFFLE_FACTOR[scale]
        # x2 stages needed after unshuffling: scale * unshuffle = 2 ** stages (x1, x2, x4 -> 2; x8 -> 3)
        num_stages = (scale * unshuffle).bit_length() - 1

        self.conv_first = nn.Conv2d(num_in_ch * unshuffle**2, num_feat, 3, 1, 1)
        self.body = nn.Sequential(*(RRDB(num_feat, num_grow_ch) for _ in range(num_block)))
        self.conv_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        if upsampler == "nearest":
            self._up_names = [f"conv_up{k}" for k in range(1, num_stages + 1)]
            up_out_ch = num_feat
        else:
            self._up_names = [f"conv_shuffle{k}" for k in range(1, num_stages + 1)]
            up_out_ch = num_feat * UPSAMPLE_STAGE_FACTOR**2
            self.pixel_shuffle = nn.PixelShuffle(UPSAMPLE_STAGE_FACTOR)
        for name in self._up_names:
            setattr(self, name, nn.Conv2d(num_feat, up_out_ch, 3, 1, 1))
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=LRELU_SLOPE, inplace=True)
        if global_skip:
            nn.init.zeros_(self.conv_last.weight)
            nn.init.zeros_(self.conv_last.bias)
        self.key_prefix = variant_prefix(upsampler, global_skip)
        if self.key_prefix:
            self.register_state_dict_post_hook(_add_key_prefix)
            self.register_load_state_dict_pre_hook(_strip_key_prefix)

    @property
    def size_multiple(self) -> int:
        """Input height and width must be multiples of this (the pixel-unshuffle factor)."""
        return UNSHUFFLE_FACTOR[self.scale]

    def _upsample_stage(self, feat: torch.Tensor, conv: nn.Module) -> torch.Tensor:
        if self.upsampler == "nearest":
            return self.lrelu(conv(F.interpolate(feat, scale_factor=UPSAMPLE_STAGE_FACTOR, mode="nearest")))
        return self.lrelu(self.pixel_shuffle(conv(feat)))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Image -> trunk features (``conv_first`` + the scaled RRDB body with its long skip), at the
        input's resolution divided by ``size_multiple``."""
        unshuffle = self.size_multiple
        if unshuffle > 1:
            height, width = x.shape[-2:]
            if height % unshuffle or width % unshuffle:
                raise ValueError(f"x{self.scale} RRDBGenerator needs height and width divisible by {unshuffle}, "
                                 f"got {height}x{width}; pad the input first")
            x = F.pixel_unshuffle(x, unshuffle)  # same channel order as basicsr's pixel_unshuffle
        feat = self.conv_first(x)
        return feat + self.conv_body(self.body(feat))

    def reconstruct(self, feat: torch.Tensor) -> torch.Tensor:
        """Trunk features -> image (the x2 upsampling stages, ``conv_hr``, ``conv_last``), without the global skip."""
        for name in self._up_names:
            feat = self._upsample_stage(feat, getattr(self, name))
        return self.conv_last(self.lrelu(self.conv_hr(feat)))

    def skip(self, x: torch.Tensor) -> torch.Tensor | None:
        """The global skip's interpolated input (None without one)."""
        if not self.global_skip:
            return None
        return F.interpolate(x, scale_factor=self.scale, mode=self.global_skip, align_corners=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.reconstruct(self.features(x))
        skip = self.skip(x)
        return out if skip is None else out + skip


def _add_key_prefix(module: RRDBGenerator, state: dict, prefix: str, local_metadata: dict) -> None:
    """State-dict hook: ``<prefix>conv_first.weight`` -> ``<prefix><variant>conv_first.weight`` (order kept)."""
    own = [k for k in state if k.startswith(prefix)]
    for key in own:
        state[prefix + module.key_prefix + key[len(prefix):]] = state.pop(key)


def _strip_key_prefix(module: RRDBGenerator, state: dict, prefix: str, *args) -> None:
    """Load pre-hook: accept the variant's prefixed keys (and, as before, unprefixed ones). A key given
    both ways is left alone, so a strict load reports it instead of picking one."""
    marked = prefix + module.key_prefix
    for key in [k for k in state if k.startswith(marked)]:
        plain = prefix + key[len(marked):]
        if plain not in state:
            state[plain] = state.pop(key)
