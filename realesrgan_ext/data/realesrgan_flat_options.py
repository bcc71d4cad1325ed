"""Real-ESRGAN's flat option keys, translated onto this project's nested ``degradation:`` section.

Real-ESRGAN's option files (``train_realesrnet_x4plus.yml`` ...) spread the pipeline over flat
keys: the blur and sinc kernels in the training dataset's section (its ``RealESRGANDataset``
reads them), the resize / noise / JPEG settings at the top level (its models read them). The
names are this project's field names, with ``2`` appended for the second round; the tables
below are derived from the option dataclasses, so a new field gets its flat name without an edit.

Fixed in Real-ESRGAN's code and therefore not keys there: the first round always blurs, kernel
sizes are 7..21 (its ``blur_kernel_size`` / ``blur_kernel_size2`` are read but never used), and
the final step's order is drawn with probability 0.5. Keys its files set without effect
(``INERT_DATASET_KEYS``) are accepted at the value that says what happens anyway. These are the defaults here, so a
translated file means exactly what it means to Real-ESRGAN.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from realesrgan_ext.data.degradation_options import (
    BlurOptions,
    DegradationOptions,
    StageOptions,
    parse_degradation_options,
)

LAYOUT_DOC = "docs/coming-from-basicsr.md"  # the page every layout error points to
SECOND_ROUND_SUFFIX = "2"
REAL_ESRGAN_MAX_KERNEL_SIZE = DegradationOptions().max_kernel_size  # its kernels are 7..21, padded to 21
# Dataset keys Real-ESRGAN's files set that its code never acts on: key -> (the one value that
# says what the code does anyway, what it does)
INERT_DATASET_KEYS: dict[str, tuple[Any, str]] = {
    "blur_kernel_size": (REAL_ESRGAN_MAX_KERNEL_SIZE, "Real-ESRGAN always uses kernels of 7 to 21 px "
                         "(other sizes: datasets.train.degradation.kernel_size_range)"),
    "blur_kernel_size2": (REAL_ESRGAN_MAX_KERNEL_SIZE, "Real-ESRGAN always uses kernels of 7 to 21 px "
                          "(other sizes: datasets.train.degradation.kernel_size_range)"),
    "use_shuffle": (True, "BasicSR 1.4.2 always shuffles the training set and never reads this key"),
}


def _field_names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def _round_keys(names: list[str]) -> dict[str, tuple[str, str]]:
    """``name`` -> (first, name) and ``name2`` -> (second, name)."""
    return {**{name: ("first", name) for name in names},
            **{name + SECOND_ROUND_SUFFIX: ("second", name) for name in names}}


# flat key -> (round, field): what Real-ESRGAN's dataset reads (the kernels) ...
DATASET_KEYS: dict[str, tuple[str, str]] = {**_round_keys(_field_names(BlurOptions)),
                                            "final_sinc_prob": ("final", "sinc_prob")}
# ... and what its models read at the top level (the rest of each round)
MODEL_KEYS: dict[str, tuple[str, str]] = {
    **_round_keys([n for n in _field_names(StageOptions) if n not in _field_names(BlurOptions) and n != "blur_prob"]),
    "second_blur_prob": ("second", "blur_prob")}


def layout_error(message: str) -> ValueError:
    """A ``ValueError`` about Real-ESRGAN's layout, pointing to the page that maps it."""
    return ValueError(f"{message} (Real-ESRGAN's keys and this project's: see {LAYOUT_DOC})")


def flat_keys_in(section: Mapping[str, Any], table: Mapping[str, tuple[str, str]]) -> list[str]:
    """The keys of ``table`` that ``section`` sets."""
    return [key for key in section if key in table]


def nested_section(section: Mapping[str, Any], table: Mapping[str, tuple[str, str]]) -> dict[str, dict[str, Any]]:
    """The ``degradation:`` section holding the values of ``section``'s flat keys of ``table``."""
    nested: dict[str, dict[str, Any]] = {}
    for key in flat_keys_in(section, table):
        part, field = table[key]
        nested.setdefault(part, {})[field] = section[key]
    return nested


def check_inert_keys(section: Mapping[str, Any], keys: Mapping[str, tuple[Any, str]], where: str) -> None:
    """Keys whose value changes nothing in Real-ESRGAN: accepted at the value that says what happens anyway,
    any other value is an error saying why (it would not do what it says there either)."""
    for key, (value, why) in keys.items():
        if key in section and section[key] != value:
            raise layout_error(f"{where}.{key}: {section[key]!r} has no effect, {why}; set {value!r} or remove it")


def flat_degradation_options(section: Mapping[str, Any], table: Mapping[str, tuple[str, str]],
                             where: str) -> DegradationOptions:
    """The pipeline options that ``section``'s flat keys of ``table`` mean (unset ones: the defaults).

    Errors name the flat keys as the file spells them (``where.noise_range2``).
    """
    prefix = f"{where}." if where else ""
    shown: dict[str, dict[str, str]] = {}
    for key, (part, field) in table.items():
        shown.setdefault(part, {})[field] = prefix + key
    try:
        return parse_degradation_options(nested_section(section, table), where or "(top level)", shown)
    except ValueError as error:
        raise layout_error(str(error)) from None
