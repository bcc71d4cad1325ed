"""Export a super-resolution model to ONNX and check the file against PyTorch with onnxruntime.

``export_onnx(model, path)`` loads ``model`` with the inference engine's loader (a checkpoint
path, an official model name such as ``realesrgan-x4plus``, or a ``LoadedModel``), exports it
with input ``input`` (N, C, H, W, RGB in [0, 1]) and output ``output`` (N, C, H*s, W*s), and
runs the ONNX file on onnxruntime's CPU provider on random inputs, comparing with PyTorch.

* ``dynamic=True``: batch, height and width are symbolic; the check runs two different sizes.
* ``fp16=True``: the network is exported in half precision: fp16 input, output and weights
  (PyTorch's own half export, so no extra converter is needed; the nearest-resize scales stay
  fp32 as ONNX requires). That model is meant for GPU execution providers (CUDA, TensorRT,
  DirectML); onnxruntime's CPU provider runs it too, slowly, which is how it is checked here.
* Export uses PyTorch's TorchScript-based exporter (``dynamo=False``): the newer
  torch.export-based one needs the ``onnxscript`` package, which this project does not install.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from realesrgan_ext.inference.bundled_models import is_official_name, official_model_path
from realesrgan_ext.inference.model_loader import LoadedModel, load_model

DEFAULT_OPSET = 17
INPUT_NAME, OUTPUT_NAME = "input", "output"
EXPORT_SIZE = 32  # input side used for tracing (a multiple of every size_multiple we know)
CHECK_SIZES = ((32, 32), (40, 24))  # dynamic exports are checked at two different shapes
# Largest |onnx - torch| accepted on [0, 1] outputs: fp32 differs by summation order only;
# fp16 rounds weights and activations to 11 significant bits.
TOLERANCE = {False: 1e-4, True: 2e-2}


class OnnxExportError(RuntimeError):
    """The exported file does not reproduce PyTorch's output, or could not be produced."""


@dataclass
class OnnxExportReport:
    path: Path
    opset: int
    dynamic: bool
    fp16: bool
    input_shape: tuple[int | str, ...]
    max_abs_diff: dict[str, float] = field(default_factory=dict)  # "HxW" -> |onnx - torch| max

    def describe(self) -> str:
        diffs = ", ".join(f"{size}: {diff:.2e}" for size, diff in self.max_abs_diff.items())
        return (f"{self.path} (opset {self.opset}, {'fp16' if self.fp16 else 'fp32'}, input "
                f"{'x'.join(map(str, self.input_shape))}); onnxruntime vs PyTorch max |diff|: {diffs}")


def resolve_model(model: str | Path | LoadedModel) -> LoadedModel:
    """A ``LoadedModel`` from a checkpoint path, an official model name or a ``LoadedModel``."""
    if isinstance(model, LoadedModel):
        return model
    if isinstance(model, str) and not Path(model).exists() and is_official_name(model):
        model = official_model_path(model)
    return load_model(model)


def export_module(module: nn.Module, sample: torch.Tensor, path: Path, dynamic: bool,
                  opset: int = DEFAULT_OPSET) -> None:
    """``torch.onnx.export`` of ``module`` traced on ``sample``, input ``input``, output ``output``."""
    axes = {INPUT_NAME: {0: "batch", 2: "height", 3: "width"},
            OUTPUT_NAME: {0: "batch", 2: "out_height", 3: "out_width"}} if dynamic else None
    with warnings.catch_warnings():
        # the TorchScript exporter announces its own deprecation on every call
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.onnx")
        # input-size checks in forward (x1 / x2 need even sizes) are guards, not part of the graph
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        torch.onnx.export(module, (sample,), str(path), dynamo=False, input_names=[INPUT_NAME],
                          output_names=[OUTPUT_NAME], dynamic_axes=axes, opset_version=opset,
                          do_constant_folding=True)


def check_onnx(path: str | Path, module: nn.Module, shapes: list[tuple[int, int, int, int]], fp16: bool,
               seed: int = 0) -> dict[str, float]:
    """Run the ONNX file on onnxruntime (CPU) and PyTorch (fp32) on random inputs; max |diff| per shape."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    generator = torch.Generator().manual_seed(seed)
    diffs = {}
    for shape in shapes:
        x = torch.rand(shape, generator=generator)
        feed = x.half().numpy() if fp16 else x.numpy()
        (got,) = session.run([OUTPUT_NAME], {INPUT_NAME: feed})
        with torch.inference_mode():
            want = module(x.half().float() if fp16 else x).numpy()
        if got.shape != want.shape:
            raise OnnxExportError(f"{path}: ONNX output shape {got.shape} != PyTorch {want.shape} for input {shape}")
        diffs[f"{shape[2]}x{shape[3]}"] = float(np.abs(got.astype(np.float32) - want).max())
    return diffs


def export_onnx(model: str | Path | LoadedModel, output: str | Path, *, dynamic: bool = False, fp16: bool = False,
                opset: int = DEFAULT_OPSET, size: int = EXPORT_SIZE, check: bool = True) -> OnnxExportReport:
    """Export ``model`` to ``output`` and (``check``) verify it with onnxruntime.

    ``size``: input height and width of a static export (and the tracing size of a dynamic one),
    rounded up to the model's size multiple.

    Raises:
        OnnxExportError: onnxruntime's output differs from PyTorch's by more than ``TOLERANCE``.
    """
    import onnx

    loaded = resolve_model(model)
    module = loaded.module.float().eval().cpu()
    mult = max(loaded.size_multiple, 1)
    size = -(-max(size, loaded.min_size, 1) // mult) * mult
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    sample = torch.rand(1, loaded.in_channels, size, size)
    to_export = copy.deepcopy(module).half() if fp16 else module
    with torch.no_grad():
        export_module(to_export, sample.half() if fp16 else sample, output, dynamic, opset)
    onnx.checker.check_model(str(output))
    input_dims = onnx.load(str(output), load_external_data=False).graph.input[0].type.tensor_type.shape.dim
    report = OnnxExportReport(path=output, opset=opset, dynamic=dynamic, fp16=fp16,
                              input_shape=tuple(d.dim_param or d.dim_value for d in input_dims))
    if check:
        if dynamic:
            shapes = [(1, loaded.in_channels, -(-h // mult) * mult, -(-w // mult) * mult) for h, w in CHECK_SIZES]
        else:
            shapes = [(1, loaded.in_channels, size, size)]
        report.max_abs_diff = check_onnx(output, module, shapes, fp16)
        worst = max(report.max_abs_diff.values())
        if worst > TOLERANCE[fp16]:
            raise OnnxExportError(f"{output}: onnxruntime differs from PyTorch by {worst:.3g} "
                                  f"(> {TOLERANCE[fp16]}): {report.max_abs_diff}")
    return report

