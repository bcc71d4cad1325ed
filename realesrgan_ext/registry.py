"""Lazy, idempotent registration into BasicSR's registries.

Why lazy: ``import basicsr`` imports all of basicsr (every dataset, model and metric), which
costs seconds; the networks, the data tools and inference do not need it. So part modules only
*record* their classes with ``@register_part(kind)`` (no basicsr import), and
``realesrgan_ext.register()`` applies ``compat``, imports every part module (``*_arch``,
``*_dataset``, ``*_loss``, ``*_model``, ``*_metric``) and pushes the recorded classes into BasicSR's
registries (``register_all``). A class recorded after that (a module imported or reloaded
later) is pushed at once.

Why idempotent: BasicSR's ``Registry.register`` asserts on a name it already holds, so a
module imported twice (``importlib.reload``, two import paths) would fail. ``register_into``
skips a name already bound to the same class (same module and qualified name) and still
refuses a different class under a taken name.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T", bound=type)

# kind -> (subpackage whose modules hold that kind, module name suffix, basicsr registry name)
PART_KINDS = {
    "arch": ("archs", "_arch", "ARCH_REGISTRY"),
    "dataset": ("data", "_dataset", "DATASET_REGISTRY"),
    "loss": ("losses", "_loss", "LOSS_REGISTRY"),
    "model": ("models", "_model", "MODEL_REGISTRY"),
    "metric": ("metrics", "_metric", "METRIC_REGISTRY"),
}
_recorded: dict[str, dict[str, type]] = {kind: {} for kind in PART_KINDS}
_pushed = False  # register_all has run: later records go straight into basicsr


def _same_definition(a: object, b: object) -> bool:
    return (getattr(a, "__module__", None), getattr(a, "__qualname__", None)) == (
        getattr(b, "__module__", None), getattr(b, "__qualname__", None))


REALESRGAN_PACKAGE = "realesrgan"


def realesrgan_conflict(names: str) -> str:
    """Why the ``realesrgan`` package and this plugin cannot share a process (the one place this is said)."""
    return (f"The 'realesrgan' package (xinntao/Real-ESRGAN) is imported in this process together with "
            f"realesrgan_ext. Both register {names} in BasicSR's registries under the same names, and "
            "BasicSR refuses a second class under a taken name. realesrgan_ext provides these parts itself and "
            "reads Real-ESRGAN's option files (see docs/coming-from-basicsr.md): remove the "
            "'import realesrgan' (or its archs/data/models imports) from this process; for Real-ESRGAN's "
            "RealESRGANer inference, use realesrgan_ext.inference.")


def _shared_names() -> str:
    from realesrgan_ext.archs.basicsr_aliases import BASICSR_ALIASES  # standard library only

    ours = sorted(name for kinds in _recorded.values() for name in kinds if name.startswith("RealESR"))
    return ", ".join(ours + sorted(BASICSR_ALIASES))


def refuse_realesrgan_import() -> None:
    """Import hook for ``realesrgan`` (installed by ``import realesrgan_ext``): it would register
    classes under our names as soon as it imports basicsr, so it is refused before it runs."""
    raise ImportError(realesrgan_conflict(_shared_names()))


def register_into(registry: Any) -> Callable[[T], T]:
    """Class decorator: register ``cls`` in a basicsr ``Registry`` under its class name, once."""

    def decorator(cls: T) -> T:
        name = cls.__name__
        existing = registry._obj_map.get(name)
        if existing is None:
            registry.register(cls)
        elif _same_definition(existing, cls):
            registry._obj_map[name] = cls  # a re-import: keep the newest definition
        elif str(getattr(existing, "__module__", "")).split(".")[0] == REALESRGAN_PACKAGE:
            raise RuntimeError(realesrgan_conflict(repr(name)))
        else:
            raise KeyError(f"{registry._name} already has a different '{name}' "
                           f"({existing.__module__}); pick another class name")
        return cls

    return decorator


def register_part(kind: str) -> Callable[[T], T]:
    """Class decorator for part modules: record ``cls`` as a ``kind`` ('arch', 'dataset', 'loss',
    'model', 'metric') without importing basicsr; ``register_all`` puts it into basicsr's registry."""
    if kind not in PART_KINDS:
        raise ValueError(f"kind must be one of {sorted(PART_KINDS)}, got {kind!r}")

    def decorator(cls: T) -> T:
        existing = _recorded[kind].get(cls.__name__)
        if existing is not None and not _same_definition(existing, cls):
            raise KeyError(f"two {kind} classes named '{cls.__name__}' ({existing.__module__}, {cls.__module__})")
        _recorded[kind][cls.__name__] = cls
        if _pushed:
            register_into(_basicsr_registry(kind))(cls)
        return cls

    return decorator


def recorded(kind: str) -> dict[str, type]:
    """Name -> class of every ``kind`` part recorded so far (importing a part module records its classes)."""
    return dict(_recorded[kind])


def _parts_being_imported() -> list[str]:
    """Our modules whose import is under way: the first ``import basicsr`` (which registers) can
    come from inside a part module, e.g. a DataLoader worker unpickling a dataset."""
    return [name for name, module in list(sys.modules.items()) if name.startswith(f"{__package__}.")
            and getattr(getattr(module, "__spec__", None), "_initializing", False)]


def import_part_modules(kind: str) -> list[str]:
    """Import every part module of ``kind`` (``archs/*_arch.py`` ...) so its classes are recorded;
    returns their names. Adding a part is adding a file.

    A part that subclasses one whose import is still under way cannot be imported yet (its base
    class does not exist); it is left for the next ``register()``, and the module being imported
    registers its own classes when it finishes.
    """
    subpackage, suffix, _ = PART_KINDS[kind]
    package = f"{__package__}.{subpackage}"
    folder = Path(__file__).parent / subpackage
    names = sorted(m.name for m in pkgutil.iter_modules([str(folder)]) if m.name.endswith(suffix))
    for name in names:
        try:
            importlib.import_module(f"{package}.{name}")
        except ImportError:
            if not _parts_being_imported():
                raise
    return names


def _basicsr_registry(kind: str) -> Any:
    from basicsr.utils import registry

    return getattr(registry, PART_KINDS[kind][2])


def register_all() -> None:
    """Import every part module and push the recorded classes into basicsr's registries (idempotent).

    Needs ``compat.apply()`` first (``realesrgan_ext.register()`` does both).
    """
    global _pushed
    if REALESRGAN_PACKAGE in sys.modules:  # imported before realesrgan_ext: its classes hold our names
        raise RuntimeError(realesrgan_conflict(_shared_names()))
    for kind in PART_KINDS:
        import_part_modules(kind)
    for kind, classes in _recorded.items():
        for cls in classes.values():
            register_into(_basicsr_registry(kind))(cls)
    _pushed = True
