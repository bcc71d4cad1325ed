"""Faster CPU runners for the tiled ``Upscaler``: each is a ``tile_fn(x) -> y`` on tensors.

``make_tile_fn(model, backend)`` returns a callable that takes one padded tile as a float32 CPU
tensor ``(N, C, h, w)`` (any memory format) and returns ``(N, C_out, h*s, w*s)`` float32, the
same contract as calling the network. ``attach_backend(upscaler, backend)`` puts one in place of
an ``Upscaler``'s network (its ``_infer`` calls ``self.net(x)``).

Why the default is faster (see ``scripts/benchmark_inference.py``): ESRGAN is 3x3 convolutions
(17.9 M multiply-accumulates per input pixel for x4plus), which PyTorch's oneDNN computes
directly. Winograd F(6,3) needs 2-3x fewer multiplications for the same result (to ~1e-5);
NNPACK, compiled into PyTorch's x86 and ARM builds, implements it, single-threaded per call. The
threads then work on horizontal bands of the tile (exact: one halo row per band, refreshed
after every convolution). Memory: the upsampling tail's activations at 4x / 16x the tile's
pixels are the largest tensors, so the tail runs in row stripes; dense blocks fill one buffer
instead of concatenating a new tensor per convolution.

Backends (all fp32, CPU; each matches the PyTorch network to ~1e-5 or better):

* ``torch`` (default): ``TorchRRDB`` for RRDB generators (NNPACK Winograd convolutions where
  available, parallel bands, buffer-filled dense blocks, striped tail); any other model: the
  network itself (channels_last).
* ``ncnn``: x4 / x8 RRDB generators on ncnn's CPU runtime (PyPI ``ncnn``; Winograd too; about
  as fast as ``torch`` but its convolution workspaces need several times more memory).
* ``onnxruntime``, ``openvino``: the ONNX export of the network on those runtimes (whole tile;
  OpenVINO is pinned to f32 because it would pick bf16 on CPUs that have it). Both are
  about 10 % faster than plain PyTorch here, slower than Winograd.
"""

from __future__ import annotations

import copy
import importlib.util
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from realesrgan_ext.inference.model_loader import LoadedModel
from realesrgan_ext.inference.ncnn_import import STAGES_BY_SCALE
from realesrgan_ext.inference.ncnn_writer import rrdb_to_ncnn_layers, write_ncnn

BACKENDS = ("torch", "ncnn", "onnxruntime", "openvino")
TileFn = Callable[[torch.Tensor], torch.Tensor]

# The tail's receptive field is under 1.25 feature rows (one 3x3 conv at 2x resolution, three at
# 4x for x4), so 2 rows of halo make every stripe exact.
TAIL_HALO = 2
# Feature rows per tail stripe: chosen so one output-resolution activation (num_feat channels,
# float32) of a stripe stays near this size.
TAIL_STRIPE_BYTES = 16 << 20
MIN_STRIPE_ROWS = 16  # the 2-row halos cost at most 25 % more of the tail (8 % of the work)
MIN_BAND_ROWS = 8  # trunk bands thinner than this are not worth a thread
# Trunk bands are also cut so one band's feature buffer stays near this size: NNPACK's per-thread
# workspace grows with the input of a call (measured: 0.7 instead of 1.1 GB peak on 512^2 tiles).
BAND_BYTES = 24 << 20
# NNPACK handles the 64/32-channel convs; the 3-channel first and last ones stay with oneDNN.
NNPACK_MIN_CHANNELS = 16
DENSE_CONVS = 5  # convolutions per residual dense block
RESIDUAL_SCALE = 0.2
LRELU_SLOPE = 0.2


class BackendUnavailable(RuntimeError):
    """The backend's package is missing or it cannot run this model; the message says which."""


def _threads(threads: int | None) -> int:
    return threads or torch.get_num_threads()


def _is_rrdb(model: LoadedModel) -> bool:
    module = model.module
    return (model.name == "RRDB" and getattr(module, "upsampler", "nearest") == "nearest"
            and not getattr(module, "global_skip", None)) and all(
        hasattr(module, name) for name in ("conv_first", "body", "conv_body", "conv_hr", "conv_last"))


