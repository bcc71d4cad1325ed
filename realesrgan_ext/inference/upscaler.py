"""Tiled super-resolution of numpy images with blended seams and bounded memory.

``Upscaler(model).upscale(img)`` takes an ``HxW`` gray, ``HxWx2`` gray+alpha, ``HxWx3`` RGB or
``HxWx4`` RGBA array (uint8, uint16, or float32 in [0, 1]) and returns the same layout and
dtype, ``scale`` times larger (or ``outscale`` times, by a final Lanczos / area resize).

How tiling works (all sizes in input pixels):

* The image is padded (reflect) to the model's size multiple (2 / 4 for x2 / x1 pixel-unshuffle
  RRDBs) and cut into a grid of near-equal core tiles of at most ``tile`` pixels a side.
* Each tile goes to the device with ``tile_pad`` pixels of real image context on every side.
* Neighbouring tiles' outputs overlap across a band ``blend`` wide centred on each seam and are
  cross-faded there with raised-cosine weights that sum to one, so there is no visible seam and
  every pixel used comes from at least ``tile_pad - blend / 2`` pixels of context.
* Memory: the whole input and the output (in its final dtype) stay in host memory. The
  only float copy is a float32 accumulator for one row of tiles,
  ``(tile + blend) * scale`` rows by ``width * scale`` columns, plus one tile's float32
  output, ``((tile + 2 * tile_pad) * scale)^2`` pixels; rows are finalised into the output as soon
  as the next tile row can no longer contribute to them. The device holds the weights,
  one padded tile and the activations for it.
* On device out-of-memory the tile side is halved and the image restarted, down to
  ``MIN_TILE``; the final error says what to change.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch

from realesrgan_ext.data.image_io import to_float
from realesrgan_ext.inference.model_loader import LoadedModel, load_model
from realesrgan_ext.limits import Limits, over_limit

# Context on each side of a tile (input px). ESRGAN's receptive field is wide: measured with the
# real RealESRGAN_x4plus weights across one seam of a photo (astronaut, 32x128 px, 64 px tiles),
# the seam band (+-8 input px) differs from the untiled result by, in PSNR / max abs error:
#   pad 10 crop-only (Real-ESRGAN's default) 36.1 dB / 33;  pad 32 + blend 32: 49.1 dB / 7;
#   pad 40 + blend 40: 53.7 dB / 4;  pad 48 + blend 24: 59.7 dB / 2 (whole image 66.2 dB).
# In 2-D (176x176 crop, 2x2 tiles of 88 px) pad 48 + blend 24 gives 61.6 dB for the whole image,
# 53.7 / 58.8 dB in the horizontal / vertical seam bands, max 7/255 near a high-contrast edge.
# It costs ((tile + 96) / tile)^2 compute: x1.89 at 256 px tiles, x1.41 at 512 (use a larger
# --tile where memory allows).
DEFAULT_TILE_PAD = 48
# Width of the cross-fade band centred on each seam, as a fraction of tile_pad: each tile's
# contribution stops tile_pad * (1 - BLEND_FRACTION / 2) px before its context runs out.
BLEND_FRACTION = 0.5
# tile=0 picks this many input px per tile side (bigger tiles waste less time on padding;
# the CPU value bounds the RRDB x4 activations to about 1.5 GB in fp32).
AUTO_TILE = {"cpu": 256, "cuda": 512}
MIN_TILE = 32  # out-of-memory halving stops here
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
ALPHA_MODES = ("model", "bicubic")
_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
_LUMA_RGB = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # cv2's RGB2GRAY weights


def check_outscale(outscale: float | None, limits: Limits | None = None) -> float | None:
    """``outscale`` if it is None or a finite number in (0, ``max_outscale``]; checked before any image is read.

    Raises ``ValueError`` for 0, negative and non-finite values, ``LimitError`` (one) past the limit.
    """
    if outscale is None:
        return None
    limits = limits or Limits.from_env()
    if isinstance(outscale, bool) or not isinstance(outscale, (int, float)) or not math.isfinite(outscale) \
            or outscale <= 0:
        raise ValueError(f"outscale must be a finite number > 0, got {outscale!r}")
    if outscale > limits.max_outscale:
        raise over_limit("outscale", float(outscale), "max_outscale", limits)
    return float(outscale)


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``'auto'`` -> CUDA when available, else CPU; ``'cuda'`` without a GPU is an error."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but torch sees no CUDA GPU; use --device cpu (or auto)")
    return dev


def resolve_dtype(precision: str, device: torch.device, model: LoadedModel) -> torch.dtype:
    """The compute dtype for ``precision`` on ``device``.

    ``auto``: fp32 on CPU; on CUDA bf16 where the GPU has it and the model prefers it (or cannot
    do fp16), else fp16 where the model supports it, else fp32. fp16 on CPU is refused (slow
    and inaccurate there); bf16 on CPU runs when asked.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    cuda = device.type == "cuda"
    bf16_ok = cuda and torch.cuda.is_bf16_supported()
    if precision == "auto":
        if not cuda:
            return torch.float32
        if model.supports_bf16 and bf16_ok and (model.prefers_bf16 or not model.supports_fp16):
            return torch.bfloat16
        return torch.float16 if model.supports_fp16 else torch.float32
    if precision == "fp16":
        if not cuda:
            raise ValueError("fp16 inference on CPU is not supported (slow and imprecise there); "
                             "use --precision fp32 or bf16 on CPU, or fp16 with --device cuda")
        if not model.supports_fp16:
            raise ValueError(f"{model.name} does not support fp16 (its outputs overflow); use --precision "
                             f"{'bf16' if model.supports_bf16 else 'fp32'}")
    if precision == "bf16":
        if not model.supports_bf16:
            raise ValueError(f"{model.name} does not support bf16; use --precision fp32")
        if cuda and not bf16_ok:
            raise ValueError("this GPU has no bf16 support; use --precision fp16 or fp32")
    return _DTYPES[precision]


