"""Resuming mid-epoch exactly: the data position and the random state a training state records.

BasicSR's loop restarts the saved epoch from its first batch, so a resumed run trains again on
the batches it saw since the epoch began, with a data-augmentation random stream restarted from
the seed. Here the training state carries the random generators' states (``rng_state``); on
resume the training sampler skips the batches of the saved epoch that were already trained on
and the generators are restored right before the next batch is drawn. With
``num_worker_per_gpu: 0`` and one process, a resumed run then trains on exactly the batches,
crops and flips of an uninterrupted one.
"""

from __future__ import annotations

import itertools
import logging
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

_pending: dict[str, Any] | None = None


def rng_state() -> dict[str, Any]:
    """Python, NumPy, torch (and CUDA) generator states, in types ``torch.load(weights_only=True)`` reads."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {"python": random.getstate(), "numpy": [kind, torch.from_numpy(keys.copy()), pos, has_gauss, gauss],
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what ``rng_state`` captured."""
    python = state["python"]
    random.setstate((python[0], tuple(python[1]), python[2]))
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy(), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def expect_resume(state: dict[str, Any], batch_size: int, restore_rng: bool) -> None:
    """Remember where ``state`` left off, for the training sampler's next pass over its epoch."""
    global _pending
    _pending = {"epoch": state["epoch"], "iter": state["iter"], "batch_size": batch_size,
                "rng": state.get("rng") if restore_rng else None}


def continue_from_saved_position(epoch: int, samples_per_epoch: int, indices: Iterator[int]) -> Iterator[int]:
    """``indices`` of the training sampler, minus the batches already trained on when resuming.

    Called at the start of each pass; acts once, on the saved epoch. Batches per epoch are
    ``samples_per_epoch // batch_size`` (BasicSR drops the last partial batch), so iteration
    ``iter`` of epoch ``epoch`` is batch ``iter - epoch * batches_per_epoch`` of that epoch.
    """
    global _pending
    if _pending is None or _pending["epoch"] != epoch:
        return indices
    pending, _pending = _pending, None
    per_epoch = samples_per_epoch // pending["batch_size"]
    done = pending["iter"] - epoch * per_epoch
    if not 0 <= done <= per_epoch:
        logging.getLogger("basicsr").warning(
            f"resume: iteration {pending['iter']} is not in epoch {epoch} of {per_epoch} batches "
            "(batch size or dataset changed?); the epoch restarts from its first batch")
        return indices
    if pending["rng"] is not None:
        set_rng_state(pending["rng"])
    return itertools.islice(indices, done * pending["batch_size"], None)
