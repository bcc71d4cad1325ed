"""CONTRIBUTING.md stays true: its walk-through code runs, its option file validates, the paths it names
exist, and the pre-commit hook runs CI's ruff version."""

import importlib.util
import re
import sys
from pathlib import Path

import pytest
import yaml

from realesrgan_ext import registry
from realesrgan_ext.option_validation import validate_options

REPO = Path(__file__).resolve().parents[1]
GUIDE = (REPO / "CONTRIBUTING.md").read_text(encoding="utf-8")


def _block_after(marker: str, language: str) -> str:
    """The first fenced ``language`` block after ``marker`` in the guide."""
    start = GUIDE.index(marker)
    match = re.compile(rf"```{language}\n(.*?)```", re.S).search(GUIDE, start)
    assert match, f"no {language} block after {marker!r}"
    return match.group(1)


def test_precommit_runs_the_ruff_version_ci_installs():
    pinned = re.search(r"^ruff==([\w.]+)$", (REPO / "requirements-dev.txt").read_text(), re.M).group(1)
    hooks = yaml.safe_load((REPO / ".pre-commit-config.yaml").read_text())["repos"][0]["hooks"]
    assert [h["additional_dependencies"] for h in hooks if h["id"] == "ruff"] == [[f"ruff=={pinned}"]]
    assert f"ruff=={pinned}" in GUIDE


def test_paths_named_in_the_guide_exist():
    named = set(re.findall(r"`((?:realesrgan_ext|tests|scripts|options)/[\w/.]+\.(?:py|yml))`", GUIDE))
    walkthrough = {"realesrgan_ext/archs/toy_upsampler_arch.py", "tests/test_toy_upsampler_arch.py",
                   "options/toy_x4.yml"}
    assert walkthrough <= named
    missing = sorted(p for p in named - walkthrough if not (REPO / p).is_file())
    assert not missing, f"CONTRIBUTING.md names files that do not exist: {missing}"
    assert "CONTRIBUTING.md" in (REPO / "README.md").read_text()


@pytest.fixture
def toy_architecture(tmp_path):
    """The guide's architecture file, imported as a part module; unregistered afterwards."""
    path = tmp_path / "toy_upsampler_arch.py"
    path.write_text(_block_after("**1. The file**", "python"))
    spec = importlib.util.spec_from_file_location("toy_upsampler_arch", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    from basicsr.utils.registry import ARCH_REGISTRY

    del sys.modules[spec.name]
    registry._recorded["arch"].pop("ToyUpsampler", None)
    ARCH_REGISTRY._obj_map.pop("ToyUpsampler", None)


def test_walkthrough_architecture_its_test_and_option_file(toy_architecture, one_torch_thread):
    assert registry.recorded("arch")["ToyUpsampler"] is toy_architecture.ToyUpsampler
    namespace: dict = {}
    exec(compile(_block_after("**2. Its test**", "python"), "test_toy_upsampler_arch.py", "exec"), namespace)
    for scale in (2, 4):
        namespace["test_builds_by_name_and_upscales"](scale)
    options = yaml.safe_load(_block_after("**3. Train it.**", "yaml"))
    assert options["network_g"]["type"] == "ToyUpsampler"
    validate_options(options, "CONTRIBUTING.md options/toy_x4.yml")


def test_worked_example_quotes_the_real_pixel_loss():
    """Every line of the guide's PixelLoss excerpt (but its '...' elisions) is in the file, and its test exists."""
    source = (REPO / "realesrgan_ext" / "losses" / "pixel_loss.py").read_text()
    excerpt = _block_after("## Worked example", "python")
    quoted = [line for line in excerpt.splitlines() if line.strip() and "..." not in line]
    assert len(quoted) > 8 and [line for line in quoted if line not in source.splitlines()] == []
    assert "def test_pixel_loss_values_and_bad_options(" in (REPO / "tests" / "test_losses.py").read_text()
