"""scripts/benchmark_inference.py runs end to end (tiny model, one size): table, ratios, summary."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from realesrgan_ext.archs.rrdb_arch import RRDBGenerator

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "benchmark_inference.py"


@pytest.mark.slow
def test_benchmark_smoke(tmp_path):
    model = tmp_path / "tiny.pth"
    torch.save({"params_ema": RRDBGenerator(num_feat=8, num_block=1, num_grow_ch=4).state_dict()}, model)
    proc = subprocess.run([sys.executable, str(SCRIPT), "--model", str(model), "--sizes", "16", "--repeat", "1",
                           "--configs", "pytorch-fp32", "auto-fp32"], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "REALESRGAN_EXT_CACHE": str(tmp_path / "cache")})
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [line.split() for line in proc.stdout.splitlines() if line.startswith("    16^2")]
    assert [row[1] for row in rows] == ["pytorch-fp32", "auto-fp32"]
    assert rows[0][7] == "inf" and float(rows[1][7]) >= 60  # PSNR against our fp32 output
    assert all(float(row[4]) > 0 for row in rows)  # the upscale alone, as each process reported it
    assert "per output megapixel across sizes" in proc.stdout
