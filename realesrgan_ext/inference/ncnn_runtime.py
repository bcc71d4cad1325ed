"""One forward pass through a loaded ncnn graph: the call both ncnn engines (RRDB, compact) make."""

from __future__ import annotations

from typing import Any

import numpy as np


def extract(ncnn: Any, net: Any, chw: np.ndarray) -> np.ndarray:
    """``net``'s ``output`` blob for a CHW float image fed to its ``data`` blob (``ncnn`` is the module)."""
    chw = np.ascontiguousarray(chw, dtype=np.float32)  # ncnn.Mat wraps it: keep a reference
    extractor = net.create_extractor()
    extractor.input("data", ncnn.Mat(chw))
    ret, out = extractor.extract("output")
    if ret != 0:
        raise RuntimeError(f"ncnn extract failed with code {ret}")
    return np.array(out)
