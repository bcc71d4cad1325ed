"""A checkpoint's containers, checked before anything walks or prints them; values printed in bounded space.

``torch.load(weights_only=True)`` builds dicts, lists and tuples exactly as the pickle says: a
2 KB file can hold ``x = [x, x]`` sixty levels deep (2^60 paths: ``repr`` never finishes) or a
list that contains itself. ``check_structure`` visits each container once (shared parts cost
once), refusing cycles, nesting deeper than ``Limits.max_structure_depth`` and more than
``Limits.max_structure_items`` entries in all. ``short_repr`` prints any value (nested, cyclic,
a huge string or int, a tensor) in bounded time and length: every message built from a
checkpoint's content uses it.
"""

from __future__ import annotations

import reprlib
from collections.abc import Iterator, Mapping
from itertools import chain
from typing import Any

import torch

from realesrgan_ext.inference.model_errors import ModelTooLargeError
from realesrgan_ext.limits import Limits, how_to_raise

CONTAINERS = (Mapping, list, tuple, set, frozenset)
REPR_CHARS = 120  # longest short_repr


class _ShortRepr(reprlib.Repr):
    """``reprlib`` with small sizes; tensors as their shape and dtype, never their values."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel, self.maxstring, self.maxlong, self.maxother = 3, 60, 40, 60
        self.maxtuple = self.maxlist = self.maxarray = self.maxdict = self.maxset = self.maxfrozenset = 6
        self.maxdeque = 6

    def repr1(self, x: Any, level: int) -> str:
        if isinstance(x, torch.Tensor):
            return f"tensor(shape={tuple(x.shape)}, dtype={x.dtype})"
        if isinstance(x, int) and not isinstance(x, bool) and x.bit_length() > 128:
            return f"<int of {x.bit_length()} bits>"  # repr of a 10**5000 raises, and costs time
        return super().repr1(x, level)


_SHORT = _ShortRepr()


def short_repr(value: Any, limit: int = REPR_CHARS) -> str:
    """``repr(value)`` cut to ``limit`` characters, in bounded time whatever ``value`` holds."""
    try:
        text = _SHORT.repr(value)
    except Exception:  # noqa: BLE001  (a value whose repr fails is still named)
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def short_text(text: str, limit: int = 200) -> str:
    """``text`` cut to ``limit`` characters (a library's error message that may quote the file's content)."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_structure(obj: Any, source: str, limits: Limits | None = None) -> None:
    """Raise ``ModelTooLargeError`` naming ``source`` if ``obj`` is cyclic, too deep or too big.

    Depth counts containers on the longest path (``{'params': {...}}`` is 2); items count every
    key and value of every container, a shared container once per place it appears.
    """
    limits = limits or Limits.from_env()
    heights: dict[int, int] = {}  # id -> containers on the longest path down from it (finished ones)
    on_path: set[int] = set()
    items = 0
    stack: list[tuple[Any, Iterator[Any], int]] = []

    def enter(node: Any) -> None:
        on_path.add(id(node))
        stack.append((node, _children(node), 0))
        if len(stack) > limits.max_structure_depth:
            raise _too_deep(source, limits)

    if not isinstance(obj, CONTAINERS):
        return
    enter(obj)
    while stack:
        node, children, height = stack[-1]
        child = next(children, _DONE)
        if child is _DONE:
            stack.pop()
            on_path.discard(id(node))
            heights[id(node)] = height + 1
            if stack:
                parent, parent_children, parent_height = stack[-1]
                stack[-1] = (parent, parent_children, max(parent_height, height + 1))
            continue
        items += 1
        if items > limits.max_structure_items:
            raise ModelTooLargeError(f"{source}: holds more than {limits.max_structure_items:,} entries in its "
                                     f"dicts and lists (max_structure_items; {how_to_raise('max_structure_items')})")
        if not isinstance(child, CONTAINERS):
            continue
        if id(child) in on_path:
            raise ModelTooLargeError(f"{source}: a container in it contains itself (a cyclic structure); "
                                     "no checkpoint does that: refused")
        if id(child) in heights:  # shared: its height is known, only the depth it is reached at is new
            if len(stack) + heights[id(child)] > limits.max_structure_depth:
                raise _too_deep(source, limits)
            stack[-1] = (node, children, max(height, heights[id(child)]))
            continue
        enter(child)


_DONE = object()


def _children(node: Any) -> Iterator[Any]:
    return chain.from_iterable(node.items()) if isinstance(node, Mapping) else iter(node)


def _too_deep(source: str, limits: Limits) -> ModelTooLargeError:
    return ModelTooLargeError(f"{source}: its dicts and lists nest deeper than {limits.max_structure_depth} levels "
                              f"(max_structure_depth; {how_to_raise('max_structure_depth')})")
