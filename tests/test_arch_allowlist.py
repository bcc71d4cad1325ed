"""A checkpoint's 'arch' record builds only this project's generators, with bounded sizes."""

import time

import pytest
import torch

from realesrgan_ext.archs.rrdb_arch import RRDBGenerator
from realesrgan_ext.inference.arch_allowlist import ALLOWED_ARCHS, ArchRecordError, check_arch_record
from realesrgan_ext.inference.model_loader import ModelLoadError, load_model

TINY = {"num_feat": 8, "num_block": 1, "num_grow_ch": 4}


def test_official_sizes_pass():
    check_arch_record({"type": "RRDBGenerator", "num_in_ch": 3, "num_out_ch": 3, "scale": 4, "num_feat": 64,
                       "num_block": 23, "num_grow_ch": 32, "upsampler": "nearest", "global_skip": None}, "x.pth")
    check_arch_record({"type": "SRResNetGenerator", "scale": 4, "num_block": 16, "use_batchnorm": True}, "x.pth")
    check_arch_record({"type": "SRVGGNetCompact", "num_in_ch": 3, "num_out_ch": 3, "num_feat": 64, "num_conv": 16,
                       "upscale": 4, "act_type": "prelu"}, "x.pth")


@pytest.mark.parametrize(("record", "message"), [
    ({"type": "VGGDiscriminator", "num_feat": 8}, "names 'VGGDiscriminator'; a checkpoint may only ask for"),
    ({"type": "VGGFeatureExtractor"}, "names 'VGGFeatureExtractor'"),  # basicsr's: it downloads weights
    ({"type": "RRDBGenerator", "num_block": 10 ** 6}, "num_block=1000000 (allowed: an integer 1..64)"),
    ({"type": "RRDBGenerator", "num_feat": 4096}, "num_feat=4096"),
    ({"type": "RRDBGenerator", "num_block": True}, "num_block=True"),
    ({"type": "RRDBGenerator", "num_feat": 8.5}, "num_feat=8.5"),
    ({"type": "RRDBGenerator", "upsampler": ["nearest"]}, "upsampler is a list"),
    ({"type": "RRDBGenerator", "extra": {"a": 1}}, "extra is a dict"),
    ({"num_block": 500}, "asks for RRDBGenerator with num_block=500"),  # no type: read as RRDB
])
def test_other_classes_and_unbounded_sizes_are_refused(record, message):
    with pytest.raises(ArchRecordError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        check_arch_record(record, "evil.pth")


def test_loader_refuses_before_building(tmp_path):
    net = RRDBGenerator(scale=4, **TINY)
    path = tmp_path / "evil.pth"
    torch.save({"params": net.state_dict(), "arch": {"type": "RRDBGenerator", "scale": 4, **TINY,
                                                     "num_block": 10 ** 6}}, path)
    start = time.perf_counter()
    with pytest.raises(ModelLoadError, match=f"{path}: its 'arch' record asks for RRDBGenerator with num_block"):
        load_model(path)
    assert time.perf_counter() - start < 5  # refused up front, not after building a million blocks
    torch.save({"params": net.state_dict(), "arch": {"type": "RRDBGenerator", "scale": 4, **TINY}}, path)
    assert load_model(path).settings["num_block"] == 1


def test_the_allowlist_is_one_table_to_extend():
    assert set(ALLOWED_ARCHS) >= {"RRDBGenerator", "RRDBNet", "SRResNetGenerator", "SRVGGNetCompact"}
    assert all(low >= 1 and high <= 256 for limits in ALLOWED_ARCHS.values() for low, high in limits.bounds.values())
