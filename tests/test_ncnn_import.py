"""ncnn import: .param/.bin parsing, RRDB graph checks, and equality with the ncnn runtime itself."""

import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import edited_ncnn_layers, ncnn_runtime_output

from realesrgan_ext.archs.rrdb_arch import RRDBGenerator
from realesrgan_ext.inference import bundled_models, ncnn_import, ncnn_writer
from realesrgan_ext.inference.ncnn_import import (
    TAG_FP16,
    TAG_FP32_RAW,
    TAG_INT8,
    NcnnImportError,
    load_bin,
    parse_param,
    rrdb_state_dict,
)
from tests.helpers import load_script

REPO = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _official_files(name):
    try:
        return bundled_models.ncnn_model_files(name)
    except FileNotFoundError as err:
        pytest.skip(str(err))


def _conv_param(out_ch, in_ch, extra=""):
    text = f"7767517\n2 2\nInput in 0 1 data\nConvolution c 1 1 data out 0={out_ch} 1=1 5=1 6={out_ch * in_ch}"
    return parse_param(text + (" " + extra if extra else ""))


# --------------------------------------------------------------------------- parsing


def test_parse_param_reads_ints_floats_and_arrays():
    layers = parse_param("7767517\n2 2\nInput in 0 1 data\n"
                         "Convolution c 1 1 data out 0=32 1=3 6=864 9=2 -23310=1,2.000000e-01\n")
    conv = layers[1]
    assert (conv.type, conv.name, conv.inputs, conv.outputs) == ("Convolution", "c", ["data"], ["out"])
    assert conv.params[0] == 32 and isinstance(conv.params[0], int)
    assert conv.params[10] == [pytest.approx(0.2)]


@pytest.mark.parametrize("text, message", [
    ("7767518\n1 1\nInput in 0 1 data", "7767517"),
    ("7767517\n2 1\nInput in 0 1 data", "declares 2 layers"),
    ("7767517\n1 1\nInput in 0 2 data", "malformed"),
    ("7767517\n1 1\nInterp i 0 1 data -23301=3,1.0", "declares 3 values"),
])
def test_parse_param_rejects_malformed_files(text, message):
    with pytest.raises(NcnnImportError, match=message):
        parse_param(text)


def test_bin_weight_storage_formats():
    """fp16 (padded to 4 bytes), int8 with scales, raw fp32 tag, flag 0 fp32 and the 256-entry table."""
    weight = np.array([0.5, -1.25, 2.0], np.float32)  # 3 outputs x 1 input x 1x1: odd sizes test the padding
    bias = np.array([0.1, 0.2, 0.3], np.float32)

    def conv(payload, extra="", tail=b""):
        layers = _conv_param(3, 1, extra)
        load_bin(layers, payload + bias.tobytes() + tail, "t.bin")
        return layers[1]

    fp16 = conv(struct.pack("<I", TAG_FP16) + weight.astype("<f2").tobytes() + b"\0\0")
    assert fp16.weight_format == "fp16" and np.array_equal(fp16.weights["weight"].ravel(), weight)
    np.testing.assert_array_equal(fp16.weights["bias"], bias)

    for tag, fmt in ((TAG_FP32_RAW, "fp32"), (0, "fp32")):
        layer = conv(struct.pack("<I", tag) + weight.tobytes())
        assert layer.weight_format == fmt and np.array_equal(layer.weights["weight"].ravel(), weight)

    table = np.linspace(-2, 2, 256, dtype=np.float32)
    index = np.array([3, 255, 0], np.uint8)
    quant = conv(b"\x01\0\0\0" + table.tobytes() + index.tobytes() + b"\0")
    np.testing.assert_array_equal(quant.weights["weight"].ravel(), table[index])

    scales = np.array([2.0, 4.0, 8.0, 1.0], np.float32).tobytes()  # per-output weight scales, then input scale
    int8 = conv(struct.pack("<I", TAG_INT8) + np.array([1, -5, 16], np.int8).tobytes() + b"\0", "8=1", scales)
    np.testing.assert_allclose(int8.weights["weight"].ravel(), [0.5, -1.25, 2.0])


def test_bin_size_must_match_the_graph():
    good = struct.pack("<I", 0) + np.zeros(2, np.float32).tobytes() + np.zeros(2, np.float32).tobytes()
    with pytest.raises(NcnnImportError, match="truncated"):
        load_bin(_conv_param(2, 1), good[:-4])
    with pytest.raises(NcnnImportError, match="4 bytes left"):
        load_bin(_conv_param(2, 1), good + b"\0" * 4)
    with pytest.raises(NcnnImportError, match="type Deconvolution"):
        load_bin(parse_param("7767517\n2 2\nInput in 0 1 data\nDeconvolution d 1 1 data out 0=1"), good)


# --------------------------------------------------------------------------- RRDB checks (real anime model)


@pytest.fixture(scope="module")
def anime_files():
    return _official_files("realesrgan-x4plus-anime")



def test_anime_graph_maps_to_rrdbnet_keys(anime_files):
    layers = ncnn_import.read_ncnn_model(*anime_files)
    state_dict, arch = rrdb_state_dict(layers)
    assert arch == {"type": "RRDBGenerator", "num_in_ch": 3, "num_out_ch": 3, "scale": 4, "num_feat": 64,
                    "num_block": 6, "num_grow_ch": 32, "upsampler": "nearest"}
    reference = RRDBGenerator(num_block=6).state_dict()
    assert {k: tuple(v.shape) for k, v in state_dict.items()} == {k: tuple(v.shape) for k, v in reference.items()}
    assert {layer.weight_format for layer in layers if layer.type == "Convolution"} == {"fp16"}
    assert ncnn_import.io_blob_names(layers) == ("data", "output")


