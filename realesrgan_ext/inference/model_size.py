"""A model's size from what its checkpoint declares, bounded before anything is inflated or built.

Three checks, each against ``Limits`` and each before the work it guards:

* ``check_checkpoint_file``: a ``.pth`` is a zip; its central directory says how many bytes
  every entry inflates to. The sum must stay within ``max_model_bytes`` and a compressed entry
  within ``max_zip_ratio`` (``torch.save`` stores weights uncompressed; an entry that inflates
  1000:1 is a bomb), and its pickle within what ``max_structure_items`` entries need. Any other
  file (legacy ``torch.save`` format, safetensors) holds its weights as plain bytes, so its size
  is bounded instead, and a safetensors header's length.
* ``check_weights``: the elements of all tensors, from their shapes, within ``max_model_params``.
  A stride-0 tensor stores one number but declares billions, and every copy of it (``.to``,
  ``deepcopy``, an engine export) materialises them all.
* ``build_budget``: while a network is constructed (from an ``'arch'`` record or by spandrel from
  the keys), the elements of every tensor it creates are counted before they are allocated, and
  construction stops past ``max_model_params`` or past what the checkpoint's weights could fill
  (a network must load them strictly): a few small tensors named ``body.20000.weight`` cannot
  make a detector build twenty thousand layers.
"""

from __future__ import annotations

import math
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from realesrgan_ext.inference.model_errors import ModelLoadError, ModelTooLargeError
from realesrgan_ext.limits import Limits, how_to_raise, over_limit

# Bytes of pickle (torch.save's data.pkl) or of safetensors JSON header allowed per structure entry
# (Limits.max_structure_items): RealESRGAN_x4plus has 64 KB of pickle for 1400 entries (key and
# tensor of 700 weights). torch.load spends about 0.3 ms per tensor, so an 11 MB pickle of 150 000
# tensor views took 46 s before the entries could be counted; its size is bounded instead.
PICKLE_BYTES_PER_ITEM = 64
HEADER_BYTES_PER_ITEM = 128
# Elements a network may create beyond twice its checkpoint's weights while it is built (buffers
# computed at construction, temporaries): 10 M (40 MB of float32).
BUILD_SLACK = 10_000_000
# Tensors it may create: per weight tensor of the checkpoint this many, plus BUILD_CALL_SLACK. Each
# layer costs milliseconds to construct, so twenty thousand tiny ones would take half a minute.
BUILD_CALLS_PER_WEIGHT = 4
BUILD_CALL_SLACK = 256


def check_checkpoint_file(path: Path, limits: Limits) -> None:
    """Refuse a checkpoint file that would inflate beyond ``max_model_bytes``, or whose pickle / safetensors
    header is longer than ``max_structure_items`` entries can need (see the module docstring)."""
    if path.suffix.lower() == ".safetensors":
        _check_safetensors_header(path, limits)
    if not zipfile.is_zipfile(path):
        size = path.stat().st_size
        if size > limits.max_model_bytes:
            raise _too_large(over_limit(f"{path}: the file", size, "max_model_bytes", limits, "B"))
        return
    try:
        with zipfile.ZipFile(path) as zf:
            entries = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as err:
        raise ModelLoadError(f"{path}: not a readable PyTorch checkpoint (damaged zip: {err})") from err
    total = sum(e.file_size for e in entries)
    if total > limits.max_model_bytes:
        raise _too_large(over_limit(f"{path}: its {len(entries)} entries inflated", total, "max_model_bytes", limits,
                                    "B"))
    pickled = sum(e.file_size for e in entries if e.filename.endswith(".pkl"))
    if pickled > limits.max_structure_items * PICKLE_BYTES_PER_ITEM:
        raise _too_long(f"{path}: its pickle", pickled, PICKLE_BYTES_PER_ITEM, limits)
    for entry in entries:
        if entry.compress_type != zipfile.ZIP_STORED:
            ratio = entry.file_size / max(entry.compress_size, 1)
            if ratio > limits.max_zip_ratio:
                raise _too_large(over_limit(f"{path}: entry {entry.filename[:80]!r} inflates {ratio:.0f}:1; "
                                            "that ratio", ratio, "max_zip_ratio", limits))


