"""realesrgan_ext: ESRGAN / Real-ESRGAN parts for BasicSR, and a basicsr-free inference engine.

Importing the package imports nothing heavy: the networks (``realesrgan_ext.archs.*``), the
data tools and ``realesrgan_ext.inference`` work without basicsr. Training needs our classes in
BasicSR's registries: call ``realesrgan_ext.register()`` first (``train.py`` does), which applies
the basicsr compatibility fixes (``compat``) and registers our architectures, datasets, losses,
models and metrics, so BasicSR option files can name them by ``type``.
"""

from realesrgan_ext import compat as _compat

_compat.install_functional_tensor_alias()  # lazy, standard library only: basicsr imports in any process

__version__ = "0.1.0"


def register() -> None:
    """Apply ``compat`` and register every part into BasicSR's registries; idempotent.

    Call it before importing anything of basicsr (``compat`` must patch basicsr first).
    """
    from realesrgan_ext import compat, registry
    from realesrgan_ext.archs.basicsr_aliases import register_basicsr_aliases

    compat.apply()
    registry.register_all()
    register_basicsr_aliases()
