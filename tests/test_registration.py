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
