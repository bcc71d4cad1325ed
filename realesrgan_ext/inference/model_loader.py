"""Loading super-resolution checkpoints into a ready-to-run module, safely.

``load_model(source)`` accepts a path (``.pth`` / ``.pt`` / ``.ckpt`` / ``.safetensors``) or an
in-memory state dict and returns a ``LoadedModel``: the module (eval mode, fp32, CPU) plus the
facts the inference engine needs (scale, channels, input size multiple, fp16/bf16 support).

* Checkpoint layout: ``params_ema`` is preferred, then ``params``, then a few other wrapper keys
  (``state_dict``, ``model``, ``net``), then the dict itself as a bare state dict; a
  ``module.`` prefix (DataParallel / DDP) is stripped.
* Our training checkpoints (and the ncnn importer's) record the network options under
  ``'arch'`` (``{'type': 'RRDBGenerator', 'num_feat': ..., 'global_skip': ...}``): the class is
  taken from BasicSR's ARCH_REGISTRY and built with them, since some options (``global_skip``)
  leave no trace in the keys. Only the classes and sizes ``arch_allowlist`` allows are built.
* Real-ESRGAN's compact network (``'arch'`` type ``SRVGGNetCompact``, e.g. the converted
  realesr-animevideov3 models) is built from spandrel's definition, without basicsr; its
  checkpoint may add ``resize_output`` (``{'mode': 'bicubic', 'scale': 2}``: the x2 / x3 models
  are the x4 network with its output resized, see ``resized_output``; their keys are then
  ``ResizedOutput``'s, ``net.body.0.weight``..., and older conversions' unprefixed keys load too).
* RRDB checkpoints (ours, BasicSR's, Real-ESRGAN's, and ESRGAN's 2019 ``RRDB_trunk`` naming)
  load into ``RRDBGenerator`` with settings inferred from the keys, a variant's key prefix included
  (see ``infer_rrdb_settings``); recorded ``'arch'`` options, then explicit ``settings``, override
  what is inferred.
* Anything else goes to spandrel's key detection (EDSR-like, RCAN, SwinIR, Real-ESRGAN
  Compact, old-style ``model.N`` ESRGAN, ...). Nothing is ever downloaded.
* Security: ``.pth`` files are read with ``torch.load(weights_only=True)``. A pickle that
  references anything but tensors and plain containers is refused with ``UnsafeCheckpointError``
  naming the file; nothing in it is executed. What a file declares is bounded (``Limits``)
  before it is inflated, walked or built: its zip entries' sizes (``model_size``), the
  nesting of its containers (``checkpoint_structure``), the elements of its weights and of the
  network built from them; over a limit, ``ModelTooLargeError``. Every error is a
  ``ModelLoadError`` whose message names the file.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from realesrgan_ext.archs.rrdb_arch import UNSHUFFLE_FACTOR, RRDBGenerator, split_variant_prefix
from realesrgan_ext.inference.arch_allowlist import ArchRecordError, check_arch_record
from realesrgan_ext.inference.checkpoint_structure import check_structure, short_repr, short_text
from realesrgan_ext.inference.model_errors import ModelLoadError, ModelTooLargeError, UnsafeCheckpointError
from realesrgan_ext.inference.model_size import build_budget, check_checkpoint_file, check_weights
from realesrgan_ext.inference.resized_output import resized_net_state, with_resized_output
from realesrgan_ext.limits import Limits

# Wrapper keys tried in order; the first one holding a dict of tensors is the state dict.
STATE_DICT_KEYS = ("params_ema", "params", "state_dict", "model", "net")
# The same as key prefixes of a flat file (a whole BasicSR checkpoint saved as safetensors).
# Not "model.": old-style ESRGAN state dicts are named model.0.weight, model.1.sub.0...
FLAT_PREFIXES = ("params_ema", "params")
STRIPPED_PREFIXES = ("module.",)
PTH_SUFFIXES = (".pth", ".pt", ".ckpt")
RRDB_TYPES = ("RRDBGenerator", "RRDBNet")  # 'arch' types built as RRDBGenerator (same keys and options)
COMPACT_TYPE = "SRVGGNetCompact"  # 'arch' type built from spandrel's SRVGGNetCompact (BasicSR's keys and options)
SAFETENSORS_SUFFIX = ".safetensors"
IN_MEMORY = "<state dict>"  # the source name of a state dict passed in memory

# ESRGAN's 2019 repository names -> BasicSR names (same tensors, same shapes).
_ESRGAN_2019_RENAMES = (
    (re.compile(r"^RRDB_trunk\.(\d+)\.RDB(\d)\."), r"body.\1.rdb\2."),
    (re.compile(r"^trunk_conv\."), "conv_body."),
    (re.compile(r"^upconv(\d)\."), r"conv_up\1."),
    (re.compile(r"^HRconv\."), "conv_hr."),
)
_RRDB_REQUIRED = ("conv_first.weight", "body.0.rdb1.conv1.weight", "conv_body.weight", "conv_hr.weight",
                  "conv_last.weight")
# conv_first input channels / conv_last output channels -> scale (pixel-unshuffle by 4 / 2 / none)
_UNSHUFFLE_RATIO_TO_SCALE = {UNSHUFFLE_FACTOR[s] ** 2: s for s in (1, 2, 4)}
__all__ = ["LoadedModel", "ModelLoadError", "ModelTooLargeError", "UnsafeCheckpointError", "extract_state_dict",
           "infer_rrdb_settings", "load_model", "read_checkpoint"]


@dataclass
class LoadedModel:
    """A model ready for ``Upscaler``, and what the engine must know about it.

    Attributes:
        module: the network, eval mode, float32, on CPU. Takes ``(N, in_channels, H, W)`` in
            [0, 1] (RGB order for 3 channels) and returns ``(N, out_channels, H*scale, W*scale)``.
        name: architecture name (``"RRDB"`` or spandrel's architecture name).
        scale: upscaling factor (1, 2, 4, 8, ...).
        in_channels, out_channels: image channels the network reads and writes.
        size_multiple: input height and width must be multiples of this (pixel-unshuffle
            factor for x1/x2 RRDB, window size for some transformers); ``Upscaler`` pads.
        min_size: smallest input height/width the network accepts (0 = any).
        supports_fp16, supports_bf16: whether half / bfloat16 inference gives sane results.
        prefers_bf16: on a GPU with bf16, ``precision='auto'`` picks bf16 over fp16 (models
            whose activations overflow fp16).
        source: the file it came from, or ``"<state dict>"``.
        settings: constructor arguments of the RRDB generator (empty for spandrel models).
    """

    module: nn.Module
    name: str
    scale: int
    in_channels: int
    out_channels: int
    size_multiple: int = 1
    min_size: int = 0
    supports_fp16: bool = True
    supports_bf16: bool = True
    prefers_bf16: bool = False
    source: str = "<state dict>"
    settings: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        """One line for logs, e.g. ``RRDB x4 3->3 ch (num_block=23, ...) from RealESRGAN_x4plus.pth``."""
        extra = ", ".join(f"{k}={short_text(v, 40) if isinstance(v, str) else short_repr(v, 40)}"
                          for k, v in self.settings.items() if k not in ("scale",))
        extra = f" ({extra})" if extra else ""
        return f"{self.name} x{self.scale} {self.in_channels}->{self.out_channels} ch{extra} from {self.source}"


class _SpandrelModule(nn.Module):
    """A spandrel descriptor as a plain module: ``forward`` is the descriptor's call (it pads to the
    model's size requirements, runs and clamps); the network is a child so ``.to()`` moves it."""

    def __init__(self, descriptor: Any) -> None:
        super().__init__()
        self.net = descriptor.model
        self._descriptor = descriptor  # not a Module attribute: keeps the state dict keys those of net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._descriptor(x)


def load_model(source: str | Path | Mapping[str, Any], settings: Mapping[str, Any] | None = None,
               limits: Limits | None = None) -> LoadedModel:
    """Load a checkpoint file or a state dict (see the module docstring for what is accepted).

    Args:
        source: a ``.pth``/``.pt``/``.ckpt``/``.safetensors`` path, or a (possibly wrapped) state dict.
        settings: RRDBGenerator arguments overriding the inferred ones, e.g. ``{"scale": 2}``;
            only for RRDB checkpoints.
        limits: bounds on what the checkpoint may declare (default: ``Limits.from_env()``).

    Raises:
        UnsafeCheckpointError: the pickle references code; it was not executed.
        ModelTooLargeError: the file declares more than ``limits`` allow; nothing was built.
        ModelLoadError: unreadable file, unknown architecture, or weights that do not fit.
    """
    limits = limits or Limits.from_env()
    name = str(source) if isinstance(source, (str, Path)) else IN_MEMORY
    raw = read_checkpoint(source, limits) if isinstance(source, (str, Path)) else source
    check_structure(raw, name, limits)
    state = extract_state_dict(raw, name)
    check_weights(state, name, limits)
    state = _rename_esrgan_2019(state)
    recorded = raw.get("arch") if isinstance(raw, Mapping) else None
    with build_budget(name, limits, state):
        if isinstance(recorded, Mapping):
            return _load_recorded(raw, recorded, state, name, settings)
        if all(k in split_variant_prefix(state)[0] for k in _RRDB_REQUIRED):
            return _load_rrdb(state, name, settings)
        if settings:
            raise ModelLoadError(f"{name}: explicit settings are only supported for RRDB checkpoints "
                                 f"(its keys are not RRDB's: {_key_sample(state)})")
        return _load_spandrel(state, name)


def _load_recorded(raw: Mapping[str, Any], recorded: Mapping[str, Any], state: dict[str, torch.Tensor], name: str,
                   settings: Mapping[str, Any] | None) -> LoadedModel:
    """A checkpoint whose ``'arch'`` record names the class and options (checked against the allowlist)."""
    try:  # only our generator classes, with bounded sizes
        check_arch_record(recorded, name, default_type=RRDB_TYPES[0])
    except ArchRecordError as err:
        raise ModelLoadError(str(err)) from err
    opts = {k: v for k, v in recorded.items() if k != "type"}
    arch_type = recorded.get("type", RRDB_TYPES[0])
    if arch_type == COMPACT_TYPE:
        resize = raw.get("resize_output")
        net_state = state if resize is None else resized_net_state(state)  # ResizedOutput's keys: net.*
        loaded = _load_compact({**opts, **(settings or {})}, net_state, name)
        return loaded if resize is None else with_resized_output(loaded, resize, name)
    if arch_type not in RRDB_TYPES:
        return _load_registered(str(arch_type), {**opts, **(settings or {})}, state, name)
    return _load_rrdb(state, name, {**opts, **(settings or {})})


def read_checkpoint(path: str | Path, limits: Limits | None = None) -> Mapping[str, Any]:
    """Read a checkpoint file without running any code from it, after bounding what it inflates to."""
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"{path}: no such model file")
    suffix = path.suffix.lower()
    if suffix not in PTH_SUFFIXES + (SAFETENSORS_SUFFIX,):
        raise ModelLoadError(f"{path}: unknown model file type {short_repr(suffix)}; expected one of "
                             f"{', '.join(PTH_SUFFIXES + (SAFETENSORS_SUFFIX,))}")
    check_checkpoint_file(path, limits or Limits.from_env())
    if suffix == SAFETENSORS_SUFFIX:
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError) as err:
            raise ModelLoadError(f"{path}: not a valid safetensors file ({short_text(str(err), 200)})") from err
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        detail = _unpickler_reason(str(err)) or type(err).__name__
        raise UnsafeCheckpointError(
            f"{path}: refused to load: the checkpoint pickles Python objects other than tensors and "
            f"plain containers, and unpickling them could run arbitrary code ({short_text(detail)}). Nothing "
            f"from it was executed. If you trust its origin, re-save only its weights, e.g. as .safetensors.") from err
    except Exception as err:  # noqa: BLE001  (damaged files fail anywhere inside torch.load, with any type)
        reason = short_text(str(err).splitlines()[0] if str(err) else type(err).__name__, 200)
        raise ModelLoadError(f"{path}: not a readable PyTorch checkpoint ({reason})") from err


