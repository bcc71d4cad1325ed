"""Real-ESRGAN's networks that basicsr already ships, under the names Real-ESRGAN's option files use.

basicsr 1.4.2 registers ``UNetDiscriminatorSN`` and ``SRVGGNetCompact`` only as
``UNetDiscriminatorSN_basicsr`` / ``SRVGGNetCompact_basicsr``. ``register_basicsr_aliases`` puts
the same classes (not copies) into ARCH_REGISTRY under their plain names, so ``type:
UNetDiscriminatorSN`` (the network the official ``RealESRGAN_x4plus_netD.pth`` fits) and ``type:
SRVGGNetCompact`` (the compact generator of the animevideov3 models) work in option files. Not an
``*_arch`` module: those import without basicsr, this one needs it (``realesrgan_ext.register()``
calls it after ``compat``).
"""

from __future__ import annotations

import importlib

BASICSR_ALIASES = {"UNetDiscriminatorSN": "basicsr.archs.discriminator_arch",
                   "SRVGGNetCompact": "basicsr.archs.srvgg_arch"}


def register_basicsr_aliases() -> None:
    """Register each class of ``BASICSR_ALIASES`` under its plain name (idempotent)."""
    from basicsr.utils.registry import ARCH_REGISTRY

    from realesrgan_ext.registry import register_into

    for name, module in BASICSR_ALIASES.items():
        register_into(ARCH_REGISTRY)(getattr(importlib.import_module(module), name))
