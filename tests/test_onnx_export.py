"""ONNX export of a tiny RRDB: dynamic and static shapes, fp16, and onnxruntime agreeing with PyTorch."""

from pathlib import Path

import numpy as np
import pytest
import torch

from realesrgan_ext.archs.rrdb_arch import RRDBGenerator
from realesrgan_ext.inference.model_loader import load_model
from realesrgan_ext.inference.onnx_export import OnnxExportError, check_onnx, export_onnx
from tests.helpers import load_script

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

REPO = Path(__file__).resolve().parents[1]
TINY = {"num_feat": 8, "num_block": 1, "num_grow_ch": 4}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def tiny_checkpoint(tmp_path):
    net = RRDBGenerator(**TINY)
    with torch.no_grad():  # BasicSR's 0.1-scaled init makes the dense blocks nearly silent: wake them up
        for param in net.parameters():
            param.add_(torch.randn_like(param) * 0.05)
    path = tmp_path / "tiny.pth"
    torch.save({"params_ema": net.state_dict()}, path)
    return path


def _dims(path):
    dims = onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim
    return [d.dim_param or d.dim_value for d in dims]


def test_dynamic_export_runs_at_two_sizes(tiny_checkpoint, tmp_path):
    report = export_onnx(tiny_checkpoint, tmp_path / "tiny.onnx", dynamic=True)
    assert _dims(report.path) == ["batch", 3, "height", "width"]
    assert set(report.max_abs_diff) == {"32x32", "40x24"} and max(report.max_abs_diff.values()) < 1e-4

    # independently of export_onnx's own check: other shapes and a batch of two, against PyTorch
    session = ort.InferenceSession(str(report.path), providers=["CPUExecutionProvider"])
    net = load_model(tiny_checkpoint).module
    for shape in [(1, 3, 17, 29), (2, 3, 12, 12)]:
        x = torch.rand(shape)
        (got,) = session.run(None, {"input": x.numpy()})
        with torch.no_grad():
            want = net(x).numpy()
        assert got.shape == (shape[0], 3, shape[2] * 4, shape[3] * 4)
        np.testing.assert_allclose(got, want, atol=1e-4)


def test_static_export_has_fixed_shape(tiny_checkpoint, tmp_path):
    report = export_onnx(tiny_checkpoint, tmp_path / "static.onnx", size=20)
    assert _dims(report.path) == [1, 3, 20, 20] and list(report.max_abs_diff) == ["20x20"]
    session = ort.InferenceSession(str(report.path), providers=["CPUExecutionProvider"])
    with pytest.raises(Exception, match="(?i)dimension|shape"):
        session.run(None, {"input": np.zeros((1, 3, 24, 24), np.float32)})


def test_fp16_export_has_half_inputs_and_weights(tiny_checkpoint, tmp_path):
    report = export_onnx(tiny_checkpoint, tmp_path / "half.onnx", dynamic=True, fp16=True)
    graph = onnx.load(str(report.path)).graph
    fp16 = onnx.TensorProto.FLOAT16
    assert graph.input[0].type.tensor_type.elem_type == fp16 and graph.output[0].type.tensor_type.elem_type == fp16
    conv_weights = {node.input[1] for node in graph.node if node.op_type == "Conv"}
    assert conv_weights and all(init.data_type == fp16 for init in graph.initializer if init.name in conv_weights)
    # onnxruntime's CPU provider has fp16 kernels for this graph: the check ran and stayed close
    assert 0 < max(report.max_abs_diff.values()) < 2e-2


def test_check_detects_a_wrong_model(tiny_checkpoint, tmp_path):
    report = export_onnx(tiny_checkpoint, tmp_path / "tiny.onnx", dynamic=True)
    other = RRDBGenerator(**TINY).eval()  # different random weights
    diffs = check_onnx(report.path, other, [(1, 3, 16, 16)], fp16=False)
    assert diffs["16x16"] > 1e-3


def test_export_raises_on_mismatch(tiny_checkpoint, tmp_path, monkeypatch):
    from realesrgan_ext.inference import onnx_export

    monkeypatch.setattr(onnx_export, "TOLERANCE", {False: 0.0, True: 0.0})
    with pytest.raises(OnnxExportError, match="differs from PyTorch"):
        export_onnx(tiny_checkpoint, tmp_path / "tiny.onnx", dynamic=True)


def test_export_script(tiny_checkpoint, tmp_path, capsys):
    script = load_script("export_onnx")
    out = tmp_path / "cli.onnx"
    assert script.main(["-m", str(tiny_checkpoint), "-o", str(out), "--dynamic", "--opset", "18"]) == 0
    assert onnx.load(str(out)).opset_import[0].version == 18 and "onnxruntime vs PyTorch" in capsys.readouterr().out
    assert script.main(["-m", str(tmp_path / "missing.pth"), "-o", str(out)]) == 1
