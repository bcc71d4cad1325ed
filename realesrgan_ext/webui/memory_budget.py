"""The memory a web request may cost: estimated before any work, and held against a budget shared by
the requests running at once.

``request_bytes`` estimates a request's peak memory from what is known before decoding: each image's
size and pixel layout (its header), the ``outscale``, and the upscaler (the model's scale and widest
layer, the tile side). Images of a request run one after another, so the request's peak is that of its
largest image. ``MemoryBudget`` is a semaphore counted in bytes: a request takes its estimate before
it starts and gives it back when it ends; one larger than the whole budget is refused at once, others
wait until enough running requests have finished.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from PIL import Image
from torch import nn

from realesrgan_ext.data.image_header import ImageHeader
from realesrgan_ext.inference.upscaler import Upscaler
from realesrgan_ext.webui.runs import PREVIEW_SIDE

FLOAT_BYTES = 4  # the network's input, output and the tile blending run in float32
# Feature maps alive at once while a tile runs, in units of (tile pixels x the widest layer's channels):
# at the input resolution (an RRDB's dense blocks concatenate up to 5 maps, kept for the residuals)
# and at the output resolution (the upsampler's convolution, its activation and the last layers').
LOW_RES_MAPS = 12
HIGH_RES_MAPS = 3
WAIT_SECONDS = 600  # a request that fits the budget waits at most this long for memory to free


class OverBudgetError(RuntimeError):
    """A request that needs more memory than the page has, or that waited too long for it."""


def image_layout(header: ImageHeader) -> tuple[int, int]:
    """(channels, bytes per sample) an image of this header decodes to, rounded up where unsure
    (palette images may carry alpha; PNG and TIFF may hold 16-bit samples under an 8-bit mode name)."""
    if header.mode in ("P", "PA"):
        channels = 4
    else:
        try:
            channels = Image.getmodebands(header.mode)
        except ValueError:
            channels = 4
    maybe_16_bit = header.format in ("PNG", "TIFF") and header.mode not in ("1", "L", "P")
    wide = header.mode.startswith(("I", "F")) or maybe_16_bit
    return channels, 2 if wide else 1


def widest_layer(net: nn.Module) -> int:
    """The most output channels of any convolution or linear layer (the width of the feature maps)."""
    widths = [m.out_channels for m in net.modules() if isinstance(m, nn.Conv2d)]
    widths += [m.out_features for m in net.modules() if isinstance(m, nn.Linear)]
    return max(widths, default=64)


def image_bytes(header: ImageHeader, outscale: float | None, upscaler: Upscaler) -> int:
    """Estimated peak bytes of upscaling one image of ``header``'s size with ``upscaler``."""
    channels, sample = image_layout(header)
    height, width, scale = header.height, header.width, upscaler.scale
    out_h, out_w = upscaler.output_size(height, width, outscale)
    decoded = height * width * channels * sample * 2  # the decoded image and its padded / RGB copy
    network_out = height * width * scale * scale * channels * sample
    result = out_h * out_w * channels * sample * 2  # the resized result and its encoded file
    tile_h, tile_w = (min(side, upscaler.tile) + 2 * upscaler.tile_pad for side in (height, width))
    strip = 2 * tile_h * scale * width * scale * channels * FLOAT_BYTES  # a row of tiles blended, and its carry
    features = tile_h * tile_w * widest_layer(upscaler.model.module) * FLOAT_BYTES
    activations = features * (LOW_RES_MAPS + HIGH_RES_MAPS * scale * scale)
    previews = 2 * PREVIEW_SIDE * PREVIEW_SIDE * 4
    return decoded + network_out + result + strip + activations + previews


def request_bytes(headers: list[ImageHeader], outscale: float | None, upscaler: Upscaler) -> int:
    """Estimated peak bytes of a request: its largest image's (images run one at a time)."""
    return max((image_bytes(h, outscale, upscaler) for h in headers), default=0)


class MemoryBudget:
    """A semaphore of bytes: requests running at once hold at most ``total`` estimated bytes together."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.held = 0
        self._free = threading.Condition()

    @contextmanager
    def reserve(self, nbytes: int, wait: float = WAIT_SECONDS, on_wait=None) -> Iterator[None]:
        """Hold ``nbytes`` of the budget for the ``with`` block; ``OverBudgetError`` when it can never fit
        or has not fitted within ``wait`` seconds. ``on_wait()`` is called once if it has to wait."""
        if nbytes > self.total:
            raise OverBudgetError(f"this request needs an estimated {_mib(nbytes)} of memory, more than the "
                                  f"{_mib(self.total)} this page allows for all requests together; upload "
                                  f"smaller images, lower the outscale, or set a smaller tile")
        deadline = time.monotonic() + wait
        with self._free:
            if self.held + nbytes > self.total and on_wait is not None:
                on_wait()
            while self.held + nbytes > self.total:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise OverBudgetError(f"the server is busy: this request (an estimated {_mib(nbytes)}) "
                                          f"waited {wait:.0f} s for memory; try again later")
                self._free.wait(left)
            self.held += nbytes
        try:
            yield
        finally:
            with self._free:
                self.held -= nbytes
                self._free.notify_all()


def _mib(nbytes: float) -> str:
    return f"{nbytes / 2**20:,.0f} MiB"
