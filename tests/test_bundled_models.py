"""The bundled-model catalogue: every entry's ncnn files exist and say what the catalogue says; names,
aliases and the convert-once cache."""

import re

import pytest
import torch

from realesrgan_ext.inference import bundled_models
from realesrgan_ext.inference.bundled_models import BUNDLED_MODELS
from realesrgan_ext.inference.ncnn_import import CONVERTER_LAYOUT


def _files(name):
    try:
        return bundled_models.ncnn_model_files(name)
    except FileNotFoundError as err:
        pytest.skip(str(err))


def _parameters_in_param_file(text: str) -> int:
    """Weights the .param declares: each Convolution's weight_data_size (6=) and bias (0=), each PReLU's slopes."""
    total = 0
    for line in text.splitlines():
        params = dict(re.findall(r"\b(\d+)=([\d.e+-]+)", line))
        if line.startswith("Convolution"):
            total += int(params["6"]) + int(params["0"])
        elif line.startswith("PReLU"):
            total += int(params["0"])
    return total


@pytest.mark.parametrize("name", list(BUNDLED_MODELS))
def test_catalogue_entry_matches_its_files(name):
    entry = BUNDLED_MODELS[name]
    param, weights = _files(name)
    text = param.read_text()
    assert _parameters_in_param_file(text) == entry.parameters
    assert 2 * entry.parameters < weights.stat().st_size < 2.1 * entry.parameters  # fp16 weights, fp32 biases
    final_resize = re.search(r"Interp\s+\S+\s+1 1 \S+ output 0=3 1=([\d.e+-]+)", text)
    net_scale = 4
    assert entry.scale == (round(net_scale * float(final_resize.group(1))) if final_resize else net_scale)
    assert entry.purpose and entry.licence.startswith("BSD-3-Clause") and entry.architecture


def test_names_and_aliases():
    assert bundled_models.canonical_name("RealESRGAN_x4plus_anime_6B.pth") == "realesrgan-x4plus-anime"
    assert bundled_models.canonical_name("realesr-animevideov3") == "realesr-animevideov3-x4"
    assert bundled_models.is_official_name("Realesr-AnimeVideoV3-x2")
    assert not bundled_models.is_official_name("model.pth")
    with pytest.raises(KeyError, match="realesr-animevideov3-x3"):
        bundled_models.canonical_name("realesrgan-x2plus")


def test_official_model_path_converts_once(monkeypatch, tmp_path):
    _files("realesr-animevideov3-x3")
    monkeypatch.setenv("REALESRGAN_EXT_CACHE", str(tmp_path))
    path = bundled_models.official_model_path("realesr-animevideov3-x3")
    assert path == tmp_path / "weights" / "realesr-animevideov3-x3.pth" and path.is_file()
    stamp = path.stat().st_mtime_ns
    assert bundled_models.official_model_path("REALESR-ANIMEVIDEOV3-X3") == path
    assert path.stat().st_mtime_ns == stamp  # cached, not converted again
    assert not list(path.parent.glob(".*.tmp"))
    assert bundled_models.official_model_path("realesr-animevideov3-x3", refresh=True) == path
    old = torch.load(path, weights_only=True)
    del old["source"]["converter_layout"]  # as an older release's converter wrote it
    torch.save(old, path)
    bundled_models.official_model_path("realesr-animevideov3-x3")
    assert torch.load(path, weights_only=True)["source"]["converter_layout"] == CONVERTER_LAYOUT  # converted again
    path.write_bytes(b"half a file")
    assert torch.load(bundled_models.official_model_path("realesr-animevideov3-x3"), weights_only=True)["arch"]
