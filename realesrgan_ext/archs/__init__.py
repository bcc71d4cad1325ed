"""Network architectures (ARCH_REGISTRY): one `*_arch.py` file each."""

from pathlib import Path

from realesrgan_ext.registry import import_part_modules

REGISTERED_MODULES = import_part_modules(__name__, str(Path(__file__).parent), "_arch")
