"""Network architectures: one `*_arch.py` file each, importable without basicsr.

Each class is marked ``@register_part("arch")``; ``realesrgan_ext.register()`` puts it into
BasicSR's ARCH_REGISTRY.
"""