def extract_state_dict(checkpoint: Mapping[str, Any], source: str = "<state dict>") -> dict[str, torch.Tensor]:
    """The tensors to load: ``params_ema`` > ``params`` > other wrappers > the dict itself.

    Flat files with ``params_ema.`` / ``params.`` key prefixes (a whole checkpoint saved as
    safetensors) are handled the same way; ``module.`` prefixes are stripped.
    """
    if not isinstance(checkpoint, Mapping):
        raise ModelLoadError(f"{source}: expected a dict of tensors, got {type(checkpoint).__name__}")
    _check_keys(checkpoint, source)
    state: Mapping[str, Any] = checkpoint
    for key in STATE_DICT_KEYS:
        inner = checkpoint.get(key)
        if isinstance(inner, Mapping) and _has_tensors(inner):
            _check_keys(inner, source)
            state = inner
            break
        flat = {k[len(key) + 1:]: v for k, v in checkpoint.items() if k.startswith(f"{key}.")}
        if key in FLAT_PREFIXES and flat and _has_tensors(flat):
            state = flat
            break
    tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise ModelLoadError(f"{source}: no weights found (top-level keys: {_key_sample(checkpoint)})")
    for prefix in STRIPPED_PREFIXES:
        tensors = {k.removeprefix(prefix): v for k, v in tensors.items()}
    return tensors


