"""Bounds on what one input may cost, checked before the work it would cause.

A file from anywhere can declare far more than it holds: a 100 KB PNG whose header says
30000 x 30000, a 13 KB checkpoint of stride-0 tensors declaring 70 billion parameters, a zip
entry that inflates 1000:1. Every reader checks the declared size against ``Limits`` first and
raises ``LimitError`` (naming the input, the size, the limit and how to raise it) before it
decodes, allocates or builds anything.

The defaults suit real photos and published models; each limit is raised by an environment
variable ``REALESRGAN_EXT_<FIELD>`` (read by ``Limits.from_env``) or, in the scripts, by a flag
``--<field>`` (``add_limit_arguments`` / ``limits_from_args``). Names are derived from the fields.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace

ENV_PREFIX = "REALESRGAN_EXT_"
_PAGE = {"page": True}  # field metadata: a limit of a web request (no command-line flag)


class LimitError(ValueError):
    """An input over one of the ``Limits``; the message names it, the limit and the flag that raises it."""


@dataclass(frozen=True)
class Limits:
    """Upper bounds on one input (all inclusive).

    Attributes:
        max_image_pixels: width x height of one input image, read from its header (134 MP; a
            100 MP camera's photo fits; OpenCV's own decoder stops at 2^30).
        max_image_frames: frames (GIF / TIFF / WebP pages) an input image may have; only the first is used.
        max_jpeg_scans: scans of a (progressive) JPEG; encoders write at most about 20, and each costs
            a pass over the whole image (2000 repeated scans: minutes for a large photo).
        max_output_pixels: width x height of one result, and of the network's output before an
            ``outscale`` resize (537 MP: a 24 MP photo at x4 is 384 MP, 1.2 GB as 8-bit RGB).
        max_outscale: the largest ``outscale`` factor.
        max_model_params: elements of all weight tensors of a checkpoint, and of the network built
            from it (200 M; RealESRGAN_x4plus has 16.7 M).
        max_model_bytes: bytes a checkpoint file holds once inflated (its zip directory), or its size.
        max_zip_ratio: uncompressed / compressed size of a compressed entry in a checkpoint or an
            uploaded zip (weights and images barely compress; a bomb inflates 1000:1).
        max_structure_depth: nesting of dicts / lists / tuples in a checkpoint.
        max_structure_items: entries of all dicts / lists / tuples in a checkpoint together (a key and
            its value are two; x4plus has 1400); also bounds its pickle (64 bytes per entry).
        max_images: images in one web request (uploads and zip members together).
        max_request_pixels: decoded pixels of all images in one web request together.
        max_video_frames: frames of the video of one web request (18000: 10 minutes at 30 fps), counted
            from the container before any work and while decoding (a container may understate it).
    """

    max_image_pixels: int = 2 ** 27
    max_image_frames: int = 256
    max_jpeg_scans: int = 100
    max_output_pixels: int = 2 ** 29
    max_outscale: float = 16.0
    max_model_params: int = 200_000_000
    max_model_bytes: int = 2 ** 31
    max_zip_ratio: float = 100.0
    max_structure_depth: int = 16
    max_structure_items: int = 10_000
    max_images: int = field(default=200, metadata=_PAGE)
    max_request_pixels: int = field(default=2 ** 28, metadata=_PAGE)
    max_video_frames: int = field(default=18_000, metadata=_PAGE)

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or value <= 0:
                raise ValueError(f"limit {f.name} must be a finite number > 0, got {value!r}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Limits:
        """Defaults, overridden by ``REALESRGAN_EXT_<FIELD>`` variables (e.g. ``REALESRGAN_EXT_MAX_IMAGE_PIXELS``)."""
        environ = os.environ if environ is None else environ
        changes = {}
        for f in fields(cls):
            text = environ.get(env_name(f.name))
            if text:
                changes[f.name] = _parse(f.name, text, env_name(f.name))
        return replace(cls(), **changes)

    def with_changes(self, **changes: float) -> Limits:
        """A copy with some limits changed (``None`` values are ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


def env_name(field_name: str) -> str:
    """The environment variable of a limit: ``max_image_pixels`` -> ``REALESRGAN_EXT_MAX_IMAGE_PIXELS``."""
    return ENV_PREFIX + field_name.upper()


def flag_name(field_name: str) -> str:
    """The command-line flag of a limit: ``max_image_pixels`` -> ``--max-image-pixels``."""
    return "--" + field_name.replace("_", "-")


def how_to_raise(field_name: str) -> str:
    """``--max-image-pixels or REALESRGAN_EXT_MAX_IMAGE_PIXELS``: said in every ``LimitError``."""
    return f"raise it with {flag_name(field_name)} or {env_name(field_name)}"


def over_limit(what: str, value: float, field_name: str, limits: Limits, unit: str = "") -> LimitError:
    """A ``LimitError``: ``<what> is <value>, more than the <limit> allowed (raise it with ...)``."""
    limit = getattr(limits, field_name)
    return LimitError(f"{what} is {_amount(value, unit)}, more than the {_amount(limit, unit)} allowed "
                      f"({field_name}; {how_to_raise(field_name)})")


def add_limit_arguments(parser: argparse.ArgumentParser, page: bool = False) -> None:
    """One ``--max-...`` flag per limit (the web request's too with ``page``), defaulting to the environment's."""
    group = parser.add_argument_group("limits (refuse inputs that would cost more; defaults suit real photos)")
    current = Limits.from_env()
    for f in fields(Limits):
        if page or not f.metadata.get("page"):
            group.add_argument(flag_name(f.name), dest=f.name, type=float, default=argparse.SUPPRESS, metavar="N",
                               help=f"default {_plain(getattr(current, f.name))} (env {env_name(f.name)})")


def limits_from_args(args: argparse.Namespace) -> Limits:
    """``Limits.from_env()`` with the flags of ``add_limit_arguments`` that were given."""
    changes = {f.name: _coerce(f.name, getattr(args, f.name), flag_name(f.name)) for f in fields(Limits)
               if getattr(args, f.name, None) is not None}
    return Limits.from_env().with_changes(**changes)


def _parse(name: str, text: str, origin: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{origin} must be a number, got {text!r}") from None
    return _coerce(name, value, origin)


def _coerce(name: str, value: float, origin: str) -> float:
    """``value`` as the type of the limit's default (a count must be a whole number)."""
    if isinstance(getattr(Limits(), name), float):
        return float(value)
    if not float(value).is_integer():
        raise ValueError(f"{origin} must be a whole number, got {value!r}")
    return int(value)


def _plain(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _amount(value: float, unit: str) -> str:
    if unit == "px":
        return f"{value / 1e6:.1f} MP" if value >= 1e5 else f"{value:g} px"
    if unit == "B":
        return f"{value / 2**20:.1f} MiB"
    return f"{value:g}" if isinstance(value, float) else f"{value:,}"