class Upscaler:
    """Tiled, seam-free super-resolution of whole images held in host memory.

    Args:
        model: a ``LoadedModel`` (see ``load_model``) or a checkpoint path.
        tile: largest tile side in input pixels; 0 = ``AUTO_TILE`` for the device. A tile at
            least as large as the image runs it in one pass (no tiling).
        tile_pad: context pixels around each tile (``DEFAULT_TILE_PAD``).
        precision: ``auto`` | ``fp32`` | ``fp16`` | ``bf16`` (see ``resolve_dtype``).
        device: ``auto`` | ``cpu`` | ``cuda`` | ``cuda:N`` | a ``torch.device``.
        alpha: how the alpha channel of RGBA / gray+alpha images is upscaled: ``model`` (as a
            gray image through the network, like Real-ESRGAN) or ``bicubic``.
        blend: width of the seam cross-fade band in input px (default ``BLEND_FRACTION * tile_pad``;
            at most ``2 * tile_pad``; 0 = hard seams, Real-ESRGAN's crop-only tiling).
        tile_fn: run each tile on this instead of the network (``engines.make_upscaler`` passes an
            engine's): float32 CPU ``(N, C, h, w)`` in, the network's output out; needs fp32 on CPU.
        limits: ``max_output_pixels`` and ``max_outscale`` are checked before each image is
            allocated (default ``Limits.from_env()``); over them, ``LimitError``.

    Without ``tile_fn`` the model is copied, then moved to the device and dtype (channels_last); the caller's
    ``LoadedModel`` is left as it was. Not thread-safe: call ``upscale`` from one thread.
    """

    def __init__(self, model: LoadedModel | str | Path, tile: int = 0, tile_pad: int = DEFAULT_TILE_PAD,
                 precision: str = "auto", device: str | torch.device = "auto", alpha: str = "model",
                 blend: int | None = None, tile_fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 limits: Limits | None = None) -> None:
        self.limits = limits or Limits.from_env()
        self.model = model if isinstance(model, LoadedModel) else load_model(model, limits=self.limits)
        if tile < 0 or tile_pad < 0:
            raise ValueError(f"tile and tile_pad must be >= 0, got tile={tile}, tile_pad={tile_pad}")
        if alpha not in ALPHA_MODES:
            raise ValueError(f"alpha must be one of {ALPHA_MODES}, got {alpha!r}")
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(precision, self.device, self.model)
        self.tile = tile or AUTO_TILE.get(self.device.type, AUTO_TILE["cuda"])
        self.tile_pad = tile_pad
        self.blend = round(BLEND_FRACTION * tile_pad) if blend is None else blend
        if not 0 <= self.blend <= 2 * tile_pad:
            raise ValueError(f"blend must be between 0 and 2 * tile_pad ({2 * tile_pad}), got {self.blend}")
        self.alpha = alpha
        self.scale = self.model.scale
        if tile_fn is not None:
            if (self.device.type, self.dtype) != ("cpu", torch.float32):
                raise ValueError(f"tile_fn runs float32 tiles on CPU, not {self.dtype} on {self.device}")
            self.net = tile_fn  # no copy of the network: the engine has its own
        else:
            self.net = copy.deepcopy(self.model.module).eval().requires_grad_(False)
            self.net.to(device=self.device, dtype=self.dtype, memory_format=torch.channels_last)
        self._on_tile: Callable[[int, int], None] | None = None
        self.engine = None  # engines.make_upscaler: the EngineChoice whose tile_fn replaced self.net

    def __repr__(self) -> str:
        engine = f", engine={self.engine.describe()}" if self.engine is not None else ""
        return (f"Upscaler({self.model.describe()}, device={self.device}, dtype={self.dtype}{engine}, "
                f"tile={self.tile}, tile_pad={self.tile_pad}, blend={self.blend}, alpha={self.alpha!r})")

    def output_size(self, height: int, width: int, outscale: float | None = None) -> tuple[int, int]:
        """(height, width) of ``upscale``'s result for an input of that size."""
        if outscale is None:
            return height * self.scale, width * self.scale
        check_outscale(outscale, self.limits)
        return max(1, int(height * outscale + 0.5)), max(1, int(width * outscale + 0.5))

    def check_output(self, height: int, width: int, outscale: float | None = None) -> None:
        """Raise ``LimitError`` when the network's output or the result of an input of this size would
        exceed ``max_output_pixels`` (before anything is allocated)."""
        out_h, out_w = self.output_size(height, width, outscale)
        net_h, net_w = height * self.scale, width * self.scale
        size = f"of a {width}x{height} px image"
        if net_h * net_w >= out_h * out_w:
            what, pixels = f"the network's x{self.scale} output {size} ({net_w}x{net_h} px)", net_h * net_w
        else:
            what, pixels = f"the x{outscale:g} result {size} ({out_w}x{out_h} px)", out_h * out_w
        if pixels > self.limits.max_output_pixels:
            raise over_limit(what, pixels, "max_output_pixels", self.limits, "px")

    def upscale(self, img: np.ndarray, outscale: float | None = None,
                on_tile: Callable[[int, int], None] | None = None) -> np.ndarray:
        """Upscale one image; same layout (gray / gray+alpha / RGB / RGBA) and dtype out.

        ``outscale``: final size factor (any float > 0); the network runs at its native scale
        and the result is resized (Lanczos up, area down), rounding sizes half up.
        ``on_tile(done, total)``: called after each tile of each network pass (progress bars);
        an image with alpha upscaled by the model makes two passes.
        """
        self._on_tile = on_tile
        try:
            return self._upscale(img, outscale)
        finally:
            self._on_tile = None

    def _upscale(self, img: np.ndarray, outscale: float | None) -> np.ndarray:
        if img.dtype not in (np.uint8, np.uint16, np.float32):
            raise ValueError(f"unsupported pixel type {img.dtype}; expected uint8, uint16 or float32")
        if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] not in (1, 2, 3, 4)):
            raise ValueError(f"expected HxW or HxWxC with C in 1..4, got shape {img.shape}")
        if img.shape[0] < 1 or img.shape[1] < 1:
            raise ValueError(f"empty image, shape {img.shape}")
        squeeze = img.ndim == 2
        planes = img[:, :, None] if squeeze else img
        height, width, channels = planes.shape
        self.check_output(height, width, outscale)
        out = np.empty((height * self.scale, width * self.scale, channels), img.dtype)
        has_alpha = channels in (2, 4)
        color = planes[:, :, : channels - 1] if has_alpha else planes
        if self.model.in_channels == 4 and channels == 4:
            self._upscale_color(planes, out)
        else:
            self._upscale_color(color, out[:, :, : color.shape[2]])
            if has_alpha:
                self._upscale_alpha(planes[:, :, -1], out[:, :, -1])
        if outscale is not None and self.output_size(height, width, outscale) != out.shape[:2]:
            out = self._resize(out, height, width, outscale)
        return out[:, :, 0] if squeeze else out

    def upscale_batch(self, images: np.ndarray, outscale: float | None = None) -> np.ndarray:
        """Upscale ``images`` (``N x H x W x C``: frames of one size) together; each result is ``upscale``
        of that image alone (the same tiles, run as one batch of N per tile), up to rounding: a batch's
        convolutions may take another algorithm and round 1 level differently in a few pixels.

        Batches colour images whose channels the model takes as they are; anything else (alpha,
        gray through an RGB model) runs image by image.
        """
        if images.ndim != 4 or images.shape[0] == 0:
            raise ValueError(f"expected N x H x W x C with N >= 1, got shape {images.shape}")
        channels = images.shape[3]
        if channels != self.model.in_channels or channels != self.model.out_channels or channels in (2, 4):
            return np.stack([self.upscale(image, outscale) for image in images])
        if images.dtype not in (np.uint8, np.uint16, np.float32):
            raise ValueError(f"unsupported pixel type {images.dtype}; expected uint8, uint16 or float32")
        count, height, width = images.shape[:3]
        self.check_output(height, width, outscale)
        out = np.empty((count, height * self.scale, width * self.scale, channels), images.dtype)
        self._run(images, out, None)
        if outscale is None or self.output_size(height, width, outscale) == out.shape[1:3]:
            return out
        return np.stack([self._resize(image, height, width, outscale) for image in out])

    def _resize(self, out: np.ndarray, height: int, width: int, outscale: float) -> np.ndarray:
        """``out`` (the network's size) to ``outscale`` x the input size: Lanczos up, area down."""
        out_h, out_w = self.output_size(height, width, outscale)
        interp = cv2.INTER_LANCZOS4 if out_h * out_w > out.shape[0] * out.shape[1] else cv2.INTER_AREA
        resized = cv2.resize(out, (out_w, out_h), interpolation=interp)
        return resized[:, :, None] if resized.ndim == 2 else resized

    # -- channel handling --------------------------------------------------------------------

    def _upscale_color(self, color: np.ndarray, out: np.ndarray) -> None:
        """Gray or RGB ``color`` (HxWxC) into ``out`` (same channels), fitting the model's channels."""
        have, want = color.shape[2], self.model.in_channels
        if have == want:
            self._run(color, out, None if self.model.out_channels == have else _reducer(self.model.out_channels, have))
        elif have == 1 and want == 3:  # gray through an RGB model, back to gray (luma)
            self._run(np.repeat(color, 3, axis=2), out, _to_gray)
        elif have == 3 and want == 1:  # RGB through a gray model, one channel at a time
            for ch in range(3):
                self._run(color[:, :, ch: ch + 1], out[:, :, ch: ch + 1], None)
        else:
            raise ValueError(f"cannot feed a {have}-channel image to a {want}-channel {self.model.name} model")

    def _upscale_alpha(self, alpha: np.ndarray, out: np.ndarray) -> None:
        """One alpha plane (HxW) into ``out`` (H*s x W*s): constant stays constant, else model/bicubic."""
        if alpha.min() == alpha.max():
            out[...] = alpha.flat[0]
        elif self.alpha == "bicubic":
            out[...] = cv2.resize(alpha, (out.shape[1], out.shape[0]), interpolation=cv2.INTER_CUBIC)
        else:
            plane = alpha[:, :, None]
            self._upscale_color(plane, out[:, :, None])

    # -- the tiling engine -------------------------------------------------------------------

    def _run(self, src: np.ndarray, out: np.ndarray, reduce: Callable[[np.ndarray], np.ndarray] | None) -> None:
        """Run the network over ``src`` (HxWxC_in, model channels) into ``out`` (H*s x W*s x K);
        or over a batch, ``src`` N x H x W x C_in into ``out`` N x H*s x W*s x K, each tile as one batch.

        ``reduce`` maps each tile's float output (h x w x C_out) to K channels (linear, so it
        commutes with the blending). Halves the tile on device out-of-memory.
        """
        if src.ndim == 3:
            src, out = src[None], out[None]
        pads = [_pad_to_multiple(image, self.model.size_multiple, self.model.min_size) for image in src]
        padded = pads[0][None] if len(pads) == 1 else np.stack(pads)  # one image: no copy when unpadded
        tile = self.tile
        while True:
            try:
                self._run_tiles(padded, out, reduce, tile)
                return
            except torch.OutOfMemoryError as err:
                _free_device_memory(self.device)
                if tile // 2 < MIN_TILE:
                    raise RuntimeError(
                        f"out of {self.device} memory even with {tile} px tiles (tile_pad {self.tile_pad}, "
                        f"{self.dtype}, {self.model.name} x{self.scale}); free the GPU, use --device cpu, "
                        f"--precision fp16/bf16, or a smaller --tile-pad") from err
                warnings.warn(f"out of {self.device} memory with {tile} px tiles; retrying with {tile // 2}",
                              RuntimeWarning, stacklevel=2)
                tile //= 2
                self.tile = tile  # later images start at the size that fitted

    def _run_tiles(self, src: np.ndarray, out: np.ndarray, reduce, tile: int) -> None:
        mult, scale = self.model.size_multiple, self.scale
        count, height, width = src.shape[:3]
        pad = _round_up(self.tile_pad, mult)
        rows, cols = _split(height, tile, mult), _split(width, tile, mult)
        # output px each side of a seam; a core never holds more than its two half bands
        shortest = min((b - a for cores in (rows, cols) if len(cores) > 1 for a, b in cores), default=self.blend)
        half_band = min(self.blend, shortest) * scale // 2
        k = out.shape[3]
        carry = None  # finished rows of the previous strip that the next tile row still adds to
        for r, (y0, y1) in enumerate(rows):
            top = 0 if r == 0 else y0 * scale - half_band
            bottom = height * scale if r == len(rows) - 1 else y1 * scale + half_band
            acc = np.zeros((count, bottom - top, width * scale, k), np.float32)
            if carry is not None:
                acc[:, : carry.shape[1]] = carry
            wy = _ramp_weights(top, bottom, r > 0, r < len(rows) - 1, half_band)
            iy0, iy1 = max(y0 - pad, 0), min(y1 + pad, height)
            for c, (x0, x1) in enumerate(cols):
                left = 0 if c == 0 else x0 * scale - half_band
                right = width * scale if c == len(cols) - 1 else x1 * scale + half_band
                ix0, ix1 = max(x0 - pad, 0), min(x1 + pad, width)
                result = self._infer(src[:, iy0:iy1, ix0:ix1])
                part = result[:, top - iy0 * scale: bottom - iy0 * scale, left - ix0 * scale: right - ix0 * scale]
                if reduce is not None:
                    part = reduce(part)
                wx = _ramp_weights(left, right, c > 0, c < len(cols) - 1, half_band)
                part *= wy[:, None, None] * wx[None, :, None]  # in place: the tile output is ours
                acc[:, :, left:right] += part
                del result, part
                if self._on_tile is not None:
                    self._on_tile(r * len(cols) + c + 1, len(rows) * len(cols))
            done = bottom - top if r == len(rows) - 1 else (rows[r + 1][0] * scale - half_band) - top
            carry = acc[:, done:].copy()
            _store(acc[:, :done], out, top)
            del acc  # before the next strip is allocated: one strip alive at a time

    @torch.inference_mode()
    def _infer(self, tile: np.ndarray) -> np.ndarray:
        """One padded tile of N images (N x h x w x C, any dtype) -> network output, float32 N x h*s x w*s x C_out."""
        x = torch.from_numpy(to_float(np.ascontiguousarray(tile))).permute(0, 3, 1, 2)
        x = x.to(device=self.device, dtype=self.dtype).contiguous(memory_format=torch.channels_last)
        y = self.net(x)
        return y.permute(0, 2, 3, 1).to(device="cpu", dtype=torch.float32).numpy()


