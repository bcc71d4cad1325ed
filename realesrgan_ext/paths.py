"""Where realesrgan_ext keeps files it builds at run time (converted weights)."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "REALESRGAN_EXT_CACHE"


def cache_dir(*parts: str) -> Path:
    """The cache folder (``$REALESRGAN_EXT_CACHE`` or ``~/.cache/realesrgan_ext``), created on demand."""
    root = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "realesrgan_ext")
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