def _check_safetensors_header(path: Path, limits: Limits) -> None:
    """The 8-byte length before a safetensors file's JSON header, bounded before the header is parsed."""
    with open(path, "rb") as f:
        head = f.read(8)
    length = int.from_bytes(head, "little") if len(head) == 8 else 0
    if length > path.stat().st_size - 8:
        raise ModelLoadError(f"{path}: not a valid safetensors file (its header length, {length:,} bytes, runs past "
                             "the end of the file)")
    if length > limits.max_structure_items * HEADER_BYTES_PER_ITEM:
        raise _too_long(f"{path}: its safetensors header", length, HEADER_BYTES_PER_ITEM, limits)


def _too_long(what: str, size: int, per_item: int, limits: Limits) -> ModelTooLargeError:
    return ModelTooLargeError(f"{what} is {size / 2**20:.1f} MiB, more than the {per_item} bytes for each of the "
                              f"{limits.max_structure_items:,} entries allowed (max_structure_items; "
                              f"{how_to_raise('max_structure_items')}) (refused before loading it)")


def check_weights(state: Mapping[str, Any], source: str, limits: Limits) -> int:
    """The elements of all tensors (from their shapes); refused past ``max_model_params``."""
    declared = sum(value.numel() for value in state.values() if isinstance(value, torch.Tensor))
    if declared > limits.max_model_params:
        raise _too_large(over_limit(f"{source}: the parameter count its weights' shapes declare", declared,
                                    "max_model_params", limits))
    return declared


@contextmanager
def build_budget(source: str, limits: Limits, state: Mapping[str, torch.Tensor]) -> Iterator[None]:
    """Count the tensors created inside (parameters, buffers) and their elements, refusing past what the
    weights in ``state`` can fill (see ``BUILD_SLACK``, ``BUILD_CALLS_PER_WEIGHT``) or ``max_model_params``."""
    declared = sum(t.numel() for t in state.values())
    with _ElementBudget(source, limits, declared, BUILD_CALLS_PER_WEIGHT * len(state) + BUILD_CALL_SLACK):
        yield


class _ElementBudget(TorchFunctionMode):
    """Sees every sized factory call (how ``nn.Conv2d`` and friends make their weights) before it allocates."""

    SIZED = frozenset({torch.empty, torch.zeros, torch.ones, torch.rand, torch.randn, torch.full})

    def __init__(self, source: str, limits: Limits, declared: int, max_calls: int) -> None:
        super().__init__()
        self.source, self.limits, self.declared, self.spent = source, limits, declared, 0
        self.budget = min(limits.max_model_params, 2 * declared + BUILD_SLACK)
        self.calls, self.max_calls = 0, max_calls

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in self.SIZED:
            self.spent += _declared_numel(args[:1] if func is torch.full else args)
            self.calls += 1
            if self.spent > self.budget or self.calls > self.max_calls:
                raise self._refusal()
        return func(*args, **(kwargs or {}))

    def _refusal(self) -> ModelTooLargeError:
        if self.calls > self.max_calls:
            weights = self.max_calls // BUILD_CALLS_PER_WEIGHT
            return ModelTooLargeError(f"{self.source}: the network its keys describe has more than {self.calls:,} "
                                      f"tensors, far more than the {weights:,}-odd its weights hold: its keys do "
                                      "not describe a real model (damaged or edited checkpoint; refused before "
                                      "building it)")
        if self.budget == self.limits.max_model_params:
            return _too_large(over_limit(f"{self.source}: the parameter count of the network its keys describe "
                                         "(counted so far)", self.spent, "max_model_params", self.limits))
        return ModelTooLargeError(f"{self.source}: the network its keys describe has more than {self.spent:,} "
                                  f"parameters, far more than the {self.declared:,} its weights hold: its keys do not "
                                  "describe a real model (damaged or edited checkpoint; refused before building it)")


def _declared_numel(args: tuple) -> int:
    size = args[0] if args and isinstance(args[0], (tuple, list, torch.Size)) else args
    try:
        return math.prod(int(n) for n in size)
    except (TypeError, ValueError):
        return 0  # not a size this check understands: the factory itself will complain


def _too_large(err: Exception) -> ModelTooLargeError:
    return ModelTooLargeError(f"{err} (refused before loading it)")
