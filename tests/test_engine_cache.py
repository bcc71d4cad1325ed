"""The engine cache proves itself: damaged or foreign entries are rebuilt with a note, the exactness
figure is that of the file in use, and cache folders are private (others' folders refused)."""

import importlib.util
import json
import logging
import os
import shutil
import stat

import pytest
import torch

from realesrgan_ext.archs.rrdb_arch import RRDBGenerator
from realesrgan_ext.inference import engines
from realesrgan_ext.inference.engine_cache import entry_problem, record_path
from realesrgan_ext.inference.model_loader import load_model
from realesrgan_ext.paths import CacheDirError, cache_dir

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("REALESRGAN_EXT_CACHE", str(tmp_path / "cache"))


def _model(seed: int):
    torch.manual_seed(seed)
    net = RRDBGenerator(num_feat=8, num_block=1, num_grow_ch=4, scale=4)
    with torch.no_grad():
        for param in net.parameters():
            param.add_(torch.randn_like(param) * 0.05)
    return load_model({"params_ema": net.state_dict()})


def _needs(package):
    if importlib.util.find_spec(package) is None:
        pytest.skip(f"{package} is not installed")


def test_damaged_and_foreign_onnx_entries_are_rebuilt_and_the_true_figure_printed(caplog):
    _needs("onnxruntime")
    a, b = _model(1), _model(2)
    choice, _ = engines.choose_engine(a, "onnxruntime", "fp32", "cpu")
    assert choice.engine == "onnxruntime" and choice.psnr > 60
    path_a = engines.cached_onnx(a, "features")
    choice_b, _ = engines.choose_engine(b, "onnxruntime", "fp32", "cpu")
    path_b = engines.cached_onnx(b, "features")
    assert entry_problem(path_a, engines.model_key(a)) is None
    truth = choice_b.psnr

    shutil.copy(path_a, path_b)  # other weights' graph under b's name, b's record kept: bytes do not match
    shutil.copy(path_a.with_name(path_a.name.replace("features", "reconstruct")),
                path_b.with_name(path_b.name.replace("features", "reconstruct")))
    with caplog.at_level(logging.WARNING, logger="realesrgan_ext.cache"):
        choice, run = engines.choose_engine(b, "onnxruntime", "fp32", "cpu")
    assert choice.engine == "onnxruntime" and choice.psnr == pytest.approx(truth)  # rebuilt: b's own figure
    assert f"note: engine cache: {path_b.name} is damaged (its bytes no longer match its recorded hash); " \
           "rebuilding it" in caplog.text
    assert engines.check_engine(b, run) == pytest.approx(truth)

    caplog.clear()
    shutil.copy(path_a, path_b)
    shutil.copy(record_path(path_a), record_path(path_b))  # a's file with a's record: consistent, but foreign
    with caplog.at_level(logging.WARNING, logger="realesrgan_ext.cache"):
        assert engines.cached_onnx(b, "features") == path_b
    assert "was made from other weights (a foreign entry)" in caplog.text
    assert entry_problem(path_b, engines.model_key(b)) is None

    caplog.clear()
    path_b.write_bytes(path_b.read_bytes()[:100])  # truncated: rebuilt, not a fall-back to PyTorch forever
    with caplog.at_level(logging.WARNING, logger="realesrgan_ext.cache"):
        choice, _ = engines.choose_engine(b, "onnxruntime", "fp32", "cpu")
    assert choice.engine == "onnxruntime" and "is damaged" in caplog.text and not choice.notes
    record_path(path_b).unlink()
    assert engines.cached_onnx(b, "features") == path_b and record_path(path_b).is_file()  # unrecorded: rebuilt


def test_a_stored_figure_for_other_files_is_measured_again():
    _needs("onnxruntime")
    model = _model(3)
    truth = engines.choose_engine(model, "onnxruntime", "fp32", "cpu")[0].psnr
    record = engines._check_record(model, "onnxruntime", "fp32")
    stored = json.loads(record.read_text())
    assert set(stored["files"]) == {p.name for p in cache_dir("onnx").glob("*.onnx")}
    record.write_text(json.dumps({**stored, "psnr": 148.7, "files": {"old.onnx": "0" * 64}}))
    assert engines.choose_engine(model, "onnxruntime", "fp32", "cpu")[0].psnr == pytest.approx(truth)
    record.write_text(json.dumps({**stored, "psnr": 148.7}))  # the same files: the record is trusted
    assert engines.choose_engine(model, "onnxruntime", "fp32", "cpu")[0].psnr == 148.7


def test_damaged_openvino_blobs_are_removed_before_openvino_loads_them(caplog):
    _needs("openvino")
    model = _model(4)
    assert engines.choose_engine(model, "openvino", "fp32", "cpu")[0].engine == "openvino"
    blobs = [p for p in cache_dir("openvino").iterdir() if p.is_file() and not p.name.endswith(".json")]
    assert blobs and all(record_path(p).is_file() for p in blobs)
    blobs[0].write_bytes(b"\0" * 64)
    with caplog.at_level(logging.WARNING, logger="realesrgan_ext.cache"):
        choice, _ = engines.choose_engine(model, "openvino", "fp32", "cpu")
    assert choice.engine == "openvino" and f"{blobs[0].name} is damaged" in caplog.text
    assert entry_problem(blobs[0], engines.OPENVINO_SOURCE) is None  # written again by OpenVINO, recorded


def test_cache_folders_are_private_and_shared_ones_refused(tmp_path, monkeypatch):
    folder = cache_dir("onnx")
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700 and stat.S_IMODE(folder.parent.stat().st_mode) == 0o700
    os.chmod(folder, 0o777)
    with pytest.raises(CacheDirError, match=f"cache folder {folder} can be written by others \\(mode 777\\); "
                                            f"refused, since files in it are loaded and run. Fix it: chmod 700"):
        cache_dir("onnx")
    choice, _ = engines.choose_engine(_model(5), "onnxruntime", "fp32", "cpu")
    assert choice.engine == "pytorch" and "can be written by others" in choice.notes[0]
    os.chmod(folder, 0o700)
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    monkeypatch.setenv("REALESRGAN_EXT_CACHE", str(shared))
    with pytest.raises(CacheDirError, match="Fix it: point REALESRGAN_EXT_CACHE at a private folder"):
        cache_dir("weights")
    link = tmp_path / "link"
    link.symlink_to(folder)
    monkeypatch.setenv("REALESRGAN_EXT_CACHE", str(link))
    with pytest.raises(CacheDirError, match="is not a plain folder"):
        cache_dir()
