"""Inference engines: each computes the network for every generator option, or refuses it; auto picks and falls back."""

import dataclasses
import importlib.util

import numpy as np
import pytest
import torch

from realesrgan_ext.archs.rrdb_arch import RRDBGenerator
from realesrgan_ext.inference import engines
from realesrgan_ext.inference.engines import EngineUnavailable, build_engine, choose_engine, make_upscaler
from realesrgan_ext.inference.model_loader import load_model
from realesrgan_ext.inference.ncnn_engine import ncnn_supports
from realesrgan_ext.inference.tail_stripes import run_tail_in_stripes
from realesrgan_ext.inference.upscaler import Upscaler

SMALL = {"num_feat": 8, "num_block": 1, "num_grow_ch": 4}
# every generator option: global skip kinds, x1 / x2 / x4 / x8, pixel-shuffle upsampling
OPTIONS = [
    {"scale": 4}, {"scale": 4, "global_skip": "bicubic"}, {"scale": 4, "global_skip": "bilinear"},
    {"scale": 1}, {"scale": 2, "global_skip": "bicubic"}, {"scale": 8, "global_skip": "bilinear"}, {"scale": 8},
    {"scale": 4, "upsampler": "pixelshuffle"}, {"scale": 2, "upsampler": "pixelshuffle", "global_skip": "bilinear"},
]
EXACT_FP32 = 1e-5  # |engine - network| on [0, 1]: summation order only


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("REALESRGAN_EXT_CACHE", str(tmp_path / "cache"))


def _model(**options):
    arch = {**SMALL, **options}
    net = RRDBGenerator(**arch)
    with torch.no_grad():  # the 0.1-scaled init leaves the dense blocks nearly silent: wake them up
        for param in net.parameters():
            param.add_(torch.randn_like(param) * 0.05)
    return load_model({"params_ema": net.state_dict(), "arch": {"type": "RRDBGenerator", **arch}})


def _installed(engine):
    if importlib.util.find_spec(engines.PACKAGES[engine]) is None:
        pytest.skip(f"{engine} is not installed")


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "-".join(f"{v}" for v in o.values()))
@pytest.mark.parametrize("engine, precision, min_psnr", [
    ("onnxruntime", "fp32", None), ("openvino", "fp32", None), ("openvino", "bf16", 50.0), ("ncnn", "fp32", None)])
def test_engine_computes_the_network_or_refuses(engine, precision, min_psnr, options):
    _installed(engine)
    model = _model(**options)
    x = engines.probe_image(model, 20)
    with torch.no_grad():
        want = model.module(x)
    if engine == "ncnn" and ncnn_supports(model):
        with pytest.raises(EngineUnavailable, match="cannot run"):
            build_engine(model, engine, precision, threads=1)
        return
    with torch.inference_mode():
        got = build_engine(model, engine, precision, threads=1)(x)
    assert got.shape == want.shape and got.dtype == torch.float32
    if min_psnr is None:
        assert float((got - want).abs().max()) < EXACT_FP32
    else:
        assert engines.psnr(got, want) >= min_psnr


def test_openvino_compiled_models_share_one_core():
    """A Core per compiled model (a striped RRDB has two) later crashed the process with SIGSEGV."""
    _installed("openvino")
    assert engines._openvino_core() is engines._openvino_core()


def test_ncnn_refuses_only_what_its_graph_lacks():
    assert ncnn_supports(_model(scale=4)) is None and ncnn_supports(_model(scale=8)) is None
    assert "global_skip" in ncnn_supports(_model(scale=4, global_skip="bicubic"))
    assert "pixel-unshuffle" in ncnn_supports(_model(scale=2))
    assert "nearest" in ncnn_supports(_model(scale=4, upsampler="pixelshuffle"))


def test_onnx_export_is_cached_by_weights_and_settings():
    _installed("onnxruntime")
    model = _model(scale=4)
    path = engines.cached_onnx(model)
    stamp = path.stat().st_mtime_ns
    assert engines.cached_onnx(model) == path and path.stat().st_mtime_ns == stamp  # reused, not re-exported
    other = _model(scale=4, global_skip="bicubic")  # same keys and shapes, different computation
    assert engines.model_key(other) != engines.model_key(model)
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name, f"{path.name}.json"]  # no temporary left


def test_model_key_hashes_the_weights_once_per_module_and_settings(monkeypatch):
    model = _model(scale=4)
    hashed = []
    real_hash = engines._hash_model
    monkeypatch.setattr(engines, "_hash_model", lambda m: hashed.append(m) or real_hash(m))
    first = engines.model_key(model)
    assert engines.model_key(model) == first and len(hashed) == 1  # the cached key, not a second hash
    changed = dataclasses.replace(model, settings={**model.settings, "global_skip": "bicubic"})
    assert engines.model_key(changed) != first and len(hashed) == 2  # other settings: hashed again