@pytest.mark.parametrize("old, new, message", [
    ("Resize_310               1 1 501 506 0=1", "Resize_310               1 1 501 506 0=2", "nearest x2"),
    ("1=2.000000e+00 2=2.000000e+00", "1=3.000000e+00 2=3.000000e+00", "nearest x2"),
    ("-23301=2,2.000000e-01,1.000000e+00", "-23301=2,1.000000e+00,1.000000e+00", "0.2"),
    ("Conv_1                   1 1 193_splitncnn_7 195 0=32 1=3 4=1 5=1 6=18432 9=2",
     "Conv_1                   1 1 193_splitncnn_7 195 0=32 1=3 4=1 5=1 6=18432 9=1", "LeakyReLU"),
    ("Concat_3                 2 1 193_splitncnn_6 195_splitncnn_3",
     "Concat_3                 2 1 195_splitncnn_3 193_splitncnn_6", "reads"),
])
def test_non_rrdb_graphs_are_rejected(anime_files, old, new, message):
    with pytest.raises(NcnnImportError, match=message):
        rrdb_state_dict(edited_ncnn_layers(anime_files, old, new))


# --------------------------------------------------------------------------- writer (RRDB -> ncnn)


@pytest.mark.parametrize("scale", [4, 8])
@pytest.mark.parametrize("fp16", [False, True])
def test_written_graph_reads_back(scale, fp16, tmp_path):
    arch = {"num_feat": 8, "num_block": 2, "num_grow_ch": 4, "scale": scale}
    state_dict = RRDBGenerator(**arch).state_dict()
    ncnn_writer.write_ncnn(ncnn_writer.rrdb_to_ncnn_layers(state_dict, arch), tmp_path / "m.param",
                           tmp_path / "m.bin", fp16=fp16)
    layers = ncnn_import.read_ncnn_model(tmp_path / "m.param", tmp_path / "m.bin")
    read_back, read_arch = rrdb_state_dict(layers)
    assert {k: read_arch[k] for k in arch} == arch
    assert read_back.keys() == state_dict.keys()
    for key, value in state_dict.items():
        expected = value.half().float() if fp16 and key.endswith("weight") else value  # biases stay fp32
        assert torch.equal(read_back[key], expected), key


def test_trunk_and_tail_graphs_compose():
    arch = {"num_feat": 8, "num_block": 1, "num_grow_ch": 4}
    state_dict = RRDBGenerator(**arch).state_dict()
    trunk = ncnn_writer.rrdb_to_ncnn_layers(state_dict, arch, "trunk")
    tail = ncnn_writer.rrdb_to_ncnn_layers(state_dict, arch, "tail")
    full = ncnn_writer.rrdb_to_ncnn_layers(state_dict, arch)
    convs = [len([layer for layer in graph if layer.type == "Convolution"]) for graph in (trunk, tail, full)]
    assert convs[0] + convs[1] == convs[2] == 4 + 2 + 15
    assert ncnn_import.io_blob_names(trunk) == ncnn_import.io_blob_names(tail) == ("data", "output")
    assert [layer.type for layer in trunk][-1] == "BinaryOp" and tail[1].type == "Interp"
    with pytest.raises(NcnnImportError, match="x4 / x8"):
        ncnn_writer.rrdb_to_ncnn_layers(RRDBGenerator(scale=2, **arch).state_dict(), {**arch, "scale": 2})


# --------------------------------------------------------------------------- equality with the ncnn runtime


def _photo_crop():
    skimage_data = pytest.importorskip("skimage.data")
    rgb = skimage_data.astronaut()[100:124, 200:224]  # 24x24 face detail, uint8 RGB
    return (rgb.astype(np.float32) / 255.0).transpose(2, 0, 1)


@pytest.mark.parametrize("name", ["realesrgan-x4plus-anime", "realesrgan-x4plus"])
def test_converted_weights_match_ncnn_runtime(name, tmp_path):
    param, weights = _official_files(name)
    path = ncnn_import.convert_ncnn_model(param, weights, tmp_path / f"{name}.pth")
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    arch = dict(checkpoint["arch"])
    assert arch.pop("type") == "RRDBGenerator" and checkpoint["scale"] == 4
    assert checkpoint["source"]["bin"] == weights.name and len(checkpoint["source"]["bin_sha256"]) == 64
    net = RRDBGenerator(**arch).eval()
    net.load_state_dict(checkpoint["params_ema"], strict=True)

    chw = _photo_crop()
    with torch.no_grad():
        ours = net(torch.from_numpy(chw)[None])[0].numpy()
    theirs = ncnn_runtime_output(param, weights, chw)
    assert ours.shape == theirs.shape == (3, 96, 96)
    assert np.abs(ours - theirs).max() < 1e-4
    assert ours.std() > 0.05  # a real image came out, not a constant


# --------------------------------------------------------------------------- script


def test_import_script_writes_requested_output(tmp_path):
    param, weights = _official_files("realesrgan-x4plus-anime")
    script = load_script("import_ncnn_model")
    out = tmp_path / "anime.pth"
    assert script.main(["--param", str(param), "--bin", str(weights), "--output", str(out)]) == 0
    assert torch.load(out, weights_only=True)["arch"]["num_block"] == 6
    assert script.main(["--name", "nope"]) == 1
