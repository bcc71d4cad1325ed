"""RRDB generators written as ncnn ``.param`` / ``.bin`` files (the ncnn CPU backend runs them).

``rrdb_to_ncnn_layers`` builds the same graph structure as the official Real-ESRGAN ncnn files
(checked against the network by ``tests/test_engines.py``); ``write_ncnn`` writes it. Only what
that graph expresses is written: x4 / x8, ``nearest`` upsampling and no ``global_skip``; any
other generator option is refused (``NcnnImportError``), never dropped.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from realesrgan_ext.inference.ncnn_import import (
    ACTIVATION_LEAKY_RELU,
    ARRAY_KEY_BASE,
    BINARYOP_ADD,
    CONV_ACTIVATION,
    CONV_ACTIVATION_PARAMS,
    CONV_BIAS_TERM,
    CONV_KERNEL_W,
    CONV_NUM_OUTPUT,
    CONV_PAD_LEFT,
    CONV_WEIGHT_SIZE,
    DENSE_LAYERS,
    ELTWISE_SUM,
    INTERP_NEAREST,
    LRELU_SLOPE,
    PARAM_MAGIC,
    RDBS_PER_RRDB,
    RESIDUAL_SCALE,
    STAGES_BY_SCALE,
    TAG_FP16,
    NcnnImportError,
    NcnnLayer,
    _align4,
)


def _format_value(value: int | float) -> str:
    return f"{value:e}" if isinstance(value, float) else str(value)


def _format_params(params: dict[int, int | float | list[int | float]]) -> str:
    items = []
    for key, value in params.items():
        if isinstance(value, list):
            items.append(f"{ARRAY_KEY_BASE - key}={len(value)}," + ",".join(_format_value(v) for v in value))
        else:
            items.append(f"{key}={_format_value(value)}")
    return " ".join(items)


class _GraphWriter:
    """Builds an ncnn layer list; ``finish`` inserts the Split layers ncnn needs for shared blobs."""

    def __init__(self) -> None:
        self.layers: list[NcnnLayer] = []

    def add(self, layer_type: str, name: str, inputs: list[str], params=None, output: str | None = None,
            weights: dict[str, np.ndarray] | None = None) -> str:
        output = output or f"{name}_out"
        self.layers.append(NcnnLayer(layer_type, name, list(inputs), [output], dict(params or {}), weights or {}))
        return output

    def conv(self, key: str, blob: str, state_dict: dict[str, torch.Tensor], leaky: bool,
             output: str | None = None) -> str:
        weight = state_dict[f"{key}.weight"].detach().float().cpu().numpy()
        bias = state_dict[f"{key}.bias"].detach().float().cpu().numpy()
        out_ch, _in_ch, kernel_h, kernel_w = weight.shape
        if (kernel_h, kernel_w) != (3, 3):
            raise NcnnImportError(f"{key}: expected a 3x3 convolution, got {kernel_h}x{kernel_w}")
        params = {CONV_NUM_OUTPUT: out_ch, CONV_KERNEL_W: 3, CONV_PAD_LEFT: 1, CONV_BIAS_TERM: 1,
                  CONV_WEIGHT_SIZE: int(weight.size)}
        if leaky:
            params |= {CONV_ACTIVATION: ACTIVATION_LEAKY_RELU, CONV_ACTIVATION_PARAMS: [LRELU_SLOPE]}
        return self.add("Convolution", key.replace(".", "_"), [blob], params, output,
                        {"weight": weight, "bias": bias})

    def finish(self) -> list[NcnnLayer]:
        consumers: dict[str, list[tuple[int, int]]] = {}
        for index, layer in enumerate(self.layers):
            for slot, blob in enumerate(layer.inputs):
                consumers.setdefault(blob, []).append((index, slot))
        splits: dict[int, list[NcnnLayer]] = {}
        for blob, users in consumers.items():
            if len(users) < 2:
                continue
            parts = [f"{blob}_splitncnn_{i}" for i in range(len(users))]
            for (index, slot), part in zip(users, parts, strict=True):
                self.layers[index].inputs[slot] = part
            producer = next(i for i, layer in enumerate(self.layers) if blob in layer.outputs)
            splits.setdefault(producer, []).append(NcnnLayer("Split", f"{blob}_split", [blob], parts))
        layers = []
        for index, layer in enumerate(self.layers):
            layers.append(layer)
            layers += splits.get(index, [])
        return layers


NCNN_PARTS = ("full", "trunk", "tail")


def rrdb_to_ncnn_layers(state_dict: dict[str, torch.Tensor], arch: dict, part: str = "full") -> list[NcnnLayer]:
    """The ncnn graph of an RRDB generator (same structure as the official Real-ESRGAN files).

    ``arch`` holds ``RRDBGenerator`` options; x4 and x8 with the ``nearest`` upsampler and no
    ``global_skip`` are supported (anything else raises ``NcnnImportError``). ``part``: ``full``; ``trunk``
    (image -> ``conv_first + conv_body(body(...))`` features); ``tail`` (those features -> image,
    the upsampling stages). The input blob is always ``data``, the output ``output``.
    """
    scale, upsampler = int(arch.get("scale", 4)), arch.get("upsampler", "nearest")
    if scale not in STAGES_BY_SCALE or upsampler != "nearest":
        raise NcnnImportError(f"only x4 / x8 RRDB generators with nearest upsampling can be written to ncnn, "
                              f"not scale {scale} with upsampler {upsampler!r}")
    if arch.get("global_skip"):
        raise NcnnImportError(f"the ncnn graph has no global skip; a generator with global_skip="
                              f"{arch['global_skip']!r} cannot be written to ncnn")
    if part not in NCNN_PARTS:
        raise ValueError(f"part must be one of {NCNN_PARTS}, got {part!r}")
    num_block = int(arch.get("num_block", 1 + max(int(k.split(".")[1]) for k in state_dict if k.startswith("body."))))
    graph = _GraphWriter()
    x = graph.add("Input", "input", [], output="data")
    if part != "tail":
        x = trunk = graph.conv("conv_first", x, state_dict, leaky=False)
        for block in range(num_block):
            rrdb_in = x
            for rdb in range(1, RDBS_PER_RRDB + 1):
                feats = [x]
                for k in range(1, DENSE_LAYERS + 1):
                    key = f"body.{block}.rdb{rdb}.conv{k}"
                    blob = feats[0] if k == 1 else graph.add("Concat", f"{key}_cat".replace(".", "_"), feats, {0: 0})
                    feats.append(graph.conv(key, blob, state_dict, leaky=k < DENSE_LAYERS))
                x = graph.add("Eltwise", f"body_{block}_rdb{rdb}_add", [feats[-1], x],
                              {0: ELTWISE_SUM, 1: [RESIDUAL_SCALE, 1.0]})
            x = graph.add("Eltwise", f"body_{block}_add", [x, rrdb_in], {0: ELTWISE_SUM, 1: [RESIDUAL_SCALE, 1.0]})
        body = graph.conv("conv_body", x, state_dict, leaky=False)
        x = graph.add("BinaryOp", "trunk_add", [trunk, body], {0: BINARYOP_ADD},
                      output="output" if part == "trunk" else None)
    if part != "trunk":
        for stage in range(1, STAGES_BY_SCALE[scale] + 1):
            x = graph.add("Interp", f"upsample{stage}", [x], {0: INTERP_NEAREST, 1: 2.0, 2: 2.0})
            x = graph.conv(f"conv_up{stage}", x, state_dict, leaky=True)
        x = graph.conv("conv_hr", x, state_dict, leaky=True)
        graph.conv("conv_last", x, state_dict, leaky=False, output="output")
    return graph.finish()


def write_ncnn(layers: list[NcnnLayer], param_path: str | Path, bin_path: str | Path, fp16: bool = False) -> None:
    """Write an ncnn .param (text) and .bin; Convolution weights as fp32 (flag 0) or fp16 (tagged), PReLU slopes."""
    blobs = {blob for layer in layers for blob in layer.inputs + layer.outputs}
    lines = [str(PARAM_MAGIC), f"{len(layers)} {len(blobs)}"]
    chunks = []
    for layer in layers:
        blob_names = " ".join(layer.inputs + layer.outputs)
        lines.append(f"{layer.type:<24} {layer.name:<24} {len(layer.inputs)} {len(layer.outputs)} {blob_names} "
                     f"{_format_params(layer.params)}".rstrip())
        if layer.type == "Convolution":
            weight = layer.weights["weight"].ravel()
            if fp16:
                data = weight.astype("<f2").tobytes()
                chunks += [TAG_FP16.to_bytes(4, "little"), data, b"\0" * (_align4(len(data)) - len(data))]
            else:
                chunks += [b"\0\0\0\0", weight.astype("<f4").tobytes()]
            chunks.append(layer.weights["bias"].astype("<f4").tobytes())
        elif layer.type == "PReLU":  # the slopes, raw float32 (PReLU::load_model)
            chunks.append(layer.weights["weight"].astype("<f4").tobytes())
    Path(param_path).write_text("\n".join(lines) + "\n", encoding="utf-8")
    Path(bin_path).write_bytes(b"".join(chunks))
