"""scripts/gpu_check.sh: says so and exits 0 without a GPU; its --force_yml keys exist in the recipe."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "gpu_check.sh"


@pytest.mark.slow
def test_without_a_gpu_it_says_so_and_exits_0():
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHON": sys.executable}
    proc = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "no CUDA GPU visible to torch here; nothing to check" in proc.stdout


def test_script_parses():
    assert subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True).returncode == 0


def test_every_forced_key_exists_in_the_recipe():
    """BasicSR's --force_yml cannot create keys: each ``a:b:c=value`` must name an existing one."""
    opt = yaml.safe_load((REPO / "options" / "esrgan_x4.yml").read_text())
    forced = set(re.findall(r'"([a-z_0-9]+(?::[a-z_0-9]+)+)=', SCRIPT.read_text()))
    assert {"train:speed:precision", "train:speed:compile", "network_g:num_block"} <= forced
    for keys in sorted(forced):
        node = opt
        for key in keys.split(":"):
            assert isinstance(node, dict) and key in node, f"{keys}: not in options/esrgan_x4.yml"
            node = node[key]
