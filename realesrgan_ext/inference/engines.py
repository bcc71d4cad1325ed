"""Inference engines for the tiled ``Upscaler``, and ``auto``: the fastest one that is exact enough here.

Every engine computes the network itself, never a copy of its code: ``onnxruntime`` and
``openvino`` run the ONNX export of the loaded module (``onnx_export``), so each generator
option (global skip, pixel-unshuffle x1 / x2, x8, pixel-shuffle upsampling, spandrel models)
is whatever the module computes. An RRDB generator is exported as its two methods
``features`` and ``reconstruct``; the second, the upsampling tail, runs in row stripes
(``StripedRRDB``), so its activations at output resolution never exist for a whole tile.
``ncnn`` runs a graph written from the weights of an RRDB generator (``ncnn_writer``) or a compact
network (``ncnn_compact_engine``) and refuses every model those graphs do not express.

* ``pytorch``: the network as loaded (fp32, bf16; fp16 on CUDA). The only engine on CUDA.
* ``openvino`` (CPU): fp32, or bf16 (``INFERENCE_PRECISION_HINT``), which uses the CPU's
  native bf16 instructions (avx512_bf16 / AMX) where it has them.
* ``onnxruntime`` (CPU): fp32.
* ``ncnn`` (CPU): fp32, x4 / x8 RRDB generators without global skip, SRVGGNetCompact with PReLU.

``auto`` (``make_upscaler``): on CUDA, ``pytorch``. On CPU, the candidates of ``AUTO_ORDER`` for
the precision asked are tried fastest first (measured order, see README "Performance"; in fp32 a
compact network tries ``ncnn`` before them, ``_compact_first``); the
first that builds and reproduces the plain fp32 network on a probe image to at least
``MIN_PSNR`` dB (60 for fp32, 50 for bf16) is used. A model an engine cannot run, or not
exactly enough, falls back to the next; ``pytorch`` fp32 always qualifies. An explicitly named
engine is checked the same way and falls back to ``pytorch`` with a note.

The ONNX export (about 9 s for x4plus) is cached on disk, keyed by the weights' and settings'
hash: ``cache_dir('onnx')/<sha256>.onnx`` (``realesrgan_ext.paths``), so only the first run pays;
so are OpenVINO's compiled model (``cache_dir('openvino')``, its own cache) and each probe's
PSNR (``cache_dir('engine_checks')``, per model, engine, precision, engine version and the
digests of the engine files measured). Every cached engine file is verified against its
recorded hash and source before use, and rebuilt when it fails (``engine_cache``).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import uuid
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from realesrgan_ext.archs.rrdb_arch import RRDBGenerator
from realesrgan_ext.inference.engine_cache import record_folder, verified, verify_folder, write_record
from realesrgan_ext.inference.model_loader import LoadedModel
from realesrgan_ext.inference.tail_stripes import run_tail_in_stripes, stripe_rows
from realesrgan_ext.inference.upscaler import Upscaler, resolve_device
from realesrgan_ext.paths import cache_dir

ENGINES = ("pytorch", "openvino", "onnxruntime", "ncnn")
BACKENDS = ("auto", *ENGINES)
MIN_PSNR = {"fp32": 60.0, "bf16": 50.0}  # dB against the plain fp32 network on the probe image
# CPU candidates, fastest first (README "Performance"); each also satisfies a looser precision.
AUTO_ORDER = {
    "fp32": (("openvino", "fp32"), ("onnxruntime", "fp32"), ("pytorch", "fp32")),
    "bf16": (("openvino", "bf16"), ("pytorch", "bf16"), ("openvino", "fp32"), ("onnxruntime", "fp32"),
             ("pytorch", "fp32")),
}
ENGINE_PRECISIONS = {"openvino": ("fp32", "bf16"), "onnxruntime": ("fp32",), "ncnn": ("fp32",)}
PACKAGES = {"openvino": "openvino", "onnxruntime": "onnxruntime", "ncnn": "ncnn"}
# tile=0 (automatic) on OpenVINO with a striped RRDB tail: 512 px tiles waste less on tile_pad
# context (1024^2 input: 2 x 2 tiles, about 1.2x the untiled work, instead of 4 x 4, about 1.6x).
# Peak memory, 1024^2 x4 input, x4plus (benchmarks/inference_cpu.txt): PyTorch fp32 256 px 2.02 GB;
# OpenVINO bf16 512 px 1.98 GB, fp32 512 px 2.77 GB (its dynamic-shape graphs hold about twice a
# fixed-shape compile's buffers). onnxruntime keeps 256 px: 1.71 GB there, 2.52 GB at 512 px.
STRIPED_TILE = {"openvino": 512}
# Probe image (input px), rounded up to the model's size multiple: not square and not the ONNX
# export's tracing size (32), so a size baked into the exported graph shows up as a mismatch.
PROBE_SIZE = (36, 44)
CACHE_VERSION = "1"  # part of the ONNX cache key: bump when the export changes
OPENVINO_SOURCE = "openvino"  # what OpenVINO's compiled blobs are recorded as made from (it keys them itself)
TileFn = Callable[[torch.Tensor], torch.Tensor]


class EngineUnavailable(RuntimeError):
    """The engine's package is missing or it cannot run this model; the message says which and why."""


