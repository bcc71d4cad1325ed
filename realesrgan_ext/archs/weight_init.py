"""Scaled kaiming initialisation, as BasicSR's ``arch_util.default_init_weights`` (without basicsr).

ESRGAN initialises the residual branches of deep networks with kaiming-normal weights scaled
down (0.1), which keeps the untrained residual sums small and training stable.
"""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def scaled_kaiming_init(modules: nn.Module | list[nn.Module], scale: float = 1.0, bias_fill: float = 0.0) -> None:
    """Kaiming-normal weights times ``scale`` and biases ``bias_fill`` for every Conv2d / Linear in
    ``modules``; BatchNorm weights 1. Same draws, in the same order, as basicsr's function."""
    for module in modules if isinstance(modules, list) else [modules]:
        for m in module.modules():
            if getattr(getattr(m, "weight", None), "is_meta", False):
                continue  # built on the meta device to be loaded: nothing to initialise
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)
                m.weight *= scale
            elif isinstance(m, nn.modules.batchnorm._BatchNorm):
                nn.init.constant_(m.weight, 1)
            else:
                continue
            if m.bias is not None:
                m.bias.fill_(bias_fill)
