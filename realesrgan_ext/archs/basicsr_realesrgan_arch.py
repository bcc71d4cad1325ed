"""Real-ESRGAN's networks that basicsr already ships, under the names Real-ESRGAN's option files use.

basicsr 1.4.2 registers ``UNetDiscriminatorSN`` and ``SRVGGNetCompact`` only as
``UNetDiscriminatorSN_basicsr`` / ``SRVGGNetCompact_basicsr``. The same classes (not copies)
are registered here under their plain names, so ``type: UNetDiscriminatorSN`` (the network the
official ``RealESRGAN_x4plus_netD.pth`` fits) and ``type: SRVGGNetCompact`` (the compact
generator of the animevideov3 models) work in option files.
"""

from basicsr.archs.discriminator_arch import UNetDiscriminatorSN
from basicsr.archs.srvgg_arch import SRVGGNetCompact
from basicsr.utils.registry import ARCH_REGISTRY

from realesrgan_ext.registry import register_into

for _network in (UNetDiscriminatorSN, SRVGGNetCompact):
    register_into(ARCH_REGISTRY)(_network)

__all__ = ["SRVGGNetCompact", "UNetDiscriminatorSN"]