def _split(length: int, tile: int, mult: int) -> list[tuple[int, int]]:
    """Near-equal [start, stop) cores covering ``length``, each at most ``tile`` (rounded to ``mult``)."""
    count = math.ceil(length / max(tile, mult))
    step = _round_up(math.ceil(length / count), mult)
    return [(start, min(start + step, length)) for start in range(0, length, step)]


def _ramp_weights(start: int, stop: int, fade_in: bool, fade_out: bool, half_band: int) -> np.ndarray:
    """1-D weights over output positions [start, stop): raised-cosine ramps of ``2 * half_band`` px
    at the ends shared with a neighbour, so overlapping tiles' weights sum to exactly one."""
    weights = np.ones(stop - start, np.float32)
    if half_band > 0:
        t = (np.arange(2 * half_band, dtype=np.float32) + 0.5) / (2 * half_band)
        ramp = 0.5 - 0.5 * np.cos(np.pi * t)
        if fade_in:
            weights[: 2 * half_band] = ramp
        if fade_out:
            weights[-2 * half_band:] = ramp[::-1]
    return weights


def _store(rows: np.ndarray, out: np.ndarray, top: int) -> None:
    """Quantise finished accumulator rows (N x rows x W x K) into ``out`` (N x H x W x K) from row
    ``top``, cropping the padding.

    Works in place on ``rows`` (the accumulator is discarded afterwards): no extra float copies.
    """
    bottom = min(top + rows.shape[1], out.shape[1])
    if bottom <= top:
        return
    rows = rows[:, : bottom - top, : out.shape[2]]
    rows = np.clip(rows, 0.0, 1.0, out=rows)
    if out.dtype in (np.uint8, np.uint16):
        rows *= np.iinfo(out.dtype).max
        np.rint(rows, out=rows)
    out[:, top:bottom] = rows


