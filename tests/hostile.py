"""Measuring how a refusal costs: wall time and peak memory growth of one call (for the hostile-input tests)."""

from __future__ import annotations

import re
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_SECONDS = 2.0  # every hostile input is refused within this
MAX_GROWTH = 200 * 2**20  # and raises the process's peak memory by less than this


@dataclass
class Cost:
    """What a call did (its result or the exception it raised), its seconds and its peak memory growth."""

    result: Any
    error: BaseException | None
    seconds: float
    growth: int  # bytes the resident set's peak rose above its size before the call

    def refused(self, kind: type[BaseException] | tuple, *fragments: str) -> str:
        """Assert the call raised ``kind`` with every fragment in its message, quickly and in bounded memory."""
        assert self.error is not None, f"accepted: {self.result!r}"
        assert isinstance(self.error, kind), f"{type(self.error).__name__}: {self.error}"
        message = str(self.error)
        for fragment in fragments:
            assert fragment in message, f"{fragment!r} not in {message!r}"
        assert "Traceback" not in message and len(message) < 1000, message
        self.bounded()
        return message

    def bounded(self) -> None:
        assert self.seconds < MAX_SECONDS, f"{self.seconds:.2f} s"
        assert self.growth < MAX_GROWTH, f"peak memory rose {self.growth / 2**20:.0f} MiB"


def measure(call: Callable[[], Any]) -> Cost:
    """Run ``call``, catching any exception; peak RSS growth from /proc (reset first where Linux allows)."""
    before = _status("VmRSS")
    reset = _reset_peak()
    peak_before = _status("VmHWM") if reset else _max_rss()
    start = time.perf_counter()
    result, error = None, None
    try:
        result = call()
    except Exception as err:  # noqa: BLE001  (the test inspects it)
        error = err
    seconds = time.perf_counter() - start
    peak = _status("VmHWM") if reset else _max_rss()
    growth = peak - before if reset else max(0, peak - max(peak_before, before))
    return Cost(result, error, seconds, growth)


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # Linux >= 4.0: VmHWM := VmRSS
        return True
    except OSError:
        return False


def _status(key: str) -> int:
    match = re.search(rf"^{key}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M)
    return int(match.group(1)) * 1024 if match else _max_rss()


def _max_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
