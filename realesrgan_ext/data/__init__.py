"""Datasets (DATASET_REGISTRY), one `*_dataset.py` file each, and image I/O helpers."""

from pathlib import Path

from realesrgan_ext.registry import import_part_modules

REGISTERED_MODULES = import_part_modules(__name__, str(Path(__file__).parent), "_dataset")
