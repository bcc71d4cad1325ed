"""test.py: BasicSR's test_pipeline on this project's parts, writing metrics and images."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml
from basicsr.metrics import calculate_psnr
from helpers import write_pair_folders

from realesrgan_ext.archs.rrdb_arch import RRDBGenerator

REPO = Path(__file__).resolve().parents[1]
ARCH = {"type": "RRDBGenerator", "num_feat": 8, "num_block": 1, "num_grow_ch": 4, "scale": 4, "global_skip": "bicubic"}


def bicubic_psnr(hr_dir: Path, lr_dir: Path) -> float:
    """The reference: an untrained global-skip RRDB's output is the bicubic upscale (conv_last starts at 0)."""
    scores = []
    for hr_path in sorted(hr_dir.glob("*.png")):
        lr = cv2.imread(str(lr_dir / hr_path.name)).astype(np.float32) / 255
        up = torch.nn.functional.interpolate(torch.from_numpy(lr).permute(2, 0, 1)[None], scale_factor=4,
                                             mode="bicubic", align_corners=False)
        sr = (up[0].permute(1, 2, 0).clamp(0, 1).numpy() * 255).round()
        scores.append(calculate_psnr(sr, cv2.imread(str(hr_path)).astype(np.float64), crop_border=4))
    return float(np.mean(scores))


@pytest.mark.slow
def test_test_py_writes_metrics_and_images(tmp_path):
    shutil.copy(REPO / "test.py", tmp_path)  # BasicSR writes results/ next to test.py
    hr_dir, lr_dir = write_pair_folders(tmp_path / "data", ["a", "b"], hr_size=32)
    weights = tmp_path / "net_g.pth"
    torch.manual_seed(0)
    net = RRDBGenerator(**{k: v for k, v in ARCH.items() if k != "type"})
    torch.save({"params": net.state_dict(), "params_ema": net.state_dict(), "arch": ARCH}, weights)
    opt = {"name": "tiny", "model_type": "AdversarialSRModel", "scale": 4, "num_gpu": 0, "manual_seed": 0,
           "datasets": {"test_1": {"name": "pairs", "type": "PairedLRHRDataset", "dataroot_gt": str(hr_dir),
                                   "dataroot_lq": str(lr_dir)}},
           "network_g": ARCH, "path": {"pretrain_network_g": str(weights), "param_key_g": "params_ema"},
           "val": {"save_img": True, "suffix": None,
                   "metrics": {"psnr": {"type": "calculate_psnr", "crop_border": 4, "test_y_channel": False}}}}
    opt_path = tmp_path / "test_tiny.yml"
    opt_path.write_text(yaml.safe_dump(opt))
    proc = subprocess.run([sys.executable, "test.py", "-opt", str(opt_path)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = tmp_path / "results" / "tiny"
    record = json.loads((results / "metrics_pairs.json").read_text())
    assert record["dataset"] == "pairs" and record["images"] == 2 and record["model"] == str(weights)
    assert record["metrics"]["psnr"] == pytest.approx(bicubic_psnr(hr_dir, lr_dir), abs=1e-4)
    assert "# psnr: " in next(results.glob("test_tiny_*.log")).read_text()
    images = sorted(p.name for p in (results / "visualization" / "pairs").iterdir())
    assert images == ["a_tiny.png", "b_tiny.png"]
    assert cv2.imread(str(results / "visualization" / "pairs" / "a_tiny.png")).shape == (32, 32, 3)
