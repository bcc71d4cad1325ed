"""realesrgan_ext: ESRGAN / Real-ESRGAN parts registered into BasicSR's registries.

Importing the package applies the basicsr compatibility fixes (``compat``) and then
imports each part module, whose decorators register it, so BasicSR option files can name
our architectures, datasets, losses and models by ``type``.
"""

from realesrgan_ext import compat

compat.apply()

from realesrgan_ext import archs, data, losses, metrics, models  # noqa: E402,F401  (registration)

__version__ = "0.1.0"
