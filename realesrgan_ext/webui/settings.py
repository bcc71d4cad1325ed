"""The web page's settings and defaults, importable without torch or Gradio (``--help`` stays instant)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from realesrgan_ext.limits import Limits

LOCALHOST = "127.0.0.1"
DEFAULT_PORT = 7860
DEFAULT_MAX_UPLOAD_MB = 100  # checkpoints are uploads too: RealESRGAN_x4plus.pth is 64 MiB


@dataclass
class WebSettings:
    """Where results go, where checkpoints are listed from, the device, the upload limit and ``Limits``."""

    output: Path
    experiments: Path
    device: str = "auto"
    max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB
    limits: Limits = field(default_factory=Limits.from_env)  # pixels, images per request, model size, ...

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
