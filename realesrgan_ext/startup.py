"""Faster command start-up: heavy imports run with the cyclic garbage collector paused, then frozen.

Importing torch creates a few hundred thousand Python objects. The collector walks all of them on
every full collection during the import, and again while the interpreter shuts down: measured on
2 cores, ``python -c "import torch"`` takes 1.59 s from start to exit, 1.08 s with the imports
under ``frozen_startup`` (exit alone 0.46 s -> 0.15 s). ``gc.freeze`` is Python's documented
remedy: the objects alive after the imports move to a permanent generation that collections skip;
cycles made later are still collected. Whatever is alive at the freeze stays for the process's
life, so use it once, around a script's top-level imports: never in a library import or a
function a long-running process calls again.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def frozen_startup() -> Iterator[None]:
    """Pause the cyclic collector for the block (the imports), then re-enable it and ``gc.freeze()``."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
        gc.freeze()
