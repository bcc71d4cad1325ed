"""Crash-safe checkpoint files: written to a temporary name, then renamed into place."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` that never leaves a half-written file under ``path``.

    The data goes to a hidden temporary file in the same folder, is flushed to disk, and
    replaces ``path`` in one ``os.replace``; an interruption leaves at most the temporary.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
