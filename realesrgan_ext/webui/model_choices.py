"""Which models the web page offers, and one loaded ``Upscaler`` kept between requests.

The dropdown lists the bundled official models (converted offline on first use, as with the
CLI's ``-m realesrgan-x4plus``) and every checkpoint under ``EXPERIMENTS/*/models/``, by its path
relative to ``EXPERIMENTS``' parent. A value sent back by the page is accepted only if it is in the
current list, so a request cannot name an arbitrary file. Uploaded checkpoints go through the same
``load_model`` (``weights_only`` pickles, safetensors) as the CLI.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from realesrgan_ext.inference.bundled_models import BUNDLED_MODELS, official_model_path
from realesrgan_ext.inference.engines import make_upscaler
from realesrgan_ext.inference.model_blending import load_blended_model
from realesrgan_ext.inference.model_loader import PTH_SUFFIXES, SAFETENSORS_SUFFIX, load_model
from realesrgan_ext.inference.upscaler import Upscaler
from realesrgan_ext.limits import Limits

CHECKPOINT_SUFFIXES = (*PTH_SUFFIXES, SAFETENSORS_SUFFIX)


@dataclass(frozen=True)
class ModelChoice:
    """One dropdown entry: what the page shows and what it sends back (an official name or a path)."""

    label: str
    value: str


def official_choices() -> list[ModelChoice]:
    """The bundled official models, by the names ``scripts/inference.py -m`` accepts."""
    return [ModelChoice(f"{m.name}: x{m.scale}, {m.purpose}", m.name) for m in BUNDLED_MODELS.values()]


def experiment_choices(experiments: Path) -> list[ModelChoice]:
    """Checkpoints under ``experiments/*/models/`` (sorted), named relative to ``experiments``' parent (the
    page never shows, nor sends, a server path)."""
    if not experiments.is_dir():
        return []
    found = [p for p in sorted(experiments.glob("*/models/*"))
             if p.is_file() and p.suffix.lower() in CHECKPOINT_SUFFIXES and not p.name.startswith(".")]
    names = [p.relative_to(experiments.parent).as_posix() for p in found]
    return [ModelChoice(name, name) for name in names]


def list_models(experiments: Path) -> list[ModelChoice]:
    """Everything the dropdown offers: official models first, then the experiments' checkpoints."""
    return official_choices() + experiment_choices(experiments)


def resolve_choice(value: str, experiments: Path) -> Path:
    """The checkpoint file for a dropdown value; ``ValueError`` for a value that is not offered."""
    if value in BUNDLED_MODELS:
        return official_model_path(value)
    if value in {c.value for c in experiment_choices(experiments)}:
        return experiments.parent / value
    raise ValueError(f"model {value!r} is not one of the offered models (official names or checkpoints "
                     f"under {experiments.name}/*/models/); press 'Refresh list' or upload the checkpoint")


class UpscalerCache:
    """Built ``Upscaler``s kept between requests (loading the 17M-parameter x4plus model and choosing its
    engine take seconds). Thread-safe.

    An ``Upscaler`` is not thread-safe, so requests running at once each ``use`` their own: an idle one
    built from the same file and settings, or a new one; at most ``keep`` idle ones are kept (the most
    recently used). ``get`` hands out one shared instance for callers that run one at a time.
    """

    def __init__(self, device: str = "auto", limits: Limits | None = None, keep: int = 1) -> None:
        self.device = device
        self.limits = limits or Limits.from_env()
        self.keep = keep
        self._key: tuple | None = None
        self._upscaler: Upscaler | None = None
        self._idle: list[tuple[tuple, Upscaler]] = []  # least recently used first
        self._lock = threading.Lock()
        self._build_lock = threading.Lock()  # one model loaded at a time (an engine's export is written once)

    def get(self, checkpoint: Path, tile: int, precision: str, backend: str = "auto",
            blend: tuple[Path, float] | None = None) -> Upscaler:
        """An ``Upscaler`` for ``checkpoint`` on the engine ``backend`` resolves to, built as the CLI builds
        it (``engines.make_upscaler``); raises ``ModelLoadError`` / ``ValueError`` with the CLI's messages.
        ``blend=(other, alpha)``: the checkpoint blended with ``other``, as ``--blend other:alpha``."""
        key = _settings_key(checkpoint, tile, precision, backend, blend)
        with self._lock:
            if key != self._key or self._upscaler is None:
                self._upscaler = None  # free the old copy before building the new one
                self._upscaler = self._build(checkpoint, tile, precision, backend, blend)
                self._key = key
            return self._upscaler

    @contextmanager
    def use(self, checkpoint: Path, tile: int, precision: str, backend: str = "auto",
            blend: tuple[Path, float] | None = None) -> Iterator[Upscaler]:
        """As ``get``, but the ``Upscaler`` is this caller's alone until the ``with`` block ends."""
        key = _settings_key(checkpoint, tile, precision, backend, blend)
        with self._lock:
            found = next((i for i, (k, _) in enumerate(self._idle) if k == key), None)
            upscaler = self._idle.pop(found)[1] if found is not None else None
        if upscaler is None:
            upscaler = self._build(checkpoint, tile, precision, backend, blend)  # other requests carry on
        try:
            yield upscaler
        finally:
            with self._lock:
                self._idle.append((key, upscaler))
                del self._idle[:-self.keep]

    def _build(self, checkpoint: Path, tile: int, precision: str, backend: str,
               blend: tuple[Path, float] | None) -> Upscaler:
        with self._build_lock:
            model = load_model(checkpoint, limits=self.limits) if blend is None else \
                load_blended_model(checkpoint, *blend)
            return make_upscaler(model, backend, precision, self.device, tile=tile, limits=self.limits)


def _settings_key(checkpoint: Path, tile: int, precision: str, backend: str,
                  blend: tuple[Path, float] | None) -> tuple:
    return _file_key(checkpoint), tile, precision, backend, blend and (_file_key(blend[0]), blend[1])


def _file_key(path: Path) -> tuple[str, int, int]:
    """A file's identity for the cache: path, modification time and size (a rewritten file is reloaded)."""
    stat = path.stat()
    return str(path.resolve()), stat.st_mtime_ns, stat.st_size
