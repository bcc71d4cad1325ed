"""Tiny data builders shared by the tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np


def smooth_image(h: int, w: int, seed: int = 0, channels: int = 3) -> np.ndarray:
    """A deterministic uint8 image with structure at several scales (not plain noise)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (max(h // 4, 2), max(w // 4, 2), channels), dtype=np.uint8)
    img = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    return img if channels > 1 else img[:, :, None]


def write_pair_folders(root: Path, names: list[str], hr_size: int = 32, scale: int = 4,
                       lr_ext: str = ".png") -> tuple[Path, Path]:
    """``root/high_res`` and ``root/low_res`` with bicubic-downscaled partners."""
    hr_dir, lr_dir = root / "high_res", root / "low_res"
    for i, name in enumerate(names):
        hr = smooth_image(hr_size, hr_size, seed=i)
        lr = cv2.resize(hr, (hr_size // scale, hr_size // scale), interpolation=cv2.INTER_AREA)
        (hr_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (lr_dir / name).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(hr_dir / f"{name}.png"), hr)
        cv2.imwrite(str(lr_dir / f"{name}{lr_ext}"), lr)
    return hr_dir, lr_dir


def edited_ncnn_layers(files: tuple[Path, Path], old: str, new: str) -> list:
    """An ncnn model's layers with the first ``old`` in its ``.param`` text replaced by ``new``."""
    from realesrgan_ext.inference.ncnn_import import load_bin, parse_param

    param, weights = files
    text = param.read_text()
    assert old in text
    return load_bin(parse_param(text.replace(old, new, 1)), weights.read_bytes())


def ncnn_runtime_output(param: Path, weights: Path, chw: np.ndarray) -> np.ndarray:
    """What the ncnn runtime itself computes for a CHW float image (CPU, fp32 throughout), as
    realesrgan-ncnn-vulkan feeds it (RGB in [0, 1]); skips the test without the ``ncnn`` package."""
    import pytest

    from realesrgan_ext.inference.ncnn_import import io_blob_names, read_param

    ncnn = pytest.importorskip("ncnn")
    net = ncnn.Net()
    opt = net.opt
    opt.use_vulkan_compute = opt.use_fp16_packed = opt.use_fp16_storage = opt.use_fp16_arithmetic = False
    opt.use_bf16_storage = False
    opt.num_threads = 1
    assert net.load_param(str(param)) == 0 and net.load_model(str(weights)) == 0
    in_blob, out_blob = io_blob_names(read_param(param))
    extractor = net.create_extractor()
    chw = np.ascontiguousarray(chw)  # ncnn.Mat wraps this buffer without copying: keep it alive
    extractor.input(in_blob, ncnn.Mat(chw))
    ret, out = extractor.extract(out_blob)
    assert ret == 0
    return np.array(out)


def run_train(root: Path, opt_path: Path, *args: str, timeout: int = 600) -> str:
    """``python train.py -opt OPT ARGS`` in ``root`` (a copy of train.py is there); its output, or fail with it."""
    proc = subprocess.run([sys.executable, "train.py", "-opt", str(opt_path), *args], cwd=root,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def read_log(exp: Path) -> str:
    """Every ``train_*.log`` of an experiment folder, in order."""
    return "\n".join(p.read_text() for p in sorted(exp.glob("train_*.log")))
