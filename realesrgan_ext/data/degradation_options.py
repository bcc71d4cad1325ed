"""The ``degradation:`` section of an option file: Real-ESRGAN's second-order pipeline settings.

Real-ESRGAN scatters about forty top-level keys (``resize_prob2``, ``noise_range2`` ...) over
the model and the dataset options. Here they live in one nested section of the training
dataset, read by both the dataset (blur / sinc kernels) and the model (the rest)::

    datasets:
      train:
        degradation:
          kernel_size_range: [7, 21]
          first:  {blur_sigma: [0.2, 3], resize_range: [0.15, 1.5], noise_range: [1, 30], ...}
          second: {blur_prob: 0.8, blur_sigma: [0.2, 1.5], ...}
          final:  {sinc_prob: 0.8, resize_sinc_first_prob: 0.5}

Every key is optional; the defaults are the published ``RealESRGAN_x4plus`` recipe. A key
that is not known is an error naming it and the allowed ones (a misspelt key would otherwise
silently leave the default in place), and so is a value no pipeline can draw from: a range with
low > high, a JPEG quality outside 1..100, a probability outside 0..1. ``second_order: false``
makes it a single-stage pipeline: one round of blur, resize and noise, then the final resize and
one JPEG drawn from ``first.jpeg_range`` (``second`` must then be left out).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

KERNEL_TYPES = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso")
RESIZE_MODES = ("area", "bilinear", "bicubic")  # chosen uniformly at each resize, as Real-ESRGAN
ROUNDS = ("first", "second", "final")  # the sub-sections of ``degradation:``, in pipeline order


@dataclass(frozen=True)
class BlurOptions:
    """One blur kernel per image: a sinc (ringing) kernel with ``sinc_prob``, else a Gaussian-family one."""

    kernel_list: tuple[str, ...] = KERNEL_TYPES
    kernel_prob: tuple[float, ...] = (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)
    sinc_prob: float = 0.1
    blur_sigma: tuple[float, float] = (0.2, 3.0)
    betag_range: tuple[float, float] = (0.5, 4.0)
    betap_range: tuple[float, float] = (1.0, 2.0)


@dataclass(frozen=True)
class StageOptions(BlurOptions):
    """One degradation round: blur, random resize, Gaussian or Poisson noise, JPEG."""

    blur_prob: float = 1.0  # Real-ESRGAN blurs always in the first round, with 0.8 in the second
    resize_prob: tuple[float, float, float] = (0.2, 0.7, 0.1)  # up, down, keep
    resize_range: tuple[float, float] = (0.15, 1.5)
    gaussian_noise_prob: float = 0.5  # else Poisson
    noise_range: tuple[float, float] = (1.0, 30.0)  # Gaussian sigma, in 0-255 units
    poisson_scale_range: tuple[float, float] = (0.05, 3.0)
    gray_noise_prob: float = 0.4
    jpeg_range: tuple[float, float] = (30.0, 95.0)


@dataclass(frozen=True)
class FinalOptions:
    """The last step: resize to HR/scale + a sinc kernel (with ``sinc_prob``), and JPEG, in random order."""

    sinc_prob: float = 0.8
    resize_sinc_first_prob: float = 0.5  # else JPEG first


def _second_stage() -> StageOptions:
    return StageOptions(blur_prob=0.8, blur_sigma=(0.2, 1.5), resize_prob=(0.3, 0.4, 0.3), resize_range=(0.3, 1.2),
                        noise_range=(1.0, 25.0), poisson_scale_range=(0.05, 2.5))


@dataclass(frozen=True)
class DegradationOptions:
    """The whole pipeline; ``kernel_size_range`` (odd sizes, inclusive) is shared by every kernel."""

    kernel_size_range: tuple[int, int] = (7, 21)
    second_order: bool = True  # False: first round, then the final step (no second round)
    first: StageOptions = field(default_factory=StageOptions)
    second: StageOptions = field(default_factory=_second_stage)
    final: FinalOptions = field(default_factory=FinalOptions)

    @property
    def kernel_sizes(self) -> list[int]:
        low, high = self.kernel_size_range
        return list(range(low, high + 1, 2))

    @property
    def max_kernel_size(self) -> int:
        return self.kernel_size_range[1]

    @property
    def final_jpeg_range(self) -> tuple[float, float]:
        """The JPEG quality range of the final step: the last round's."""
        return (self.second if self.second_order else self.first).jpeg_range


def _check_keys(section: dict[str, Any], allowed: list[str], where: str) -> None:
    unknown = sorted(set(section) - set(allowed))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}")


def _as_tuple(value: Any, length: int | None, where: str) -> tuple:
    if not isinstance(value, (list, tuple)) or (length is not None and len(value) != length):
        raise ValueError(f"{where}: expected a list of {length or 'some'} values, got {value!r}")
    return tuple(value)


def _check_probability(value: Any, where: str) -> float:
    if not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f"{where}: expected a probability in [0, 1], got {value!r}")
    return float(value)


