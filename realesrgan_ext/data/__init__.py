"""Datasets (one `*_dataset.py` file each) and image I/O helpers.

The helpers import without basicsr. The dataset modules import basicsr: call
``realesrgan_ext.register()`` first, which fixes basicsr and puts them into its DATASET_REGISTRY.
"""