def _stripe_rows(num_feat: int, width: int, out_per_row: int) -> int:
    row_bytes = num_feat * 4 * width * out_per_row * out_per_row
    return max(MIN_STRIPE_ROWS, TAIL_STRIPE_BYTES // max(row_bytes, 1))


def run_tail_in_stripes(feat: torch.Tensor, tail: TileFn, factor: int, rows: int,
                        map_fn: Callable = map) -> torch.Tensor:
    """``tail(feat)`` computed ``rows`` feature rows at a time, each with ``TAIL_HALO`` rows of context.

    ``factor``: output rows per feature row. Exact because the tail's receptive field is smaller
    than the halo: the halo rows' outputs (touched by the stripe's zero padding) are cropped.
    ``map_fn``: how the stripes are mapped (e.g. a thread pool's ``map``, results in order).
    """
    height = feat.shape[2]
    if rows >= height:
        return tail(feat)
    spans = [(top, min(top + rows, height)) for top in range(0, height, rows)]

    def stripe(span: tuple[int, int]) -> torch.Tensor:
        top, bottom = span
        lo, hi = max(top - TAIL_HALO, 0), min(bottom + TAIL_HALO, height)
        return tail(feat[:, :, lo:hi])[:, :, (top - lo) * factor: (bottom - lo) * factor]

    return torch.cat(list(map_fn(stripe, spans)), dim=2)


def nnpack_available() -> bool:
    """Whether this PyTorch build has NNPACK (x86-64 / ARM builds from pytorch.org do); initialises it."""
    try:
        return bool(torch._nnpack_available())
    except (AttributeError, RuntimeError):
        return False


def _start_nnpack_pool(threads: int) -> None:
    """Create NNPACK's thread pool with ``threads`` workers (PyTorch sizes it once, at the first NNPACK
    call, from ``torch.get_num_threads()``; a pool that already exists keeps its size)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.inference_mode():
            torch._nnpack_spatial_convolution(torch.zeros(1, NNPACK_MIN_CHANNELS, 8, 8),
                                              torch.zeros(NNPACK_MIN_CHANNELS, NNPACK_MIN_CHANNELS, 3, 3),
                                              torch.zeros(NNPACK_MIN_CHANNELS), [1, 1], [1, 1])
    finally:
        torch.set_num_threads(previous)


def _inference_call(fn: Callable, item):
    """``fn(item)`` in inference mode, which is per thread: pool threads must enter it themselves."""
    with torch.inference_mode():
        return fn(item)


class _Band:
    """Rows ``[top, bottom)`` of the trunk, with two feature buffers holding one halo row above and below.

    Halo rows at the image's top / bottom edge stay zero: they are the convolutions' zero padding.
    """

    def __init__(self, top: int, bottom: int, channels: int, width: int, like: torch.Tensor) -> None:
        self.top, self.bottom, self.rows = top, bottom, bottom - top
        self.buffers = [like.new_empty(1, channels, self.rows + 2, width) for _ in range(2)]
        for buf in self.buffers:
            buf[:, :, 0].zero_()
            buf[:, :, -1].zero_()
        self.current = 0
        self.rrdb_in: torch.Tensor | None = None

    @property
    def buf(self) -> torch.Tensor:
        return self.buffers[self.current]

    @property
    def other(self) -> torch.Tensor:
        return self.buffers[1 - self.current]


class TorchRRDB:
    """An RRDB generator run by hand in PyTorch (NCHW), exact to float rounding.

    * Winograd: 3x3 convolutions with at least ``NNPACK_MIN_CHANNELS`` in and out channels go to
      NNPACK's Winograd F(6,3) kernels (``torch._nnpack_spatial_convolution``, shipped inside
      PyTorch) when ``winograd`` (default: where available); the others, and all without NNPACK,
      to ``F.conv2d``.
    * Threads: the trunk is cut into ``threads`` horizontal bands, each with a one-row halo that is
      refreshed from its neighbours after every convolution (domain decomposition: exact), and
      the bands run concurrently, one single-threaded convolution each. NNPACK's own thread pool
      scales poorly (about 1.3x on 2 cores); independent bands scale nearly linearly.
    * Dense blocks write each conv's output into the band's feature buffer and feed the next
      conv a leading channel slice of it (contiguous in NCHW) instead of ``torch.cat``-ing a new
      tensor per conv; LeakyReLU writes into the buffer; 0.2-scaled residual adds are one pass.
    * The upsampling tail runs in row stripes (see ``run_tail_in_stripes``), concurrently too.
    """

    def __init__(self, model: LoadedModel, winograd: bool | None = None, threads: int | None = None) -> None:
        if not _is_rrdb(model):
            raise BackendUnavailable(f"{model.name}: the striped runner needs an RRDB generator with nearest "
                                     "upsampling")
        net = model.module
        self.params = {name: (conv.weight.detach().float().contiguous(), conv.bias.detach().float().contiguous())
                       for name, conv in net.named_modules() if isinstance(conv, nn.Conv2d)}
        self.num_block = len(net.body)
        self.num_feat = net.conv_first.out_channels
        self.num_grow = net.body[0].rdb1.conv1.out_channels
        self.unshuffle = getattr(net, "size_multiple", 1)
        self.up_names = [f"conv_up{k}" for k in range(1, 4) if f"conv_up{k}" in self.params]
        self.factor = 2 ** len(self.up_names)
        self.winograd = nnpack_available() if winograd is None else winograd
        if self.winograd and not nnpack_available():
            raise BackendUnavailable("this PyTorch build has no NNPACK (Winograd convolutions)")
        if self.winograd:
            _start_nnpack_pool(1)  # calls run on the calling (band) thread: the bands are the parallelism
        self.threads = _threads(threads)
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="rrdb") if self.threads > 1 else None

    def _map(self, fn: Callable, items: list) -> list:
        if self._pool is None or len(items) < 2:
            return [fn(item) for item in items]
        return list(self._pool.map(partial(_inference_call, fn), items))

    def conv(self, x: torch.Tensor, name: str, pad_rows: bool = True) -> torch.Tensor:
        """3x3 convolution ``name``; ``pad_rows=False`` for band inputs that carry their halo rows."""
        weight, bias = self.params[name]
        padding = [1 if pad_rows else 0, 1]
        if self.winograd and min(weight.shape[:2]) >= NNPACK_MIN_CHANNELS:
            return torch._nnpack_spatial_convolution(x, weight, bias, padding, [1, 1])
        return F.conv2d(x, weight, bias, padding=tuple(padding))

    # -- trunk, band by band ------------------------------------------------------------------

    def _bands(self, feat: torch.Tensor) -> list[_Band]:
        height, width = feat.shape[2:]
        channels = self.num_feat + (DENSE_CONVS - 1) * self.num_grow
        max_rows = max(MIN_BAND_ROWS, BAND_BYTES // (channels * 4 * width))
        count = max(1, min(self.threads, height // MIN_BAND_ROWS), -(-height // max_rows))
        if count > self.threads:  # a whole number of bands per thread: each step waits for the slowest
            count = min(-(-count // self.threads) * self.threads, max(1, height // MIN_BAND_ROWS))
        edges = [round(i * height / count) for i in range(count + 1)]
        bands = [_Band(edges[i], edges[i + 1], channels, width, feat) for i in range(count)]
        nf = self.num_feat
        for band in bands:
            band.buf[:, :nf, 1:-1] = feat[:, :, band.top:band.bottom]
        self._exchange(bands, slice(0, nf), current=True)
        return bands

    @staticmethod
    def _exchange(bands: list[_Band], channels: slice, current: bool) -> None:
        """Refresh the halo rows of ``channels`` from the neighbouring bands' edge rows."""
        for upper, lower in zip(bands, bands[1:], strict=False):
            up = upper.buf if current else upper.other
            low = lower.buf if current else lower.other
            low[:, channels, 0] = up[:, channels, -2]
            up[:, channels, -1] = low[:, channels, 1]

    def _dense_conv(self, band: _Band, name: str, k: int) -> None:
        nf, ng = self.num_feat, self.num_grow
        buf = band.buf
        y = self.conv(buf[:, : nf + (k - 1) * ng], name, pad_rows=False)
        torch._C._nn.leaky_relu(y, LRELU_SLOPE, out=buf[:, nf + (k - 1) * ng: nf + k * ng, 1:-1])

    def _rdb_out(self, band: _Band, name: str, last: bool) -> None:
        nf = self.num_feat
        x = band.buf[:, :nf, 1:-1]
        y = self.conv(band.buf, name, pad_rows=False)
        out = band.other[:, :nf, 1:-1]
        if last:  # the RRDB's own residual: in + 0.2 * (rdb3_in + 0.2 * y)
            torch.add(band.rrdb_in, torch.add(x, y, alpha=RESIDUAL_SCALE), alpha=RESIDUAL_SCALE, out=out)
        else:
            torch.add(x, y, alpha=RESIDUAL_SCALE, out=out)

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        """``(1, C, H, W)`` image -> ``conv_first + conv_body(body(.))`` features."""
        if self.unshuffle > 1:
            x = F.pixel_unshuffle(x, self.unshuffle)
        feat = self.conv(x, "conv_first")
        nf, ng = self.num_feat, self.num_grow
        bands = self._bands(feat)
        for block in range(self.num_block):
            for band in bands:
                band.rrdb_in = band.buf[:, :nf, 1:-1].clone()
            for rdb in range(1, 4):
                prefix = f"body.{block}.rdb{rdb}."
                for k in range(1, DENSE_CONVS):
                    self._map(partial(self._dense_conv, name=f"{prefix}conv{k}", k=k), bands)
                    self._exchange(bands, slice(nf + (k - 1) * ng, nf + k * ng), current=True)
                self._map(partial(self._rdb_out, name=f"{prefix}conv{DENSE_CONVS}", last=rdb == 3), bands)
                self._exchange(bands, slice(0, nf), current=False)
                for band in bands:
                    band.current = 1 - band.current
        bodies = self._map(lambda band: self.conv(band.buf[:, :nf], "conv_body", pad_rows=False), bands)
        for band, body in zip(bands, bodies, strict=True):
            feat[:, :, band.top:band.bottom] += body
        return feat

    # -- tail --------------------------------------------------------------------------------

    def tail(self, feat: torch.Tensor) -> torch.Tensor:
        """Trunk features -> image: nearest x2 + conv + LeakyReLU per stage, conv_hr, conv_last."""
        for name in self.up_names:
            feat = F.leaky_relu(self.conv(F.interpolate(feat, scale_factor=2, mode="nearest"), name),
                                LRELU_SLOPE, inplace=True)
        feat = F.leaky_relu(self.conv(feat, "conv_hr"), LRELU_SLOPE, inplace=True)
        return self.conv(feat, "conv_last")

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        # The bands / stripes are the parallelism; PyTorch's OpenMP threads, which spin-wait after
        # every op, would only take cores from them.
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            outputs = []
            for image in x.detach().float():
                feat = self.trunk(image[None].contiguous())
                rows = _stripe_rows(self.num_feat, feat.shape[3], self.factor)
                rows = min(rows, -(-feat.shape[2] // self.threads))  # at least one stripe per thread
                outputs.append(run_tail_in_stripes(feat, self.tail, self.factor, rows,
                                                   lambda fn, spans: self._map(fn, spans)))
            return torch.cat(outputs)
        finally:
            torch.set_num_threads(threads)


class NcnnRRDB:
    """An x4 / x8 RRDB generator on ncnn's CPU runtime; the tail runs in row stripes.

    The weights are written as fp32 ncnn files (a temporary folder, read back at once), so the
    output matches PyTorch's to float rounding (about 1e-6).
    """

    def __init__(self, model: LoadedModel, threads: int | None = None) -> None:
        if importlib.util.find_spec("ncnn") is None:
            raise BackendUnavailable("the ncnn backend needs the ncnn runtime: pip install ncnn")
        settings = model.settings
        if not _is_rrdb(model) or int(settings.get("scale", model.scale)) not in STAGES_BY_SCALE:
            raise BackendUnavailable(f"the ncnn backend runs x4 / x8 RRDB generators with nearest upsampling, "
                                     f"not {model.describe()}")
        import ncnn

        self._ncnn = ncnn
        state_dict = {k: v.detach().float().cpu() for k, v in model.module.state_dict().items()}
        self.num_feat = int(state_dict["conv_first.weight"].shape[0])
        self.factor = 2 ** STAGES_BY_SCALE[int(settings.get("scale", model.scale))]
        self.threads = _threads(threads)
        with tempfile.TemporaryDirectory(prefix="realesrgan_ext_ncnn_") as folder:
            self.trunk_net = self._load(rrdb_to_ncnn_layers(state_dict, settings, "trunk"), Path(folder), "trunk")
            self.tail_net = self._load(rrdb_to_ncnn_layers(state_dict, settings, "tail"), Path(folder), "tail")

    def _load(self, layers, folder: Path, name: str):
        param, weights = folder / f"{name}.param", folder / f"{name}.bin"
        write_ncnn(layers, param, weights)
        net = self._ncnn.Net()
        opt = net.opt
        # fp32 everywhere: ncnn defaults to fp16 / bf16 storage where the CPU has it
        opt.use_vulkan_compute = False
        opt.use_fp16_packed = opt.use_fp16_storage = opt.use_fp16_arithmetic = False
        opt.use_bf16_storage = False
        opt.use_int8_inference = False
        opt.num_threads = self.threads
        if net.load_param(str(param)) != 0 or net.load_model(str(weights)) != 0:
            raise BackendUnavailable(f"ncnn could not load the {name} graph written from this model")
        return net

    def _run(self, net, chw: np.ndarray) -> np.ndarray:
        chw = np.ascontiguousarray(chw, dtype=np.float32)  # ncnn.Mat wraps it: keep a reference
        extractor = net.create_extractor()
        extractor.input("data", self._ncnn.Mat(chw))
        ret, out = extractor.extract("output")
        if ret != 0:
            raise RuntimeError(f"ncnn extract failed with code {ret}")
        return np.array(out)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        outputs = []
        for image in x.detach().float().cpu():
            feat = torch.from_numpy(self._run(self.trunk_net, image.numpy()))[None]
            rows = _stripe_rows(self.num_feat, feat.shape[3], self.factor)
            tail = lambda f: torch.from_numpy(self._run(self.tail_net, f[0].numpy()))[None]  # noqa: E731
            outputs.append(run_tail_in_stripes(feat, tail, self.factor, rows))
        return torch.cat(outputs)


class _OnnxRunner:
    """The whole network exported to ONNX (dynamic H/W) and run by onnxruntime or OpenVINO."""

    def __init__(self, model: LoadedModel, runtime: str, threads: int | None = None) -> None:
        package = {"onnxruntime": "onnxruntime", "openvino": "openvino"}[runtime]
        if importlib.util.find_spec(package) is None:
            raise BackendUnavailable(f"the {runtime} backend needs: pip install {package}")
        from realesrgan_ext.inference.onnx_export import export_onnx

        threads = _threads(threads)
        with tempfile.TemporaryDirectory(prefix="realesrgan_ext_onnx_") as folder:
            path = Path(folder) / "model.onnx"
            export_onnx(model, path, dynamic=True, check=False)
            if runtime == "onnxruntime":
                import onnxruntime as ort

                options = ort.SessionOptions()
                options.intra_op_num_threads = threads
                session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
                self._infer = lambda a: session.run(None, {"input": a})[0]
            else:
                import openvino as ov

                core = ov.Core()
                compiled = core.compile_model(core.read_model(str(path)), "CPU", {
                    "INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32",
                    "PERFORMANCE_HINT": "LATENCY"})
                request = compiled.create_infer_request()
                self._infer = lambda a: request.infer({0: a})[0].copy()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self._infer(np.ascontiguousarray(x.detach().float().cpu().numpy())))


def _plain_torch(model: LoadedModel) -> TileFn:
    net = copy.deepcopy(model.module).float().eval().requires_grad_(False).to(memory_format=torch.channels_last)

    @torch.inference_mode()
    def run(x: torch.Tensor) -> torch.Tensor:
        return net(x.float().contiguous(memory_format=torch.channels_last))

    return run


def ncnn_supports(model: LoadedModel) -> bool:
    """Whether the ncnn backend is installed and can run ``model``."""
    return (importlib.util.find_spec("ncnn") is not None and _is_rrdb(model)
            and int(model.settings.get("scale", model.scale)) in STAGES_BY_SCALE)


def make_tile_fn(model: LoadedModel, backend: str = "torch", threads: int | None = None,
                 winograd: bool | None = None) -> TileFn:
    """A CPU fp32 ``tile_fn`` for ``model`` on ``backend`` (see the module docstring).

    ``threads``: worker threads (default: ``torch.get_num_threads()``); for the torch backend this
    sizes NNPACK's pool, which PyTorch creates once per process.
    ``winograd``: torch backend only; None = NNPACK where this PyTorch has it.

    Raises:
        BackendUnavailable: the backend's package is missing or it does not support the model.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "torch":
        return TorchRRDB(model, winograd, threads) if _is_rrdb(model) else _plain_torch(model)
    if backend == "ncnn":
        return NcnnRRDB(model, threads)
    return _OnnxRunner(model, backend, threads)


def attach_backend(upscaler, backend: str = "torch", threads: int | None = None, winograd: bool | None = None):
    """Make an ``Upscaler`` run its tiles on ``backend`` (CPU, fp32 only); returns the upscaler.

    The Upscaler's ``_infer`` hands each tile to ``self.net``; this replaces that network by the
    backend's ``tile_fn`` (and frees the Upscaler's copy of the PyTorch module).
    """
    if upscaler.device.type != "cpu" or upscaler.dtype != torch.float32:
        raise BackendUnavailable(f"backend {backend!r} runs on CPU in fp32; this upscaler uses "
                                 f"{upscaler.device} {upscaler.dtype}")
    upscaler.net = make_tile_fn(upscaler.model, backend, threads, winograd)
    return upscaler


__all__ = ["BACKENDS", "BackendUnavailable", "NcnnRRDB", "TorchRRDB", "attach_backend", "make_tile_fn",
           "ncnn_supports", "nnpack_available", "run_tail_in_stripes"]

