"""Idempotent registration into BasicSR's registries.

BasicSR's ``Registry.register`` asserts on a name it already holds, so importing a plugin
module twice (``importlib.reload``, or two import paths) would fail. ``register_into``
skips a name already bound to the same class (same module and qualified name) and still
refuses a different class under a taken name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from basicsr.utils.registry import Registry

T = TypeVar("T", bound=type)


def _same_definition(a: object, b: object) -> bool:
    return (getattr(a, "__module__", None), getattr(a, "__qualname__", None)) == (
        getattr(b, "__module__", None), getattr(b, "__qualname__", None))


def register_into(registry: Registry) -> Callable[[T], T]:
    """Class decorator: register ``cls`` in ``registry`` under its class name, once."""

    def decorator(cls: T) -> T:
        name = cls.__name__
        existing = registry._obj_map.get(name)
        if existing is None:
            registry.register(cls)
        elif _same_definition(existing, cls):
            registry._obj_map[name] = cls  # a re-import: keep the newest definition
        else:
            raise KeyError(f"{registry._name} already has a different '{name}' "
                           f"({existing.__module__}); pick another class name")
        return cls

    return decorator


def import_part_modules(package: str, package_dir: str, suffix: str) -> list[str]:
    """Import every ``*<suffix>.py`` module of a part package so its classes register.

    Used by ``archs``, ``data``, ``losses`` and ``models``: adding a part is adding a file.
    """
    import importlib
    import pkgutil

    names = sorted(m.name for m in pkgutil.iter_modules([package_dir]) if m.name.endswith(suffix))
    for name in names:
        importlib.import_module(f"{package}.{name}")
    return names