def _pad_to_multiple(img: np.ndarray, mult: int, minimum: int = 0) -> np.ndarray:
    """Pad bottom/right so height and width are multiples of ``mult`` and >= ``minimum``: reflect
    as far as the image allows, then repeat the edge (a 1 px image cannot be reflected)."""
    height, width = img.shape[:2]
    target_h = _round_up(max(height, minimum), mult)
    target_w = _round_up(max(width, minimum), mult)
    if (target_h, target_w) == (height, width):
        return img
    extra = ((0, target_h - height), (0, target_w - width), (0, 0))
    reflect = tuple((0, min(after, size - 1)) for (_, after), size in zip(extra[:2], (height, width), strict=True))
    img = np.pad(img, reflect + ((0, 0),), mode="reflect")
    rest = ((0, target_h - img.shape[0]), (0, target_w - img.shape[1]), (0, 0))
    return np.pad(img, rest, mode="edge") if any(after for _, after in rest) else img


def _round_up(value: int, mult: int) -> int:
    return -(-value // mult) * mult


def _to_gray(rgb: np.ndarray) -> np.ndarray:
    return rgb @ _LUMA_RGB[:, None]


def _reducer(have: int, want: int) -> Callable[[np.ndarray], np.ndarray]:
    if have == 3 and want == 1:
        return _to_gray
    raise ValueError(f"cannot map a {have}-channel model output to {want} image channels")


def _free_device_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
