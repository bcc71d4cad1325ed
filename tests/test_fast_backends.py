"""Fast CPU backends: every runner reproduces the PyTorch network, alone and inside the Upscaler."""

import importlib.util

import numpy as np
import pytest
import torch

from realesrgan_ext.archs.rrdb_arch import RRDBGenerator
from realesrgan_ext.inference.fast_backends import (
    BackendUnavailable,
    TorchRRDB,
    attach_backend,
    make_tile_fn,
    nnpack_available,
    run_tail_in_stripes,
)
from realesrgan_ext.inference.model_loader import load_model
from realesrgan_ext.inference.upscaler import Upscaler

# 16 channels: wide enough for NNPACK's Winograd path, small enough to run in milliseconds
SMALL = {"num_feat": 16, "num_block": 1, "num_grow_ch": 16}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _model(**settings):
    net = RRDBGenerator(**{**SMALL, **settings})
    with torch.no_grad():  # BasicSR's 0.1-scaled init leaves the dense blocks nearly silent: wake them up
        for param in net.parameters():
            param.add_(torch.randn_like(param) * 0.05)
    return load_model({"params_ema": net.state_dict()})


def _reference(model, x):
    with torch.no_grad():
        return model.module(x)


@pytest.mark.parametrize("scale, threads", [(4, 1), (4, 3), (8, 2), (2, 2)])
@pytest.mark.parametrize("winograd", [False, True])
def test_torch_runner_matches_the_network(scale, threads, winograd):
    if winograd and not nnpack_available():
        pytest.skip("this PyTorch has no NNPACK")
    model = _model(scale=scale)
    x = torch.rand(1, 3, 26, 18)  # x4 with 3 threads: three trunk bands of 8 / 9 rows
    runner = TorchRRDB(model, winograd=winograd, threads=threads)
    out = runner(x)
    assert out.shape == (1, 3, 26 * scale, 18 * scale)
    # Winograd transforms round differently from direct convolution, at the 1e-5 level
    np.testing.assert_allclose(out, _reference(model, x), atol=1e-4 if winograd else 1e-5)
    if winograd:  # NNPACK really ran: its rounding differs from oneDNN's
        assert not torch.equal(out, TorchRRDB(model, winograd=False)(x))


def test_more_bands_than_threads(monkeypatch):
    """Bands are also capped by size (BAND_BYTES): four 8-row bands on two threads, still exact."""
    from realesrgan_ext.inference import fast_backends

    monkeypatch.setattr(fast_backends, "BAND_BYTES", 1)
    model = _model()
    x = torch.rand(1, 3, 32, 12)
    runner = TorchRRDB(model, winograd=False, threads=2)
    with torch.inference_mode():
        assert len(runner._bands(runner.conv(x, "conv_first"))) == 4
    np.testing.assert_allclose(runner(x), _reference(model, x), atol=1e-5)


def test_striped_tail_is_exact():
    model = _model()
    runner = TorchRRDB(model, winograd=False)
    with torch.inference_mode():
        feat = runner.trunk(torch.rand(1, 3, 21, 9))
        whole = runner.tail(feat)
        for rows in (1, 3, 8):  # stripes as thin as one feature row still see their 2-row halo
            torch.testing.assert_close(run_tail_in_stripes(feat, runner.tail, runner.factor, rows), whole,
                                       atol=1e-6, rtol=0)


@pytest.mark.parametrize("backend", ["ncnn", "onnxruntime", "openvino"])
def test_other_runtimes_match_the_network(backend):
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} not installed")
    model = _model()
    x = torch.rand(1, 3, 20, 26)
    out = make_tile_fn(model, backend, threads=1)(x)
    np.testing.assert_allclose(out, _reference(model, x), atol=1e-5)


def test_ncnn_refuses_what_it_cannot_write():
    if importlib.util.find_spec("ncnn") is None:
        pytest.skip("ncnn not installed")
    with pytest.raises(BackendUnavailable, match="x4 / x8"):
        make_tile_fn(_model(scale=2), "ncnn")


def test_upscaler_with_backend_gives_the_same_image():
    model = _model()
    rgb = (np.random.default_rng(0).random((40, 36, 3)) * 255).astype(np.uint8)
    plain = Upscaler(model, tile=16, tile_pad=4, precision="fp32", device="cpu").upscale(rgb)
    fast = attach_backend(Upscaler(model, tile=16, tile_pad=4, precision="fp32", device="cpu"), "torch")
    assert isinstance(fast.net, TorchRRDB)
    out = fast.upscale(rgb)
    assert out.shape == plain.shape == (160, 144, 3)
    assert np.abs(out.astype(int) - plain.astype(int)).max() <= 1  # uint8 rounding of ~1e-5 differences


def test_bad_backend_names_and_devices():
    model = _model()
    with pytest.raises(ValueError, match="backend must be one of"):
        make_tile_fn(model, "tensorrt")
    upscaler = Upscaler(model, precision="bf16", device="cpu")
    with pytest.raises(BackendUnavailable, match="fp32"):
        attach_backend(upscaler, "torch")