@dataclass
class EngineChoice:
    """What ``make_upscaler`` picked: engine, precision, the probe's PSNR and why others were passed over."""

    engine: str
    precision: str
    psnr: float | None = None  # None: not probed (pytorch at the precision asked)
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        checked = f", {self.psnr:.1f} dB vs fp32 network" if self.psnr is not None else ""
        return f"{self.engine} {self.precision}{checked}"


# --------------------------------------------------------------------------- ONNX export, cached


def model_key(model: LoadedModel) -> str:
    """sha256 of what the module computes: class, settings and every weight (name, dtype, shape, bytes).

    Hashed once per module and settings (x4plus: 67 MB, which ``auto`` needs up to three times): a
    loaded model's weights are not changed in place.
    """
    described = (model.name, repr(sorted(model.settings.items())))
    cached = _MODEL_KEYS.get(model.module)
    if cached is not None and cached[0] == described:
        return cached[1]
    key = _hash_model(model)
    _MODEL_KEYS[model.module] = (described, key)
    return key


_MODEL_KEYS: weakref.WeakKeyDictionary[nn.Module, tuple[tuple[str, str], str]] = weakref.WeakKeyDictionary()


def _hash_model(model: LoadedModel) -> str:
    digest = hashlib.sha256(f"{CACHE_VERSION}|{torch.__version__}|{type(model.module).__qualname__}|"
                            f"{model.name}|{sorted(model.settings.items())}".encode())
    for name, tensor in model.module.state_dict().items():
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


class _Method(nn.Module):
    """One method of a network as a module's forward (what the ONNX exporter traces)."""

    def __init__(self, net: nn.Module, method: str) -> None:
        super().__init__()
        self.net, self.method = net, method

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return getattr(self.net, self.method)(x)


def _export_part(model: LoadedModel, part: str, path: Path) -> None:
    from realesrgan_ext.inference.onnx_export import EXPORT_SIZE, export_module, export_onnx

    if part == "whole":
        export_onnx(model, path, dynamic=True, check=False)
        return
    net = model.module
    side = EXPORT_SIZE * max(model.size_multiple, 1)
    sample = torch.rand(1, model.in_channels, side, side)
    if part == "reconstruct":
        with torch.inference_mode():
            sample = net.features(sample).clone()
    with torch.no_grad():
        export_module(_Method(net, part).eval(), sample, path, dynamic=True)


def cached_onnx(model: LoadedModel, part: str = "whole") -> Path:
    """The dynamic-shape fp32 ONNX export of ``model`` (``part``: ``whole``, or an RRDB generator's
    ``features`` / ``reconstruct``), exported once (atomic write, hash recorded) and reused while
    it matches its record (``engine_cache.verified``)."""
    return _onnx_entry(model, part)[0]


def _onnx_entry(model: LoadedModel, part: str) -> tuple[Path, str]:
    """``cached_onnx``'s path and the sha256 it was verified (or recorded) with."""
    key = model_key(model)
    path = cache_dir("onnx") / f"{key}{'' if part == 'whole' else '-' + part}.onnx"
    digest = verified(path, key)
    if digest is not None:
        return path, digest
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.{uuid.uuid4().hex[:8]}.onnx")
    try:
        _export_part(model, part, tmp)
        os.replace(tmp, path)
        digest = write_record(path, key)
    except Exception as err:
        raise EngineUnavailable(f"{model.describe()}: ONNX export failed ({type(err).__name__}: {err})") from err
    finally:
        tmp.unlink(missing_ok=True)
    return path, digest


