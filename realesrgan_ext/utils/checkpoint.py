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


def checkpoint_iterations(state_dir: str | os.PathLike) -> list[int]:
    """Iterations with a ``<iter>.state`` training state in ``state_dir``, newest first."""
    state_dir = Path(state_dir)
    if not state_dir.is_dir():
        return []
    return sorted((int(p.stem) for p in state_dir.glob("*.state") if p.stem.isdigit()), reverse=True)


def checkpoint_problem(state_path: Path, network_paths: list[Path]) -> str | None:
    """Why the checkpoint (a training state and its networks) cannot be resumed from, or None.

    Every file is opened with ``torch.load``, so a truncated or corrupt file is caught here,
    not half-way through building the model.
    """
    for path, needed in [(state_path, ("iter", "optimizers", "schedulers")),
                         *[(p, ("params",)) for p in network_paths]]:
        if not path.is_file():
            return f"{path} is missing"
        try:
            content = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # any unreadable file means: fall back to an older checkpoint
            return f"{path} cannot be loaded ({type(error).__name__}: {str(error).splitlines()[0][:120]})"
        if not isinstance(content, dict):
            return f"{path} holds a {type(content).__name__}, not a dict of {', '.join(needed)}"
        missing = [key for key in needed if key not in content]
        if missing:
            return f"{path} lacks {missing}"
    return None


def newest_resumable_state(state_dir: str | os.PathLike, models_dir: str | os.PathLike,
                           network_labels: list[str]) -> tuple[Path | None, list[str]]:
    """The newest ``<iter>.state`` whose state and ``net_<label>_<iter>.pth`` files all load.

    Returns that path (None if there is none) and one message per newer checkpoint skipped.
    """
    skipped = []
    for it in checkpoint_iterations(state_dir):
        state_path = Path(state_dir) / f"{it}.state"
        problem = checkpoint_problem(state_path, [Path(models_dir) / f"net_{label}_{it}.pth"
                                                  for label in network_labels])
        if problem is None:
            return state_path, skipped
        skipped.append(f"checkpoint of iteration {it} skipped: {problem}")
    return None, skipped


def prune_checkpoints(state_dir: str | os.PathLike, models_dir: str | os.PathLike, network_labels: list[str],
                      keep: int) -> list[Path]:
    """Delete checkpoints older than the ``keep`` newest resumable (all files load) ones; returns
    what was deleted.

    Only iterations below the oldest kept resumable checkpoint are touched, so the one a
    resume would pick (the newest resumable) and anything newer always stay; ``*_latest.pth``
    is never deleted. Temporary files left by killed processes go too.
    """
    kept = []
    for it in checkpoint_iterations(state_dir):
        networks = [Path(models_dir) / f"net_{label}_{it}.pth" for label in network_labels]
        if checkpoint_problem(Path(state_dir) / f"{it}.state", networks) is None:
            kept.append(it)
        if len(kept) == keep:
            break
    deleted = _stale_temporaries(state_dir) + _stale_temporaries(models_dir)
    if len(kept) == keep:
        oldest = kept[-1]
        for path in [*Path(state_dir).glob("*.state"), *Path(models_dir).glob("net_*_*.pth")]:
            it = path.stem.rsplit("_", 1)[-1] if path.suffix == ".pth" else path.stem
            if it.isdigit() and int(it) < oldest:
                deleted.append(path)
    for path in deleted:
        path.unlink(missing_ok=True)
    return deleted


def _stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """``atomic_torch_save`` temporaries whose writing process no longer exists."""
    stale = []
    for path in Path(folder).glob(".*.tmp-*"):
        pid = path.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _process_alive(int(pid)):
            stale.append(path)
    return stale


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