def test_auto_picks_the_first_engine_that_meets_the_precision(monkeypatch):
    model = _model(scale=4, global_skip="bicubic")
    calls = []

    def fake_build(model, engine, precision, threads=None):
        calls.append((engine, precision))
        if engine == "openvino":
            raise EngineUnavailable("openvino: not here")
        return lambda x: model.module(x) + 0.01  # 40 dB: fine for nothing asked here

    monkeypatch.setattr(engines, "build_engine", fake_build)
    choice, run = choose_engine(model, "auto", "fp32", "cpu")
    assert (choice.engine, choice.precision, run) == ("pytorch", "fp32", None)
    assert calls == [("openvino", "fp32"), ("onnxruntime", "fp32")]
    assert "not here" in choice.notes[0] and "below the 60 dB" in choice.notes[1]

    monkeypatch.setattr(engines, "build_engine", lambda model, engine, precision, threads=None: model.module)
    choice, run = choose_engine(model, "auto", "bf16", "cpu")
    assert (choice.engine, choice.precision, choice.psnr) == ("openvino", "bf16", float("inf"))
    assert run is model.module


def test_an_explicit_engine_that_cannot_run_the_model_falls_back_with_a_note():
    model = _model(scale=2, global_skip="bicubic")
    choice, run = choose_engine(model, "ncnn", "fp32", "cpu")
    assert (choice.engine, run) == ("pytorch", None)
    assert any("ncnn fp32" in note and "global_skip" in note for note in choice.notes)
    with pytest.raises(ValueError, match="backend must be one of"):
        choose_engine(model, "tensorrt", "fp32", "cpu")


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_auto_upscaler_matches_the_plain_one(precision):
    model = _model(scale=4, global_skip="bicubic")
    image = (np.random.default_rng(0).random((18, 22, 3)) * 255).astype(np.uint8)
    plain = Upscaler(model, tile=12, tile_pad=4, precision="fp32", device="cpu").upscale(image)
    fast = make_upscaler(model, "auto", precision, "cpu", tile=12, tile_pad=4)
    assert fast.engine.precision in (precision, "fp32")
    assert fast.engine.engine in engines.ENGINES and fast.engine.describe() in repr(fast)
    diff = np.abs(fast.upscale(image).astype(int) - plain.astype(int))
    assert diff.max() <= (1 if fast.engine.precision == "fp32" else 8)


def test_tail_stripes_are_exact():
    conv = torch.nn.Conv2d(2, 2, 3, padding=1)

    def tail(f):
        return conv(torch.nn.functional.interpolate(f, scale_factor=2, mode="nearest"))

    feat = torch.rand(1, 2, 23, 9)
    with torch.no_grad():
        assert torch.allclose(run_tail_in_stripes(feat, tail, 2, 5), tail(feat), atol=1e-6)


def test_the_probe_runs_once_per_model_engine_and_precision(monkeypatch):
    model = _model(scale=4)
    monkeypatch.setattr(engines, "build_engine", lambda model, engine, precision, threads=None: model.module)
    first, _ = choose_engine(model, "auto", "fp32", "cpu")
    monkeypatch.setattr(engines, "check_engine", lambda *args: pytest.fail("probed again"))
    again, _ = choose_engine(model, "auto", "fp32", "cpu")
    assert (first.engine, first.psnr) == (again.engine, again.psnr) == ("openvino", float("inf"))


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "-".join(f"{v}" for v in o.values()))
def test_striped_tail_is_exact_for_every_option(options, monkeypatch):
    _installed("onnxruntime")
    monkeypatch.setattr(engines, "stripe_rows", lambda *args: 2)  # many 2-row stripes, each with its halo
    model = _model(**options)
    x = engines.probe_image(model, (24, 20))
    run = build_engine(model, "onnxruntime", "fp32", threads=1)
    assert isinstance(run, engines.StripedRRDB)
    with torch.inference_mode():
        got, want = run(x), model.module(x)
    assert float((got - want).abs().max()) < EXACT_FP32


def test_automatic_tile_is_larger_only_for_striped_openvino(monkeypatch):
    model = _model(scale=4)
    striped = engines.StripedRRDB(model.module, model.module.features, model.module.reconstruct)
    monkeypatch.setattr(engines, "build_engine", lambda model, engine, precision, threads=None: striped)
    assert make_upscaler(model, "openvino", "bf16", "cpu").tile == engines.STRIPED_TILE["openvino"] == 512
    assert make_upscaler(model, "openvino", "fp32", "cpu", tile=64).tile == 64
    assert make_upscaler(model, "onnxruntime", "fp32", "cpu").tile == 256
    monkeypatch.setattr(engines, "build_engine", lambda model, engine, precision, threads=None: model.module)
    assert make_upscaler(model, "openvino", "fp32", "cpu").tile == 256  # not striped: whole tiles
