"""Which networks a checkpoint's ``'arch'`` record may ask for, and how big.

A checkpoint is data from anywhere, and its ``'arch'`` record is turned into a constructor
call. ``check_arch_record`` lets through only this project's generator classes listed in
``ALLOWED_ARCHS``, with every integer option inside its bounds (no ``num_block: 10**6`` that
would exhaust memory before the weights are even compared) and every other option a plain
scalar the constructor validates itself (a string, a bool or None; no lists, no dicts).

To allow another generator, add an entry: ``ALLOWED_ARCHS["MyNet"] = ArchLimits(bounds={...})``
listing each integer constructor option with its inclusive range.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from realesrgan_ext.inference.checkpoint_structure import short_repr

_CHANNELS = (1, 4)  # gray, RGB, RGBA
_SCALE = (1, 8)


@dataclass(frozen=True)
class ArchLimits:
    """Inclusive ranges of a generator's integer options; other options must be str, bool or None."""

    bounds: Mapping[str, tuple[int, int]] = field(default_factory=dict)


_RRDB_LIMITS = ArchLimits(bounds={"num_in_ch": _CHANNELS, "num_out_ch": _CHANNELS, "scale": _SCALE,
                                  "num_feat": (1, 256), "num_block": (1, 64), "num_grow_ch": (1, 128)})

ALLOWED_ARCHS: dict[str, ArchLimits] = {
    "RRDBGenerator": _RRDB_LIMITS,  # official x4plus: 64 features, 23 blocks, 32 growth channels
    "RRDBNet": _RRDB_LIMITS,  # BasicSR's name, built as RRDBGenerator (same keys and options)
    "SRResNetGenerator": ArchLimits(bounds={"num_in_ch": _CHANNELS, "num_out_ch": _CHANNELS, "scale": _SCALE,
                                            "num_feat": (1, 256), "num_block": (1, 64)}),
    # Real-ESRGAN's compact net (realesr-animevideov3: 64 features, 16 convolutions)
    "SRVGGNetCompact": ArchLimits(bounds={"num_in_ch": _CHANNELS, "num_out_ch": _CHANNELS, "upscale": _SCALE,
                                          "num_feat": (1, 256), "num_conv": (1, 64)}),
}
PLAIN_TYPES = (str, bool, type(None))
MAX_PROBLEMS_SHOWN = 5


class ArchRecordError(ValueError):
    """An ``'arch'`` record naming a class or sizes this project does not build from checkpoints."""


def check_arch_record(record: Mapping[str, Any], source: str, default_type: str = "RRDBGenerator") -> None:
    """Raise ``ArchRecordError`` naming ``source`` unless ``record`` is an allowed class with bounded options."""
    arch_type = record.get("type", default_type)
    limits = ALLOWED_ARCHS.get(arch_type) if isinstance(arch_type, str) else None
    if limits is None:
        raise ArchRecordError(f"{source}: its 'arch' record names {short_repr(arch_type)}; a checkpoint may only "
                              f"ask for {', '.join(sorted(ALLOWED_ARCHS))} (refused, nothing was built)")
    problems = []
    for key, value in record.items():
        if key == "type":
            continue
        if key in limits.bounds:
            low, high = limits.bounds[key]
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                problems.append(f"{_name(key)}={short_repr(value, 60)} (allowed: an integer {low}..{high})")
        elif not isinstance(value, PLAIN_TYPES):
            problems.append(f"{_name(key)} is a {type(value).__name__} (allowed: a string, a bool or None)")
    if problems:
        shown = "; ".join(problems[:MAX_PROBLEMS_SHOWN])
        more = f"; and {len(problems) - MAX_PROBLEMS_SHOWN} more" if len(problems) > MAX_PROBLEMS_SHOWN else ""
        raise ArchRecordError(f"{source}: its 'arch' record asks for {arch_type} with {shown}{more} "
                              "(refused, nothing was built)")


def _name(key: Any) -> str:
    return key if isinstance(key, str) and len(key) <= 60 else short_repr(key, 60)
