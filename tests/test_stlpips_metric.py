"""ST-LPIPS validation metric: equals the stlpips-pytorch package's own pipeline, offline, in val.metrics."""

import numpy as np
import pytest
import torch
from basicsr.metrics import calculate_metric
from basicsr.utils.registry import METRIC_REGISTRY

from realesrgan_ext.metrics import stlpips_metric
from realesrgan_ext.metrics.stlpips_metric import calculate_stlpips

pytest.importorskip("stlpips_pytorch")
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def photo_pair():
    """A 64x64 BGR photo crop and a degraded copy (blur + noise), uint8 like BasicSR's tensor2img."""
    skimage_data = pytest.importorskip("skimage.data")
    from scipy.ndimage import uniform_filter

    rgb = skimage_data.astronaut()[80:144, 180:244]
    blurred = uniform_filter(rgb.astype(np.float32), size=(3, 3, 1))
    noisy = np.clip(blurred + np.random.default_rng(0).normal(0, 8, rgb.shape), 0, 255).astype(np.uint8)
    return rgb[..., ::-1].copy(), noisy[..., ::-1].copy()


def _package_reference(rgb0, rgb1):
    """The package's README path: utils.im2tensor on RGB uint8, LPIPS(net='alex', variant='shift_tolerant')."""
    from stlpips_pytorch import stlpips, utils

    model = stlpips.LPIPS(net="alex", variant="shift_tolerant", verbose=False)
    with torch.no_grad():
        return float(model(utils.im2tensor(rgb0), utils.im2tensor(rgb1)).item())


def test_matches_the_package_pipeline(photo_pair):
    bgr, degraded = photo_pair
    ours = calculate_stlpips(bgr, degraded, device="cpu")
    reference = _package_reference(bgr[..., ::-1], degraded[..., ::-1])
    assert ours == pytest.approx(reference, rel=1e-5, abs=1e-6)
    assert 0.01 < ours < 1.0  # a real distance, not a constant
    assert calculate_stlpips(bgr, bgr, device="cpu") == pytest.approx(0.0, abs=1e-6)


def test_val_metrics_option(photo_pair):
    """What BasicSR's validation calls: calculate_metric(dict(img=sr, img2=gt), opt) with the YAML keys."""
    bgr, degraded = photo_pair
    assert METRIC_REGISTRY.get("calculate_stlpips") is calculate_stlpips
    opt = {"type": "calculate_stlpips", "crop_border": 4, "better": "lower", "device": "cpu"}
    value = calculate_metric({"img": degraded, "img2": bgr}, opt)
    assert value == pytest.approx(calculate_stlpips(degraded[4:-4, 4:-4], bgr[4:-4, 4:-4], device="cpu"), rel=1e-6)
    more_noise = np.clip(degraded.astype(np.int16) + np.random.default_rng(1).integers(-40, 41, bgr.shape),
                         0, 255).astype(np.uint8)
    assert calculate_metric({"img": more_noise, "img2": bgr}, opt) > value
    with pytest.raises(ValueError, match="better: lower"):
        calculate_metric({"img": degraded, "img2": bgr}, {**opt, "better": "higher"})
    with pytest.raises(ValueError, match="shapes differ"):
        calculate_stlpips(bgr, bgr[:32], device="cpu")
    with pytest.raises(ValueError, match="at least 21 px"):
        calculate_stlpips(bgr[:24, :24], bgr[:24, :24], crop_border=2, device="cpu")


def test_gray_and_chw_inputs(photo_pair):
    bgr, degraded = photo_pair
    gray, gray2 = bgr[..., 1], degraded[..., 1]
    as_rgb = calculate_stlpips(np.repeat(gray[..., None], 3, 2), np.repeat(gray2[..., None], 3, 2), device="cpu")
    assert calculate_stlpips(gray, gray2, device="cpu") == pytest.approx(as_rgb, rel=1e-6)
    chw = calculate_stlpips(bgr.transpose(2, 0, 1), degraded.transpose(2, 0, 1), input_order="CHW", device="cpu")
    assert chw == pytest.approx(calculate_stlpips(bgr, degraded, device="cpu"), rel=1e-6)


def test_weights_come_from_the_package_and_load_strictly():
    path = stlpips_metric.stlpips_weights_path("alex")
    assert path.is_file() and "stlpips_pytorch" in path.parts
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = stlpips_metric.stlpips_network("alex", "cpu")
    for key, value in state.items():
        assert torch.equal(model.state_dict()[key], value), key
    assert not model.training
    with pytest.raises(ValueError, match="net must be one of"):
        stlpips_metric.stlpips_weights_path("squeeze")


def test_missing_undeclared_dependency_is_named(monkeypatch):
    """stlpips-pytorch imports torchsummary without declaring it: the error says what to install."""
    import sys

    monkeypatch.delitem(sys.modules, "stlpips_pytorch.stlpips", raising=False)
    monkeypatch.setitem(sys.modules, "torchsummary", None)  # makes `import torchsummary` fail
    stlpips_metric.stlpips_network.cache_clear()
    try:
        with pytest.raises(ModuleNotFoundError, match="torchsummary.*pip install stlpips-pytorch"):
            stlpips_metric.stlpips_network("alex", "cpu")
    finally:
        stlpips_metric.stlpips_network.cache_clear()
