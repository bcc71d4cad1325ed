"""Validation metrics (METRIC_REGISTRY): one `*_metric.py` file each, next to BasicSR's PSNR / SSIM."""

from pathlib import Path

from realesrgan_ext.registry import import_part_modules

REGISTERED_MODULES = import_part_modules(__name__, str(Path(__file__).parent), "_metric")
