"""SRVGGNetCompact (realesr-animevideov3) on ncnn's CPU runtime: ncnn's Winograd 3x3 convolutions.

The graph is written from the loaded weights (the layout of the official ``realesr-animevideov3``
ncnn files, which ``ncnn_compact`` reads): convolutions and PReLUs, a pixel shuffle, plus the
nearest-upsampled input. A ``ResizedOutput`` wrapper (the x2 / x3 files) runs its resize in
PyTorch after the ncnn graph, exactly as the module does. Weights stay fp32 (fp16 storage off),
so the output matches the network to float rounding. Measured on one 854x480 frame x4 (2 AVX2
cores): 3.8 s against 5.1 s for OpenVINO fp32 and 6.7 s for plain PyTorch.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from realesrgan_ext.inference.model_loader import LoadedModel
from realesrgan_ext.inference.ncnn_compact import COMPACT_TYPE, PIXELSHUFFLE_FACTOR, PIXELSHUFFLE_MODE
from realesrgan_ext.inference.ncnn_import import BINARYOP_ADD, INTERP_NEAREST, PRELU_NUM_SLOPE, NcnnLayer
from realesrgan_ext.inference.ncnn_runtime import extract
from realesrgan_ext.inference.ncnn_writer import _GraphWriter, write_ncnn
from realesrgan_ext.inference.resized_output import ResizedOutput


def compact_parts(model: LoadedModel) -> tuple[torch.nn.Module, ResizedOutput | None] | None:
    """The SRVGGNetCompact inside ``model`` and its ``ResizedOutput`` wrapper (or None), or None when not one."""
    module = model.module
    wrapper = module if isinstance(module, ResizedOutput) else None
    net = wrapper.net if wrapper is not None else module
    if type(net).__name__ != COMPACT_TYPE or getattr(net, "act_type", "prelu") != "prelu":
        return None
    return net, wrapper


def compact_to_ncnn_layers(net: torch.nn.Module) -> list[NcnnLayer]:
    """The ncnn graph of an SRVGGNetCompact with PReLU activations (``body`` = conv, PReLU, ..., conv)."""
    state = {k: v.detach().float().cpu() for k, v in net.state_dict().items()}
    graph = _GraphWriter()
    data = graph.add("Input", "input", [], output="data")
    x, index = data, 0
    while f"body.{index}.weight" in state:
        x = graph.conv(f"body.{index}", x, state, leaky=False)
        slopes = state.get(f"body.{index + 1}.weight")
        if slopes is None:
            break
        x = graph.add("PReLU", f"body_{index + 1}", [x], {PRELU_NUM_SLOPE: int(slopes.numel())},
                      weights={"weight": slopes.numpy().ravel()})
        index += 2
    upscale = int(net.upscale)
    x = graph.add("PixelShuffle", "upsampler", [x], {PIXELSHUFFLE_FACTOR: upscale, PIXELSHUFFLE_MODE: 0})
    base = graph.add("Interp", "base", [data], {0: INTERP_NEAREST, 1: float(upscale), 2: float(upscale)})
    graph.add("BinaryOp", "add", [x, base], {0: BINARYOP_ADD}, output="output")
    return graph.finish()


class NcnnCompact:
    """An SRVGGNetCompact (optionally inside ``ResizedOutput``) as a CPU ``tile_fn`` on ncnn."""

    def __init__(self, model: LoadedModel, threads: int) -> None:
        import ncnn

        parts = compact_parts(model)
        if parts is None:
            raise ValueError(f"{model.describe()} is not an SRVGGNetCompact with PReLU")
        self._ncnn, (net, self.wrapper) = ncnn, parts
        self.net = ncnn.Net()
        opt = self.net.opt
        opt.use_vulkan_compute = False
        opt.use_fp16_packed = opt.use_fp16_storage = opt.use_fp16_arithmetic = False
        opt.use_bf16_storage = opt.use_int8_inference = False
        opt.use_winograd_convolution = True
        opt.num_threads = threads
        with tempfile.TemporaryDirectory(prefix="realesrgan_ext_ncnn_") as folder:
            param, weights = Path(folder) / "compact.param", Path(folder) / "compact.bin"
            write_ncnn(compact_to_ncnn_layers(net), param, weights)
            if self.net.load_param(str(param)) != 0 or self.net.load_model(str(weights)) != 0:
                raise RuntimeError("ncnn could not load the graph written from this compact model")

    def _run(self, chw: np.ndarray) -> np.ndarray:
        return extract(self._ncnn, self.net, chw)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.stack([torch.from_numpy(self._run(image.numpy())) for image in x.detach().float().cpu()])
        if self.wrapper is None:
            return out
        height, width = x.shape[-2:]
        size = (height * self.wrapper.scale, width * self.wrapper.scale)
        return F.interpolate(out, size=size, mode=self.wrapper.mode, align_corners=False)
