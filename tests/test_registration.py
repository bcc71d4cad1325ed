"""Lazy registration: networks, data tools and inference import without basicsr; register() fills its registries."""

import subprocess
import sys

import pytest
import torch
from torch import nn

import realesrgan_ext
from realesrgan_ext import registry
from realesrgan_ext.archs.weight_init import scaled_kaiming_init

BASICSR_FREE = ("realesrgan_ext.inference", "realesrgan_ext.archs.rrdb_arch", "realesrgan_ext.archs.srresnet_arch",
                "realesrgan_ext.archs.vgg_discriminator_arch", "realesrgan_ext.data.image_io",
                "realesrgan_ext.tools.bicubic_lr", "realesrgan_ext.tools.lmdb_writer")


def test_inference_networks_and_data_tools_import_without_basicsr():
    code = (f"import sys; import {', '.join(BASICSR_FREE)}; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] == 'basicsr' or '_model' in m or '_loss' in m); "
            "assert not bad, bad")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_register_fills_basicsr_registries_and_is_idempotent():
    from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, LOSS_REGISTRY, METRIC_REGISTRY, MODEL_REGISTRY

    realesrgan_ext.register()
    realesrgan_ext.register()
    from realesrgan_ext.archs.rrdb_arch import RRDBGenerator

    assert ARCH_REGISTRY.get("RRDBGenerator") is RRDBGenerator
    for kind, reg in (("arch", ARCH_REGISTRY), ("dataset", DATASET_REGISTRY), ("loss", LOSS_REGISTRY),
                      ("model", MODEL_REGISTRY), ("metric", METRIC_REGISTRY)):
        assert registry.import_part_modules(kind), kind
        for name, cls in registry.recorded(kind).items():
            assert reg.get(name) is cls
    assert "AdversarialSRModel" in MODEL_REGISTRY


def test_a_part_recorded_after_register_goes_straight_in():
    from basicsr.utils.registry import ARCH_REGISTRY

    realesrgan_ext.register()
    probe = registry.register_part("arch")(type("LateProbeNet", (nn.Module,), {"__module__": __name__}))
    try:
        assert ARCH_REGISTRY.get("LateProbeNet") is probe
        other = type("LateProbeNet", (nn.Module,), {"__module__": "elsewhere"})
        with pytest.raises(KeyError, match="LateProbeNet"):
            registry.register_part("arch")(other)
    finally:
        del ARCH_REGISTRY._obj_map["LateProbeNet"]
        registry._recorded["arch"].pop("LateProbeNet")


def test_scaled_kaiming_init_draws_what_basicsr_draws():
    from basicsr.archs.arch_util import default_init_weights

    def make():
        return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Linear(4, 2))

    ours, theirs = make(), make()
    torch.manual_seed(3)
    scaled_kaiming_init([ours], 0.1, bias_fill=0.5)
    torch.manual_seed(3)
    default_init_weights([theirs], 0.1, bias_fill=0.5)
    for a, b in zip(ours.state_dict().values(), theirs.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def run_python(code: str, extra_path: str = "") -> subprocess.CompletedProcess:
    import os

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [extra_path, *sys.path]))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180, env=env)


@pytest.mark.slow
def test_import_is_cheap_and_basicsr_import_registers_every_part():
    """A script written like Real-ESRGAN's train.py: ``import realesrgan_ext``, then basicsr's registries."""
    code = ("import sys, realesrgan_ext\n"
            "heavy = sorted(m for m in ('torch', 'basicsr', 'cv2') if m in sys.modules)\n"
            "assert not heavy, heavy\n"
            "from basicsr.archs import build_network\n"
            "from basicsr.utils.registry import MODEL_REGISTRY, LOSS_REGISTRY, DATASET_REGISTRY\n"
            "net = build_network({'type': 'RRDBGenerator', 'num_feat': 4, 'num_block': 1, 'num_grow_ch': 2})\n"
            "assert type(net).__name__ == 'RRDBGenerator'\n"
            "assert 'AdversarialSRModel' in MODEL_REGISTRY and 'PixelLoss' in LOSS_REGISTRY\n"
            "assert 'PairedLRHRDataset' in DATASET_REGISTRY and 'UNetDiscriminatorSN' in sys.modules['basicsr']"
            ".utils.registry.ARCH_REGISTRY\n"
            "import basicsr.train, realesrgan_ext.compat as c\n"
            "assert basicsr.train.load_resume_state is c.load_resume_state\n"
            "realesrgan_ext.register()\n")
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_realesrgan_package_in_the_same_process_is_named_clearly(tmp_path, monkeypatch):
    """Both orders: realesrgan imported after realesrgan_ext, and before it (then register refuses)."""
    import importlib

    package = tmp_path / "realesrgan"
    package.mkdir()
    (package / "__init__.py").write_text("from basicsr.utils.registry import ARCH_REGISTRY\n"
                                         "@ARCH_REGISTRY.register()\nclass SRVGGNetCompact:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "realesrgan", raising=False)
    assert importlib.util.find_spec("realesrgan") is not None  # finding it stays possible (benchmarks)
    with pytest.raises(ImportError) as after:
        importlib.import_module("realesrgan")
    monkeypatch.setitem(sys.modules, "realesrgan", type(sys)("realesrgan"))
    with pytest.raises(RuntimeError) as before:
        registry.register_all()
    for error in (after.value, before.value):
        assert str(error).startswith("The 'realesrgan' package") and "docs/coming-from-basicsr.md" in str(error)
        assert "SRVGGNetCompact" in str(error)
