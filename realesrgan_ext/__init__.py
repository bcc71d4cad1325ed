"""realesrgan_ext: ESRGAN / Real-ESRGAN parts for BasicSR, and a basicsr-free inference engine.

Importing the package imports nothing heavy: the networks (``realesrgan_ext.archs.*``), the
data tools and ``realesrgan_ext.inference`` work without basicsr. It installs an import finder
(``compat``) that, on the first import of basicsr in the process, applies the basicsr
compatibility fixes and registers our architectures, datasets, losses, models and metrics in
BasicSR's registries, so a script written like Real-ESRGAN's ``train.py`` (``import
realesrgan_ext``, then ``basicsr.train.train_pipeline`` or ``build_network``) finds them by
``type``. ``realesrgan_ext.register()`` does the same explicitly (and at once).
"""

from realesrgan_ext import compat as _compat

__version__ = "0.1.0"

_registering = False


def register() -> None:
    """Apply ``compat`` and register every part into BasicSR's registries; idempotent and re-entrant
    (``compat.apply`` imports basicsr, whose import hook calls this again)."""
    global _registering
    if _registering:
        return
    _registering = True
    try:
        from realesrgan_ext import compat, registry
        from realesrgan_ext.archs.basicsr_aliases import register_basicsr_aliases

        compat.apply()
        registry.register_all()
        register_basicsr_aliases()
    finally:
        _registering = False


def _refuse_realesrgan() -> None:
    from realesrgan_ext.registry import refuse_realesrgan_import

    refuse_realesrgan_import()


_compat.register_after_basicsr_import(register)  # standard library only until basicsr is imported
_compat.check_before_realesrgan_import(_refuse_realesrgan)
