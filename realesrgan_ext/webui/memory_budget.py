"""The memory a web request may cost: estimated before any work, and held against a budget shared by
the requests running at once.

``request_bytes`` estimates a request's peak memory from what is known before decoding: each image's
size and pixel layout (its header), the ``outscale``, and the upscaler (the feature maps its network
makes per input pixel, at the input's resolution and above it, probed once on a small input; the
tile side). Images of a request run one after another, so the request's peak is that of its largest
image. ``video_request_bytes`` adds what a video holds beside the network: queued frames and the
encoder's look-ahead. ``MemoryBudget`` is a semaphore counted in bytes: a request takes its estimate before
it starts and gives it back when it ends; one larger than the whole budget is refused at once, others
wait until enough running requests have finished.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from PIL import Image
from torch import nn

from realesrgan_ext.data.image_header import ImageHeader
from realesrgan_ext.inference.model_loader import LoadedModel
from realesrgan_ext.inference.upscaler import Upscaler
from realesrgan_ext.video.pipeline import QUEUE_BATCHES
from realesrgan_ext.webui.runs import PREVIEW_SIDE

FLOAT_BYTES = 4  # the network's input, output and the tile blending run in float32
# Feature maps alive at once while a tile runs, in units of the network's widest map (in floats per input
# pixel): at the input resolution (an RRDB's dense blocks concatenate up to 5 maps, kept for the residuals;
# the fast engines' Winograd buffers) and above it (the upsampler's convolution, its activation and the last
# layers'). Measured, fp32, first call: x4plus 256x192 +497 MiB (PyTorch), +997 MiB (ncnn) against 898 MiB
# estimated; realesr-animevideov3 640x480 whole frame +163 (PyTorch) to +961 MiB (ncnn) against 1.5 GiB.
LOW_RES_MAPS = 12
HIGH_RES_MAPS = 3
PROBE_SIDE = 32  # input side of the one forward pass that measures a network's maps
WAIT_SECONDS = 600  # a request that fits the budget waits at most this long for memory to free
# Upscaled frames an encoder holds (look-ahead, B-frames, frame threads): libx264 CRF 18 held 119 to 135
# yuv420p frames' worth at 1280x720 and 2560x1920 on 2 cores.
ENCODER_FRAMES = 140


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


_MAPS: weakref.WeakKeyDictionary[nn.Module, tuple[float, float]] = weakref.WeakKeyDictionary()


def feature_maps(model: LoadedModel) -> tuple[float, float]:
    """(floats per input pixel of the network's widest map at the input's resolution, and of its widest
    map above it), from the layer outputs of one forward pass on a small input; cached per network.

    An RRDB x4 gives (64, 1024): 64 channels, and 64 channels at 16 pixels per input pixel; a compact
    (realesr-animevideov3) network (64, 48): its only map above the input's resolution is the 3-channel
    image. A network the probe cannot run gets the widest layer at both (the upper bound)."""
    if model.module not in _MAPS:
        try:
            _MAPS[model.module] = _probe_maps(model)
        except Exception:  # noqa: BLE001  (an unusual network: fall back to the bound below)
            widths = [m.out_channels for m in model.module.modules() if isinstance(m, nn.Conv2d)]
            widths += [m.out_features for m in model.module.modules() if isinstance(m, nn.Linear)]
            widest = max(widths, default=64)
            _MAPS[model.module] = (float(widest), float(widest * model.scale ** 2))
    return _MAPS[model.module]


def _probe_maps(model: LoadedModel) -> tuple[float, float]:
    side = max(PROBE_SIDE, model.min_size)
    side += -side % model.size_multiple
    pixels, low, high = side * side, [0.0], [0.0]
    prober = threading.get_ident()

    def record(module: nn.Module, inputs, output) -> None:
        if threading.get_ident() != prober or not isinstance(output, torch.Tensor):
            return  # another request's forward pass of a shared network
        spatial = output.shape[-2] * output.shape[-1] if output.dim() == 4 else 0
        (high if spatial > pixels else low).append(output.numel() / output.shape[0] / pixels)

    handles = [m.register_forward_hook(record) for m in model.module.modules() if not list(m.children())]
    try:
        with torch.inference_mode():
            model.module(torch.zeros(1, model.in_channels, side, side))
    finally:
        for handle in handles:
            handle.remove()
    return max(low), max(high)


def image_bytes(header: ImageHeader, outscale: float | None, upscaler: Upscaler, tile: int | None = None,
                layout: tuple[int, int] | None = None) -> int:
    """Estimated peak bytes of upscaling one image of ``header``'s size with ``upscaler`` (with ``tile``
    instead of its own tile side, and ``layout`` (channels, bytes per sample) instead of the header's,
    when given)."""
    channels, sample = layout or image_layout(header)
    height, width, scale = header.height, header.width, upscaler.scale
    out_h, out_w = upscaler.output_size(height, width, outscale)
    decoded = height * width * channels * sample * 2  # the decoded image and its padded / RGB copy
    network_out = height * width * scale * scale * channels * sample
    result = out_h * out_w * channels * sample * 2  # the resized result and its encoded file
    tile_h, tile_w = (min(side, tile or upscaler.tile) + 2 * upscaler.tile_pad for side in (height, width))
    strip = 2 * tile_h * scale * width * scale * channels * FLOAT_BYTES  # a row of tiles blended, and its carry
    low, high = feature_maps(upscaler.model)
    activations = tile_h * tile_w * FLOAT_BYTES * (LOW_RES_MAPS * low + HIGH_RES_MAPS * high)
    previews = 2 * PREVIEW_SIDE * PREVIEW_SIDE * 4
    return decoded + network_out + result + strip + activations + previews


def request_bytes(headers: list[ImageHeader], outscale: float | None, upscaler: Upscaler) -> int:
    """Estimated peak bytes of a request: its largest image's (images run one at a time)."""
    return max((image_bytes(h, outscale, upscaler) for h in headers), default=0)


def video_request_bytes(width: int, height: int, outscale: float | None, upscaler: Upscaler, batch: int,
                        tile: int | None = None, sample_bytes: int = 1, encoder_frames: int = ENCODER_FRAMES) -> int:
    """Estimated peak bytes of upscaling a video of ``width`` x ``height`` frames, ``batch`` frames per
    network call (``tile``: as in ``image_bytes``; ``sample_bytes`` 2 for a stream of more than 8 bits):
    the network's (each frame of a batch as one image), the decoded and upscaled frames queued beside it
    (``video.pipeline``), and ``encoder_frames`` upscaled frames in the encoder (yuv420p)."""
    frame = ImageHeader("video", "RGB", width, height)
    out_h, out_w = upscaler.output_size(height, width, outscale)
    network = batch * image_bytes(frame, outscale, upscaler, tile, layout=(3, sample_bytes))
    queued = (QUEUE_BATCHES + 1) * batch * (height * width + out_h * out_w) * 3 * sample_bytes
    return network + queued + encoder_frames * out_h * out_w * 3 * sample_bytes // 2


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
