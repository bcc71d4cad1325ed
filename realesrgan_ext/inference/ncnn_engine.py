"""x4 / x8 RRDB generators on ncnn's CPU runtime (PyPI ``ncnn``), the upsampling tail in row stripes.

The graph is written from the weights by ``ncnn_writer`` (the layout of the official Real-ESRGAN
ncnn files), which expresses x4 / x8 RRDB generators with ``nearest`` upsampling and no global
skip; any other model is refused (``EngineUnavailable``). ``tests/test_engines.py`` checks the
output against the network for each generator option.

Memory: the tail runs in row stripes (``tail_stripes``).
"""

from __future__ import annotations

import importlib.util
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from realesrgan_ext.inference.engines import EngineUnavailable
from realesrgan_ext.inference.model_loader import LoadedModel
from realesrgan_ext.inference.ncnn_import import STAGES_BY_SCALE
from realesrgan_ext.inference.ncnn_runtime import extract
from realesrgan_ext.inference.ncnn_writer import rrdb_to_ncnn_layers, write_ncnn
from realesrgan_ext.inference.tail_stripes import run_tail_in_stripes, stripe_rows

TileFn = Callable[[torch.Tensor], torch.Tensor]
def ncnn_supports(model: LoadedModel) -> str | None:
    """None when the ncnn graph expresses ``model``, else why not."""
    from realesrgan_ext.inference.ncnn_compact_engine import compact_parts

    module, settings = model.module, model.settings
    if compact_parts(model) is not None:
        return None  # ncnn_compact_engine.NcnnCompact
    if model.name != "RRDB":
        return f"{model.name} is neither an RRDB generator nor an SRVGGNetCompact with PReLU"
    if getattr(module, "upsampler", "nearest") != "nearest":
        return f"upsampler {module.upsampler!r} (the ncnn graph has nearest x2 stages only)"
    if getattr(module, "global_skip", None):
        return f"global_skip={module.global_skip!r} (the ncnn graph has no global skip)"
    if int(settings.get("scale", model.scale)) not in STAGES_BY_SCALE:
        return f"x{model.scale} (the ncnn graph has no pixel-unshuffle; x4 / x8 only)"
    return None


class NcnnRRDB:
    """An x4 / x8 RRDB generator on ncnn's CPU runtime; the tail runs in row stripes.

    The weights are written as fp32 ncnn files (a temporary folder, read back at once), so the
    output matches PyTorch's to float rounding (about 1e-6).
    """

    def __init__(self, model: LoadedModel, threads: int | None = None) -> None:
        if importlib.util.find_spec("ncnn") is None:
            raise EngineUnavailable("the ncnn engine needs the ncnn runtime: pip install ncnn")
        why_not = ncnn_supports(model)
        if why_not:
            raise EngineUnavailable(f"the ncnn engine cannot run {model.describe()}: {why_not}")
        settings = model.settings
        import ncnn

        self._ncnn = ncnn
        state_dict = {k: v.detach().float().cpu() for k, v in model.module.state_dict().items()}
        self.num_feat = int(state_dict["conv_first.weight"].shape[0])
        self.factor = 2 ** STAGES_BY_SCALE[int(settings.get("scale", model.scale))]
        self.threads = threads or torch.get_num_threads()
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
            raise EngineUnavailable(f"ncnn could not load the {name} graph written from this model")
        return net

    def _run(self, net, chw: np.ndarray) -> np.ndarray:
        return extract(self._ncnn, net, chw)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        outputs = []
        for image in x.detach().float().cpu():
            feat = torch.from_numpy(self._run(self.trunk_net, image.numpy()))[None]
            rows = stripe_rows(self.num_feat, feat.shape[3], self.factor)
            tail = lambda f: torch.from_numpy(self._run(self.tail_net, f[0].numpy()))[None]  # noqa: E731
            outputs.append(run_tail_in_stripes(feat, tail, self.factor, rows))
        return torch.cat(outputs)
