"""The web page's settings and defaults, importable without torch or Gradio (``--help`` stays instant)."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

from realesrgan_ext.limits import Limits

LOCALHOST = "127.0.0.1"
DEFAULT_PORT = 7860
DEFAULT_MAX_UPLOAD_MB = 100  # checkpoints are uploads too: RealESRGAN_x4plus.pth is 64 MiB
DEFAULT_CONCURRENCY = 2  # requests upscaled at once (each gets cores // concurrency torch threads on a CPU)
DEFAULT_QUEUE_SIZE = 32  # requests waiting beyond those; one more is refused with "queue is full"
MEMORY_BUDGET_SHARE = 0.5  # default memory budget: this share of the machine's physical memory
DEFAULT_KEEP_RUNS_HOURS = 24.0  # result folders older than this are removed
DEFAULT_KEEP_RUNS_MB = 2048.0  # and the oldest ones past this total
UPSCALE_QUEUE = "upscale"  # Gradio's concurrency id of every event that upscales: they share the limit


@dataclass
class WebSettings:
    """Where results go, where checkpoints are listed from, the device, the upload limit and ``Limits``;
    how many requests run at once and wait, the memory they may share, and how long results are kept.

    ``memory_budget_mb``: estimated peak memory of all running requests together (``memory_budget``);
    ``None``: ``MEMORY_BUDGET_SHARE`` of the machine's physical memory.
    """

    output: Path
    experiments: Path
    device: str = "auto"
    max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB
    limits: Limits = field(default_factory=Limits.from_env)  # pixels, images per request, model size, ...
    concurrency: int = DEFAULT_CONCURRENCY
    queue_size: int = DEFAULT_QUEUE_SIZE
    memory_budget_mb: float | None = None
    keep_runs_hours: float = DEFAULT_KEEP_RUNS_HOURS
    keep_runs_mb: float = DEFAULT_KEEP_RUNS_MB

    def __post_init__(self) -> None:
        positive = {"max_upload_mb": self.max_upload_mb, "concurrency": self.concurrency,
                    "queue_size": self.queue_size, "keep_runs_hours": self.keep_runs_hours,
                    "keep_runs_mb": self.keep_runs_mb}
        if self.memory_budget_mb is not None:  # None: a share of the machine's memory
            positive["memory_budget_mb"] = self.memory_budget_mb
        for name, value in positive.items():
            if not value > 0:
                raise ValueError(f"{name} must be > 0, got {value}")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 2**20)

    @property
    def memory_budget_bytes(self) -> int:
        if self.memory_budget_mb is not None:
            return int(self.memory_budget_mb * 2**20)
        return int(MEMORY_BUDGET_SHARE * physical_memory())


def physical_memory() -> int:
    """The machine's physical memory in bytes."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (the only hosts served without ``--host``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