# --------------------------------------------------------------------------- engines


def _require(engine: str) -> None:
    if importlib.util.find_spec(PACKAGES[engine]) is None:
        raise EngineUnavailable(f"the {engine} engine needs its package: pip install {PACKAGES[engine]}")


def _onnxruntime(path: Path, precision: str, threads: int) -> TileFn:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return lambda x: torch.from_numpy(session.run(None, {"input": _numpy(x)})[0])


@functools.cache
def _openvino_core():
    """One ``ov.Core`` per process, shared by every compiled model: with a Core per compiled model
    (two for a striped RRDB), later Python code in the process crashed with SIGSEGV (openvino 2026.4.1)."""
    import openvino as ov

    core = ov.Core()
    core.set_property({"CACHE_DIR": str(cache_dir("openvino"))})  # OpenVINO's own compiled-model cache
    return core


def _openvino(path: Path, precision: str, threads: int) -> TileFn:
    core = _openvino_core()
    blobs = cache_dir("openvino")
    verify_folder(blobs, OPENVINO_SOURCE)  # a damaged compiled blob is removed before OpenVINO could load it
    # the hint is explicit both ways: OpenVINO picks bf16 by itself on CPUs that have it
    compiled = core.compile_model(str(path), "CPU", {
        "INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": {"fp32": "f32", "bf16": "bf16"}[precision],
        "PERFORMANCE_HINT": "LATENCY"})
    record_folder(blobs, OPENVINO_SOURCE)
    request = compiled.create_infer_request()
    return lambda x: torch.from_numpy(request.infer({0: _numpy(x)})[0].copy())


class StripedRRDB:
    """An RRDB generator as two exported graphs: ``features`` on the whole tile, ``reconstruct`` (the
    upsampling tail) in row stripes (``tail_stripes``), plus the network's own ``skip`` in PyTorch.
    Same output as the network (the three are its methods); the tail's full-tile activations never exist."""

    def __init__(self, net: RRDBGenerator, features: TileFn, reconstruct: TileFn) -> None:
        self.net, self.features, self.reconstruct = net, features, reconstruct
        self.files: dict[str, str] = {}  # engine file name -> sha256 (set by the builder)
        self.num_feat = net.conv_first.out_channels
        self.factor = net.scale * net.size_multiple  # output rows per feature row

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.features(x)
        rows = stripe_rows(self.num_feat, feat.shape[3], self.factor)
        out = run_tail_in_stripes(feat, self.reconstruct, self.factor, rows)
        with torch.inference_mode():
            skip = self.net.skip(x.float())
        return out if skip is None else out + skip


def _onnx_engine(session: Callable[[Path, str, int], TileFn]) -> Callable[[LoadedModel, str, int], TileFn]:
    def build(model: LoadedModel, precision: str, threads: int) -> TileFn:
        if isinstance(model.module, RRDBGenerator):
            entries = [_onnx_entry(model, "features"), _onnx_entry(model, "reconstruct")]
            run = StripedRRDB(model.module, *(session(path, precision, threads) for path, _ in entries))
        else:
            entries = [_onnx_entry(model, "whole")]
            run = _Tiles(session(entries[0][0], precision, threads))
        run.files = {path.name: digest for path, digest in entries}  # what checked_psnr's record is tied to
        return run

    return build


class _Tiles:
    """A tile function with the digests of the engine files it runs (``files``)."""

    def __init__(self, fn: TileFn) -> None:
        self.fn, self.files = fn, {}

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


def _ncnn(model: LoadedModel, precision: str, threads: int) -> TileFn:
    from realesrgan_ext.inference.ncnn_compact_engine import NcnnCompact, compact_parts
    from realesrgan_ext.inference.ncnn_engine import NcnnRRDB

    return NcnnCompact(model, threads) if compact_parts(model) is not None else NcnnRRDB(model, threads)


_BUILDERS = {"openvino": _onnx_engine(_openvino), "onnxruntime": _onnx_engine(_onnxruntime), "ncnn": _ncnn}


