"""The web page's settings and defaults, importable without torch or Gradio (``--help`` stays instant)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

LOCALHOST = "127.0.0.1"
DEFAULT_PORT = 7860
DEFAULT_MAX_UPLOAD_MB = 100  # checkpoints are uploads too: RealESRGAN_x4plus.pth is 64 MiB


@dataclass
class WebSettings:
    """Where results go, where checkpoints are listed from, the device, and the upload limit."""

    output: Path
    experiments: Path
    device: str = "auto"
    max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 2**20)


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (the only hosts served without ``--host``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
