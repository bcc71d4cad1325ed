"""Losses (LOSS_REGISTRY): one `*_loss.py` file each; ``realesrgan_ext.register()`` registers them.

Loss modules import basicsr, so importing this package applies the basicsr fixes first.
"""

from realesrgan_ext import compat

compat.apply()
