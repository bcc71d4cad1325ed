"""Validation metrics (METRIC_REGISTRY): one `*_metric.py` file each, next to BasicSR's PSNR / SSIM.

Metric modules import basicsr, so importing this package applies the basicsr fixes first;
``realesrgan_ext.register()`` registers them.
"""

from realesrgan_ext import compat

compat.apply()
