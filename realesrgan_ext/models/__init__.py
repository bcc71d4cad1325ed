"""Training models (MODEL_REGISTRY): one `*_model.py` file each; ``realesrgan_ext.register()`` registers them.

Model modules import basicsr, so importing this package applies the basicsr fixes first.
"""

from realesrgan_ext import compat

compat.apply()