def _numpy(x: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(x.detach().float().cpu().numpy())


def build_engine(model: LoadedModel, engine: str, precision: str = "fp32", threads: int | None = None) -> TileFn:
    """A CPU ``tile_fn(x) -> y`` running ``model`` on ``engine`` (not ``pytorch``: that is the Upscaler's own).

    ``x``: float32 ``(N, C, h, w)`` in [0, 1]; ``y``: float32 ``(N, C_out, h*s, w*s)``, as the network.

    Raises:
        EngineUnavailable: package missing, precision not offered, or the model cannot be converted.
    """
    if engine not in _BUILDERS:
        raise ValueError(f"engine must be one of {tuple(_BUILDERS)}, got {engine!r}")
    if precision not in ENGINE_PRECISIONS[engine]:
        raise EngineUnavailable(f"the {engine} engine runs {' / '.join(ENGINE_PRECISIONS[engine])}, not {precision}")
    _require(engine)
    return _BUILDERS[engine](model, precision, threads or torch.get_num_threads())


# --------------------------------------------------------------------------- exactness probe


def probe_image(model: LoadedModel, size: int | tuple[int, int] = PROBE_SIZE) -> torch.Tensor:
    """A deterministic photo-like input (smooth shading, edges, fine texture), ``(1, C, h, w)`` in [0, 1]."""
    mult = max(model.size_multiple, 1)
    height, width = (-(-max(side, model.min_size) // mult) * mult for side in
                     (size if isinstance(size, tuple) else (size, size)))
    yy, xx = torch.meshgrid(torch.linspace(0, 1, height), torch.linspace(0, 1, width), indexing="ij")
    texture = torch.rand(height, width, generator=torch.Generator().manual_seed(0))
    planes = [0.5 + 0.3 * torch.sin(6 * xx + 2 * c) * torch.cos(5 * yy) + 0.15 * (xx > 0.5 + 0.1 * c) +
              0.05 * texture for c in range(model.in_channels)]
    return torch.stack(planes)[None].clamp(0, 1)


def psnr(output: torch.Tensor, reference: torch.Tensor) -> float:
    """PSNR in dB of two [0, 1] images (clamped as the Upscaler writes them)."""
    mse = float(torch.mean((output.float().clamp(0, 1) - reference.float().clamp(0, 1)) ** 2))
    return float("inf") if mse == 0 else 10 * float(np.log10(1 / mse))


def _reference(model: LoadedModel, x: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return model.module.float()(x)


def _pytorch_bf16(model: LoadedModel) -> TileFn:
    import copy

    net = copy.deepcopy(model.module).to(torch.bfloat16)
    return lambda x: net(x.to(torch.bfloat16)).float()


def check_engine(model: LoadedModel, run: TileFn, reference: torch.Tensor | None = None) -> float:
    """PSNR of ``run`` against the plain fp32 network on ``probe_image`` (inf when equal)."""
    x = probe_image(model)
    reference = _reference(model, x) if reference is None else reference
    with torch.inference_mode():
        out = run(x)
    if tuple(out.shape) != tuple(reference.shape):
        return float("-inf")
    return psnr(out, reference)


def _check_record(model: LoadedModel, engine: str, precision: str) -> Path:
    """Where the probe's PSNR for this model, engine, precision and engine version is kept (per machine)."""
    package = PACKAGES.get(engine)
    version = importlib.metadata.version(package) if package else torch.__version__
    return cache_dir("engine_checks") / f"{model_key(model)}-{engine}-{precision}-{version}.json"


def checked_psnr(model: LoadedModel, engine: str, precision: str, run: TileFn,
                 reference: Callable[[], torch.Tensor]) -> float:
    """``check_engine``'s PSNR, measured once per model, engine, precision and engine version on this machine,
    and again whenever the engine files ``run`` uses (``run.files``: name -> sha256) are not those measured."""
    record = _check_record(model, engine, precision)
    files = dict(getattr(run, "files", {}))
    try:
        stored = json.loads(record.read_text())
        if stored.get("files", {}) == files:
            return float(stored["psnr"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    quality = check_engine(model, run, reference())
    tmp = record.with_name(f".{record.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}")
    tmp.write_text(json.dumps({"psnr": quality, "engine": engine, "precision": precision, "files": files}))
    os.replace(tmp, record)
    return quality


# --------------------------------------------------------------------------- choosing


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` on CPU is fp32 (exact); on CUDA the Upscaler picks (fp16 / bf16)."""
    return "fp32" if precision == "auto" and device.type == "cpu" else precision


def _candidates(backend: str, precision: str, model: LoadedModel) -> list[tuple[str, str]]:
    if backend == "auto":
        return [*_compact_first(model, precision), *AUTO_ORDER[precision]]
    return [(backend, precision), ("pytorch", precision), ("pytorch", "fp32")]


def _compact_first(model: LoadedModel, precision: str) -> list[tuple[str, str]]:
    """ncnn first for a compact network in fp32: its Winograd 3x3 convolutions ran a 854x480 frame x4 of
    realesr-animevideov3 in 3.8 s against OpenVINO's 5.1 s and onnxruntime's 4.4 s (2 AVX2 cores)."""
    from realesrgan_ext.inference.ncnn_compact_engine import compact_parts

    return [("ncnn", "fp32")] if precision == "fp32" and compact_parts(model) is not None else []


def choose_engine(model: LoadedModel, backend: str = "auto", precision: str = "auto",
                  device: str | torch.device = "auto",
                  threads: int | None = None) -> tuple[EngineChoice, TileFn | None]:
    """The engine ``backend`` resolves to for ``model`` here, and its ``tile_fn`` (None: the Upscaler's network).

    See the module docstring for the rules. ``EngineChoice.notes`` says why a candidate was passed over.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    device = resolve_device(device)
    precision = resolve_precision(precision, device)
    if device.type != "cpu" or precision not in MIN_PSNR:
        notes = [] if backend in ("auto", "pytorch") else [f"{backend}: CPU fp32/bf16 only; using pytorch on {device}"]
        return EngineChoice("pytorch", precision, None, notes), None
    notes: list[str] = []
    reference: list[torch.Tensor] = []  # the plain network's probe output, computed when first needed

    def probe_reference() -> torch.Tensor:
        if not reference:
            reference.append(_reference(model, probe_image(model)))
        return reference[0]

    for engine, engine_precision in _candidates(backend, precision, model):
        if (engine, engine_precision) == ("pytorch", "fp32"):
            return EngineChoice(engine, engine_precision, None, notes), None
        try:
            run = _pytorch_bf16(model) if engine == "pytorch" else build_engine(model, engine, engine_precision,
                                                                                threads)
            quality = checked_psnr(model, engine, engine_precision, run, probe_reference)
        except Exception as err:  # noqa: BLE001  (any failure of an optional engine: fall back, say why)
            notes.append(f"{engine} {engine_precision}: {err}")
            continue
        if quality >= MIN_PSNR[precision]:
            return EngineChoice(engine, engine_precision, quality, notes), (None if engine == "pytorch" else run)
        notes.append(f"{engine} {engine_precision}: {quality:.1f} dB against the fp32 network, below the "
                     f"{MIN_PSNR[precision]:.0f} dB --precision {precision} asks for")
    raise AssertionError("unreachable: pytorch fp32 is always the last candidate")


def make_upscaler(model: LoadedModel, backend: str = "auto", precision: str = "auto",
                  device: str | torch.device = "auto", threads: int | None = None, **upscaler_options) -> Upscaler:
    """An ``Upscaler`` whose tiles run on the engine ``choose_engine`` picks; ``upscaler.engine`` says which.

    ``upscaler_options``: ``tile``, ``tile_pad``, ``alpha``, ``blend`` (see ``Upscaler``).
    """
    choice, run = choose_engine(model, backend, precision, device, threads)
    if not upscaler_options.get("tile") and isinstance(run, StripedRRDB) and choice.engine in STRIPED_TILE:
        upscaler_options = {**upscaler_options, "tile": STRIPED_TILE[choice.engine]}
    upscaler = Upscaler(model, precision="fp32" if run is not None else choice.precision, device=device,
                        tile_fn=run, **upscaler_options)
    upscaler.engine = choice
    return upscaler


__all__ = ["AUTO_ORDER", "BACKENDS", "ENGINES", "MIN_PSNR", "EngineChoice", "EngineUnavailable", "build_engine",
           "cached_onnx", "check_engine", "choose_engine", "make_upscaler", "model_key", "probe_image", "psnr"]
