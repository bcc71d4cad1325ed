"""Frozen VGG19 feature extractor for perceptual losses (a helper network, not registered).

Returns the outputs of the requested layers, named as in BasicSR's ``vgg_arch.NAMES['vgg19']``:
``conv5_4`` is a conv output before its ReLU (ESRGAN's perceptual loss), ``relu5_4`` the same
feature after the ReLU (SRGAN's VGG54). It stops after the last requested layer.
Inputs are RGB in [0, 1] (or [-1, 1] with ``range_norm``); the extractor
converts them to the convention its weights were trained with (see ``INPUT_CONVENTIONS``).

The weights come as a torchvision-style ``features.N.weight`` / ``features.N.bias`` state
dict; ``realesrgan_ext.losses.vgg_weights`` finds one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
from torch import nn

# Same names and order as basicsr.archs.vgg_arch.NAMES['vgg19'] (checked by tests/test_losses.py).
VGG19_LAYER_NAMES: tuple[str, ...] = (
    "conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1",
    "conv2_1", "relu2_1", "conv2_2", "relu2_2", "pool2",
    "conv3_1", "relu3_1", "conv3_2", "relu3_2", "conv3_3", "relu3_3", "conv3_4", "relu3_4", "pool3",
    "conv4_1", "relu4_1", "conv4_2", "relu4_2", "conv4_3", "relu4_3", "conv4_4", "relu4_4", "pool4",
    "conv5_1", "relu5_1", "conv5_2", "relu5_2", "conv5_3", "relu5_3", "conv5_4", "relu5_4", "pool5",
)
VGG19_CONV_NAMES: tuple[str, ...] = tuple(n for n in VGG19_LAYER_NAMES if n.startswith("conv"))
# Layers whose output can be a feature: each conv (before its ReLU) and each ReLU (after it).
VGG19_FEATURE_NAMES: tuple[str, ...] = tuple(n for n in VGG19_LAYER_NAMES if n.startswith(("conv", "relu")))
# Index of each layer in torchvision's ``vgg19().features`` (same order, one module per name).
TORCHVISION_INDEX: dict[str, int] = {name: i for i, name in enumerate(VGG19_LAYER_NAMES)}
# (out_channels, in_channels) of each conv; all kernels are 3x3.
VGG19_CONV_CHANNELS: dict[str, tuple[int, int]] = dict(zip(VGG19_CONV_NAMES, [
    (64, 3), (64, 64), (128, 64), (128, 128),
    (256, 128), (256, 256), (256, 256), (256, 256),
    (512, 256), (512, 512), (512, 512), (512, 512),
    (512, 512), (512, 512), (512, 512), (512, 512),
], strict=True))

TORCHVISION_RGB_01 = "torchvision_rgb_01"  # RGB in [0, 1], minus ImageNet mean, divided by std
CAFFE_BGR_255 = "caffe_bgr_255"  # BGR in [0, 255] minus ImageNet BGR mean, no std (Caffe / Keras VGG)
INPUT_CONVENTIONS = (TORCHVISION_RGB_01, CAFFE_BGR_255)

IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
IMAGENET_STD_RGB = (0.229, 0.224, 0.225)
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


def feature_state_dict_keys() -> list[str]:
    """The 32 keys of a VGG19 ``features`` state dict: ``features.<i>.weight`` and ``.bias``."""
    return [f"features.{TORCHVISION_INDEX[n]}.{p}" for n in VGG19_CONV_NAMES for p in ("weight", "bias")]


class VGG19Features(nn.Module):
    """Frozen VGG19 returning ``{layer: output}`` for ``layer_names``.

    Args:
        layer_names: layers to return, e.g. ``['conv5_4']`` (before ReLU) or ``['relu5_4']`` (after).
        state_dict: torchvision-style VGG19 weights (``features.N.weight``); extra keys, such
            as a classifier's, are ignored.
        input_convention: what the weights expect, one of ``INPUT_CONVENTIONS``.
        use_input_norm: convert [0, 1] RGB inputs to ``input_convention`` (turn off only
            when the caller already feeds that convention).
        range_norm: inputs are in [-1, 1]; map them to [0, 1] first.
    """

    def __init__(self, layer_names: Iterable[str], state_dict: Mapping[str, torch.Tensor],
                 input_convention: str = TORCHVISION_RGB_01, use_input_norm: bool = True,
                 range_norm: bool = False) -> None:
        super().__init__()
        self.layer_names = list(dict.fromkeys(layer_names))
        if not self.layer_names:
            raise ValueError("VGG19Features needs at least one layer name")
        unknown = [n for n in self.layer_names if n not in VGG19_FEATURE_NAMES]
        if unknown:
            raise ValueError(f"unknown VGG19 feature layer(s) {unknown}; choose from {list(VGG19_FEATURE_NAMES)}")
        if input_convention not in INPUT_CONVENTIONS:
            raise ValueError(f"input_convention must be one of {INPUT_CONVENTIONS}, got {input_convention!r}")
        self.input_convention = input_convention
        self.use_input_norm = use_input_norm
        self.range_norm = range_norm

        last = max(TORCHVISION_INDEX[n] for n in self.layer_names)
        layers: dict[str, nn.Module] = {}
        for name in VGG19_LAYER_NAMES[:last + 1]:
            if name.startswith("conv"):
                out_ch, in_ch = VGG19_CONV_CHANNELS[name]
                # on 'meta': no random init to pay for, the loaded weights replace the parameters
                layers[name] = nn.Conv2d(in_ch, out_ch, kernel_size=3, padding=1, device="meta")
            elif name.startswith("relu"):
                layers[name] = nn.ReLU(inplace=False)  # keeps the returned pre-activations intact
            else:
                layers[name] = nn.MaxPool2d(kernel_size=2, stride=2)
        self.body = nn.ModuleDict(layers)
        self._load_features(state_dict)

        if input_convention == TORCHVISION_RGB_01:
            mean, scale = torch.tensor(IMAGENET_MEAN_RGB), 1.0 / torch.tensor(IMAGENET_STD_RGB)
            order = [0, 1, 2]
        else:
            mean, scale = torch.tensor(CAFFE_MEAN_BGR) / 255.0, torch.full((3,), 255.0)
            order = [2, 1, 0]
        # (x[order] - mean) * scale: for Caffe that is 255 * BGR - mean_bgr.
        self.register_buffer("channel_order", torch.tensor(order), persistent=False)
        self.register_buffer("mean", mean.view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", scale.view(1, 3, 1, 1), persistent=False)

        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()

    def _load_features(self, state_dict: Mapping[str, torch.Tensor]) -> None:
        for name, conv in self.body.items():
            if not isinstance(conv, nn.Conv2d):
                continue
            for param in ("weight", "bias"):
                key = f"features.{TORCHVISION_INDEX[name]}.{param}"
                if key not in state_dict:
                    raise KeyError(f"VGG19 weights lack {key} ({name}.{param})")
                value = state_dict[key]
                target = getattr(conv, param)
                if tuple(value.shape) != tuple(target.shape):
                    raise ValueError(f"VGG19 weights {key} has shape {tuple(value.shape)}, "
                                     f"{name} needs {tuple(target.shape)}")
                setattr(conv, param, nn.Parameter(value.detach().to(torch.float32, copy=True)))

    def train(self, mode: bool = True) -> VGG19Features:
        """Stays in eval mode: the extractor is frozen."""
        return super().train(False)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Map an RGB [0, 1] (or [-1, 1] with ``range_norm``) batch to the weights' convention."""
        if self.range_norm:
            x = (x + 1) / 2
        if self.use_input_norm:
            x = (x.index_select(1, self.channel_order) - self.mean) * self.scale
        return x

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.normalize(x)
        wanted = set(self.layer_names)
        out: dict[str, torch.Tensor] = {}
        for name, layer in self.body.items():
            x = layer(x)
            if name in wanted:
                out[name] = x
        return out
