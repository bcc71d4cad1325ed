"""``train.trainable_g``: fine-tune only the generator parameters whose names match a pattern.

Training only the layers that first see the input (for RRDB: ``^(conv_first|body\\.[0-3]\\.)``)
adapts what the network takes in to a new damage and leaves the rest exactly as loaded, so each
step moves the model less; the frozen weights also need no gradients. (Measured on the fine-tune
demo's damages it raised PSNR-Y but did not keep x4plus's GAN texture: a discriminator does that,
``benchmarks/finetune_demo.txt``.)

The pattern is a Python regular expression searched in each parameter's module name
(``net.named_parameters()``: ``conv_first.weight``, ``body.0.rdb1.conv1.weight``, ..., without the
key prefix some variants' checkpoints carry); the others keep ``requires_grad=False`` and are left
out of the optimizer.
"""

from __future__ import annotations

import re

import torch


def freeze_all_but(net: torch.nn.Module, pattern: str, where: str = "train.trainable_g") -> tuple[int, int]:
    """Freeze every parameter of ``net`` whose name does not match ``pattern``; (trained, total) counts.

    A bad pattern, or one that matches no parameter, is a ``ValueError`` naming ``where``.
    """
    try:
        regex = re.compile(pattern)
    except (re.error, TypeError) as err:
        raise ValueError(f"{where}: {pattern!r} is not a regular expression ({err})") from err
    named = list(net.named_parameters())
    trained = 0
    for name, param in named:
        keep = bool(regex.search(name))
        param.requires_grad_(keep)
        trained += param.numel() if keep else 0
    if not trained:
        raise ValueError(f"{where}: {pattern!r} matches none of the generator's parameters "
                         f"(they are named like {named[0][0]!r} ... {named[-1][0]!r})")
    return trained, sum(param.numel() for _, param in named)
