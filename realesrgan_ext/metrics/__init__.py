"""Validation metrics: one `*_metric.py` file each, next to BasicSR's PSNR / SSIM, importable without basicsr.

Each function is marked ``@register_part("metric")``; ``realesrgan_ext.register()`` puts it into
BasicSR's METRIC_REGISTRY, so ``val.metrics.<name>.type`` can name it.
"""