def infer_rrdb_settings(state: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """RRDBGenerator arguments from BasicSR-named keys.

    num_feat: conv_first out channels; num_grow_ch: rdb1.conv1 out channels; num_block: highest
    ``body.N`` + 1; num_out_ch: conv_last out channels; scale 8 when ``conv_up3`` (or
    ``conv_shuffle3``) exists, else from conv_first in channels / num_out_ch (1 -> x4, 4 -> x2 with
    a 2x pixel-unshuffle, 16 -> x1 with 4x), which also gives num_in_ch. Keys under a variant's prefix
    (``bicubic_skip.conv_first.weight``, see ``rrdb_arch.variant_prefix``) also give upsampler and global_skip.
    """
    state, variant = split_variant_prefix(dict(state))
    conv_first = state["conv_first.weight"]
    num_out_ch = int(state["conv_last.weight"].shape[0])
    first_in = int(conv_first.shape[1])
    upsampler = "pixelshuffle" if "conv_shuffle1.weight" in state else "nearest"
    up = "conv_shuffle" if upsampler == "pixelshuffle" else "conv_up"
    if f"{up}3.weight" in state:
        scale, num_in_ch = 8, first_in
    elif first_in % num_out_ch == 0 and first_in // num_out_ch in _UNSHUFFLE_RATIO_TO_SCALE:
        ratio = first_in // num_out_ch
        scale, num_in_ch = _UNSHUFFLE_RATIO_TO_SCALE[ratio], num_out_ch
    else:
        raise ModelLoadError(f"cannot infer scale: conv_first takes {first_in} channels and conv_last gives "
                             f"{num_out_ch}; pass settings={{'scale': ..., 'num_in_ch': ...}}")
    blocks = [int(m.group(1)) for k in state if (m := re.match(r"body\.(\d+)\.", k))]
    return {
        "num_in_ch": num_in_ch,
        "num_out_ch": num_out_ch,
        "scale": scale,
        "num_feat": int(conv_first.shape[0]),
        "num_block": max(blocks) + 1,
        "num_grow_ch": int(state["body.0.rdb1.conv1.weight"].shape[0]),
        "upsampler": upsampler,
        **variant,
    }


def _load_rrdb(state: dict[str, torch.Tensor], source: str, settings: Mapping[str, Any] | None) -> LoadedModel:
    if settings:
        try:
            inferred = infer_rrdb_settings(state)
        except ModelLoadError:
            inferred = {}
        merged = {**inferred, **settings}
    else:
        try:
            merged = infer_rrdb_settings(state)
        except ModelLoadError as err:
            raise ModelLoadError(f"{source}: {err}") from err
    try:
        with torch.device("meta"):  # no random init of weights that are loaded next (seconds for x4plus)
            module = RRDBGenerator(**merged)
    except (TypeError, ValueError) as err:
        raise ModelLoadError(f"{source}: bad RRDB settings {short_repr(merged)}: {short_text(str(err))}") from err
    try:
        # assign: the parameters become these tensors (copies of a caller's in-memory state dict)
        owned = state if isinstance(source, str) and source != IN_MEMORY else {k: v.clone() for k, v in state.items()}
        module.load_state_dict(owned, strict=True, assign=True)
    except RuntimeError as err:
        raise ModelLoadError(f"{source}: weights do not fit RRDBGenerator({short_repr(merged)}): "
                             f"{short_text(str(err), 300)}") from err
    module.float().eval().requires_grad_(False)
    return LoadedModel(module=module, name="RRDB", scale=module.scale, in_channels=module.num_in_ch,
                       out_channels=module.num_out_ch, size_multiple=module.size_multiple,
                       supports_fp16=True, supports_bf16=True, source=source, settings=dict(merged))


def _load_compact(opts: dict[str, Any], state: dict[str, torch.Tensor], source: str) -> LoadedModel:
    """Real-ESRGAN's SRVGGNetCompact from its recorded options (spandrel's definition: no basicsr)."""
    from spandrel.architectures.Compact import Compact

    try:
        module = Compact(**opts)
        module.load_state_dict(state, strict=True)
    except (TypeError, ValueError, RuntimeError) as err:
        raise ModelLoadError(f"{source}: weights do not fit {COMPACT_TYPE}({short_repr(opts)}): "
                             f"{short_text(str(err), 300)}") from err
    module.eval().requires_grad_(False)
    return LoadedModel(module=module, name=COMPACT_TYPE, scale=module.upscale, in_channels=module.num_in_ch,
                       out_channels=module.num_out_ch, source=source, settings=dict(opts))


def _load_registered(arch_type: str, opts: dict[str, Any], state: dict[str, torch.Tensor],
                     source: str) -> LoadedModel:
    """A checkpoint whose ``'arch'`` names another of our architectures (e.g. SRResNetGenerator)."""
    from realesrgan_ext import registry

    registry.import_part_modules("arch")
    archs = registry.recorded("arch")
    if arch_type not in archs:
        raise ModelLoadError(f"{source}: its 'arch' names {arch_type!r}, which no registered architecture "
                             "of realesrgan_ext is")
    try:
        module = archs[arch_type](**opts)
        module.load_state_dict(state, strict=True)
    except (TypeError, ValueError, RuntimeError) as err:
        raise ModelLoadError(f"{source}: weights do not fit {arch_type}({short_repr(opts)}): "
                             f"{short_text(str(err), 300)}") from err
    scale = getattr(module, "scale", opts.get("scale", opts.get("upscale")))
    in_ch = getattr(module, "num_in_ch", opts.get("num_in_ch"))
    out_ch = getattr(module, "num_out_ch", opts.get("num_out_ch"))
    if not all(isinstance(v, int) for v in (scale, in_ch, out_ch)):
        raise ModelLoadError(f"{source}: {arch_type} does not say its scale and channels "
                             "(attributes scale, num_in_ch, num_out_ch)")
    module.eval().requires_grad_(False)
    return LoadedModel(module=module, name=arch_type, scale=scale, in_channels=in_ch, out_channels=out_ch,
                       size_multiple=int(getattr(module, "size_multiple", 1)), source=source, settings=dict(opts))


def _load_spandrel(state: dict[str, torch.Tensor], source: str) -> LoadedModel:
    from spandrel import ImageModelDescriptor, ModelLoader, UnsupportedModelError

    try:
        descriptor = ModelLoader(device="cpu").load_from_state_dict(state)
    except UnsupportedModelError as err:
        raise ModelLoadError(f"{source}: unknown architecture: neither RRDB keys nor one spandrel recognises "
                             f"(keys: {_key_sample(state)})") from err
    except ModelLoadError:
        raise
    except Exception as err:  # noqa: BLE001  (spandrel recognised the keys; damaged weights fail with any type)
        reason = short_text(str(err).splitlines()[0] if str(err) else "", 200)
        raise ModelLoadError(f"{source}: looks like a model spandrel knows, but its weights do not fit it "
                             f"(damaged or edited checkpoint: {type(err).__name__}: {reason})") from err
    if not isinstance(descriptor, ImageModelDescriptor):
        raise ModelLoadError(f"{source}: {descriptor.architecture.name} is a {descriptor.purpose} model, "
                             "not a single-image super-resolution/restoration model")
    req = descriptor.size_requirements
    if req.square:
        raise ModelLoadError(f"{source}: {descriptor.architecture.name} needs square inputs, which the tiled "
                             "upscaler does not support")
    descriptor.eval()
    module = _SpandrelModule(descriptor).eval().requires_grad_(False)
    return LoadedModel(module=module, name=descriptor.architecture.name, scale=descriptor.scale,
                       in_channels=descriptor.input_channels, out_channels=descriptor.output_channels,
                       size_multiple=req.multiple_of, min_size=req.minimum,
                       supports_fp16=descriptor.supports_half, supports_bf16=descriptor.supports_bfloat16,
                       prefers_bf16=descriptor.supports_bfloat16 and not descriptor.supports_half,
                       source=source)


def _rename_esrgan_2019(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    if "conv_first.weight" not in state or not any(k.startswith("RRDB_trunk.") for k in state):
        return state
    renamed = {}
    for key, value in state.items():
        for pattern, repl in _ESRGAN_2019_RENAMES:
            key = pattern.sub(repl, key)
        renamed[key] = value
    return renamed


def _unpickler_reason(text: str) -> str:
    """The line of torch's weights-only error that says what was refused (a GLOBAL, an opcode)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    named = [line for line in lines if "GLOBAL" in line or "global" in line or "Unsupported" in line]
    return (named or lines or [""])[0]


def _has_tensors(d: Mapping[str, Any]) -> bool:
    return any(isinstance(v, torch.Tensor) for v in d.values())


def _key_sample(d: Mapping[str, Any], n: int = 6) -> str:
    keys = list(d)
    return ", ".join(short_repr(k, 60).strip("'") for k in keys[:n]) + \
        (f", ... ({len(keys)} keys)" if len(keys) > n else "")


def _check_keys(d: Mapping[Any, Any], source: str) -> None:
    """Refuse a dict with a key that is not a string (state dicts and checkpoints are keyed by names)."""
    odd = next((k for k in d if not isinstance(k, str)), None)
    if odd is not None:
        raise ModelLoadError(f"{source}: has a key that is not a string ({short_repr(odd, 60)}, a "
                             f"{type(odd).__name__}); a checkpoint's keys are names")