# Ranges with bounds beyond "0 <= low <= high" (JPEG quality is 1..100).
RANGE_LIMITS: dict[str, tuple[float, float]] = {"jpeg_range": (1.0, 100.0)}


def _check_range(value: Any, where: str, minimum: float = 0.0, maximum: float = math.inf) -> tuple[float, float]:
    low, high = _as_tuple(value, 2, where)
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)) or \
            not minimum <= low <= high <= maximum:
        bound = f"{minimum:g} <= low <= high" + (f" <= {maximum:g}" if maximum < math.inf else "")
        raise ValueError(f"{where}: expected [low, high] with {bound}, got {value!r}")
    return float(low), float(high)


def _parse_dataclass(cls: type, section: dict[str, Any] | None, where: str, defaults: Any,
                     shown: Mapping[str, str] | None = None) -> Any:
    section = dict(section or {})
    names = [f.name for f in dataclasses.fields(cls)]
    _check_keys(section, names, where)
    values = {}
    for name, value in section.items():
        key = shown.get(name, f"{where}.{name}") if shown else f"{where}.{name}"
        default = getattr(defaults, name)
        if name == "kernel_list":
            value = _as_tuple(value, None, key)
            bad = [v for v in value if v not in KERNEL_TYPES]
            if bad or not value:
                raise ValueError(f"{key}: unknown kernel type(s) {bad}; allowed: {', '.join(KERNEL_TYPES)}")
        elif name.endswith("_prob") and isinstance(default, tuple):
            value = tuple(_check_probability(v, key) for v in _as_tuple(value, None, key))
        elif name.endswith("_prob"):
            value = _check_probability(value, key)
        else:
            value = _check_range(value, key, *RANGE_LIMITS.get(name, (0.0, math.inf)))
        values[name] = value
    return dataclasses.replace(defaults, **values)


def _check_stage(stage: StageOptions, where: str, shown: Mapping[str, str] | None = None) -> None:
    def name(field_name: str) -> str:
        return shown.get(field_name, field_name) if shown else f"{where}.{field_name}"

    if len(stage.kernel_prob) != len(stage.kernel_list) or sum(stage.kernel_prob) <= 0:
        raise ValueError(f"{name('kernel_prob')}: needs one positive weight per {name('kernel_list')} entry "
                         f"({len(stage.kernel_list)}), got {list(stage.kernel_prob)}")
    if len(stage.resize_prob) != 3 or sum(stage.resize_prob) <= 0:
        raise ValueError(f"{name('resize_prob')}: expected 3 weights (up, down, keep), got {list(stage.resize_prob)}")
    low, high = stage.resize_range
    up, down, _ = stage.resize_prob
    if low <= 0 or (up > 0 and high < 1) or (down > 0 and low > 1):
        raise ValueError(f"{name('resize_range')}: expected low > 0, low <= 1 when resize_prob can scale down and "
                         f"high >= 1 when it can scale up (resize_prob {list(stage.resize_prob)}), got {[low, high]}")


def parse_degradation_options(section: dict[str, Any] | None, where: str = "degradation",
                              shown: Mapping[str, Mapping[str, str]] | None = None) -> DegradationOptions:
    """The validated options of a ``degradation:`` section (``None`` or ``{}`` = the x4plus recipe).

    ``shown``: ``{round: {field: name}}``, the names errors give instead of ``where.round.field``
    (a section translated from another layout reports the keys its file holds).
    """
    section = dict(section or {})
    shown = shown or {}
    defaults = DegradationOptions()
    _check_keys(section, [f.name for f in dataclasses.fields(DegradationOptions)], where)
    sizes = defaults.kernel_size_range
    if "kernel_size_range" in section:
        sizes = _as_tuple(section["kernel_size_range"], 2, f"{where}.kernel_size_range")
        if not all(isinstance(s, int) and s % 2 == 1 and s >= 3 for s in sizes) or sizes[0] > sizes[1]:
            raise ValueError(f"{where}.kernel_size_range: expected two odd sizes [low, high] >= 3, got {list(sizes)}")
    second_order = section.get("second_order", True)
    if not isinstance(second_order, bool):
        raise ValueError(f"{where}.second_order: expected true or false, got {second_order!r}")
    if not second_order and section.get("second"):
        raise ValueError(f"{where}.second: set, but second_order is false (a single-stage pipeline has no second "
                         "round); remove one of them")
    options = DegradationOptions(
        kernel_size_range=tuple(sizes), second_order=second_order,
        **{part: _parse_dataclass(type(getattr(defaults, part)), section.get(part), f"{where}.{part}",
                                  getattr(defaults, part), shown.get(part)) for part in ROUNDS})
    _check_stage(options.first, f"{where}.first", shown.get("first"))
    _check_stage(options.second, f"{where}.second", shown.get("second"))
    return options


def degradation_options_of(opt: dict[str, Any]) -> DegradationOptions:
    """The pipeline options of a whole option file (``datasets.train.degradation``; defaults if absent)."""
    train = (opt.get("datasets") or {}).get("train") or {}
    return parse_degradation_options(train.get("degradation"), "datasets.train.degradation")
