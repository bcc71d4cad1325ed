"""Hostile checkpoints, each made here: refused quickly, in bounded memory, with a message naming the problem.

Through the library (``load_model``), the command line (``scripts/inference.py``) and the web
page's request handler (``run_request``); see docs/security.md.
"""

import zipfile
from pathlib import Path

import pytest
import torch

from realesrgan_ext.archs.rrdb_arch import RRDBGenerator
from realesrgan_ext.inference.checkpoint_structure import check_structure, short_repr
from realesrgan_ext.inference.model_loader import ModelLoadError, ModelTooLargeError, load_model
from realesrgan_ext.limits import LimitError, Limits
from realesrgan_ext.utils.checkpoint import checkpoint_problem
from tests.helpers import load_script
from tests.hostile import measure

REPO = Path(__file__).resolve().parents[1]
TINY = {"num_feat": 8, "num_block": 1, "num_grow_ch": 4}


def tiny_rrdb_state() -> dict:
    return RRDBGenerator(scale=4, **TINY).state_dict()


def compact_state(num_conv: int = 2) -> dict:
    from spandrel.architectures.Compact import Compact

    return Compact(num_feat=8, num_conv=num_conv).state_dict()


def nested(levels: int) -> list:
    x: list = []
    for _ in range(levels):
        x = [x, x]  # 2^levels paths through 2 * levels list slots
    return x


def cyclic() -> list:
    x: list = []
    x.append(x)
    return x


def deflated_copy(src: Path, dst: Path) -> Path:
    """``src`` (a torch.save zip) rewritten with every entry deflate-compressed (torch.load reads it)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, zin.read(info.filename))
    return dst


def corpus(tmp: Path) -> dict[str, tuple[Path, str]]:
    """name -> (file, a fragment its refusal must contain); every file is a few KB at most but the bomb."""
    rrdb = tiny_rrdb_state()
    huge = {k: v for k, v in rrdb.items()}
    huge["conv_body.weight"] = torch.zeros(1).expand(70_000, 1_000, 1_000, 1)  # stride 0: 70 G "parameters"
    fake_compact = {k: v for k, v in compact_state().items() if k.startswith(("body.0.", "body.1."))}
    fake_compact["body.200002.weight"] = torch.zeros(48, 8, 3, 3)
    fake_compact["body.200002.bias"] = torch.zeros(48)
    damaged_compact = compact_state()
    damaged_compact["body.2.weight"] = torch.zeros(8, 5, 3, 3)
    items = {
        "deep": ({"params": rrdb, "arch": {"type": "RRDBGenerator", "upsampler": nested(60)}},
                 "nest deeper than 16 levels"),
        "cyclic": ({"params": rrdb, "arch": cyclic()}, "contains itself"),
        "cyclic_dict": ({"params": rrdb, "meta": {"loop": None}}, "contains itself"),
        "int_key_top": ({1: torch.zeros(1), "params": rrdb}, "key that is not a string (1, a int)"),
        "int_key_params": ({"params": {**rrdb, 7: torch.zeros(1)}}, "key that is not a string (7"),
        "stride0_70G": ({"params": huge}, "declare is 70,000,0"),
        "fake_compact": (fake_compact, "its keys do not describe a real model"),
        "damaged_compact": (damaged_compact, "weights do not fit"),
        "huge_int_arch": ({"params": rrdb, "arch": {"num_feat": 10 ** 5000}}, "Unsupported operand"),
        "huge_str_arch": ({"params": rrdb, "arch": {"upsampler": "x" * 10 ** 5}}, "upsampler must be"),
        "resize_list": ({"params_ema": compact_state(), "arch": {"type": "SRVGGNetCompact", "num_feat": 8,
                                                                  "num_conv": 2}, "resize_output": [[1] * 5] * 5},
                        "bad 'resize_output' record"),
        "resize_bool": ({"params_ema": compact_state(), "arch": {"type": "SRVGGNetCompact", "num_feat": 8,
                                                                  "num_conv": 2}, "resize_output": {"scale": True}},
                        "scale must be an integer from 1 to 3"),
        "resize_extra": ({"params_ema": compact_state(), "arch": {"type": "SRVGGNetCompact", "num_feat": 8,
                                                                   "num_conv": 2},
                          "resize_output": {"scale": 2, "x": nested(5)}}, "unknown key 'x'"),
    }
    items["cyclic_dict"][0]["meta"]["loop"] = items["cyclic_dict"][0]["meta"]
    files = {}
    for name, (content, fragment) in items.items():
        torch.save(content, tmp / f"{name}.pth")
        files[name] = (tmp / f"{name}.pth", fragment)
    torch.save({"params": rrdb, "pad": torch.zeros(2 ** 20)}, tmp / "plain.pth")  # 4 MiB of zeros
    files["deflate_bomb"] = (deflated_copy(tmp / "plain.pth", tmp / "deflate_bomb.pth"), "inflates")
    (tmp / "truncated.pth").write_bytes((tmp / "plain.pth").read_bytes()[:3000])
    files["truncated"] = (tmp / "truncated.pth", "not a readable PyTorch checkpoint")
    with zipfile.ZipFile(tmp / "long_pickle.pth", "w") as zf:  # what 150 000 tiny tensors pickle to: 46 s to load
        zf.writestr("long_pickle/data.pkl", b"\x80\x02" + b"N" * 2 ** 20, compress_type=zipfile.ZIP_DEFLATED)
    files["long_pickle"] = (tmp / "long_pickle.pth", "its pickle is 1.0 MiB, more than the 64 bytes for each")
    (tmp / "long_header.safetensors").write_bytes((2 ** 21).to_bytes(8, "little") + b" " * 2 ** 21)
    files["long_header"] = (tmp / "long_header.safetensors", "its safetensors header is 2.0 MiB, more than the 128")
    (tmp / "noise.safetensors").write_bytes(b"\xff" * 8 + b"{" * 100)
    files["noise_safetensors"] = (tmp / "noise.safetensors", "not a valid safetensors file")
    return files


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, tuple[Path, str]]:
    return corpus(tmp_path_factory.mktemp("checkpoints"))


def test_each_hostile_checkpoint_is_refused_quickly_in_bounded_memory(files):
    assert max(p.stat().st_size for name, (p, _) in files.items() if name != "long_header") < 256 * 1024
    for name, (path, fragment) in files.items():
        cost = measure(lambda p=path: load_model(p))
        message = cost.refused(ModelLoadError, str(path), fragment)
        assert len(message) < 700, (name, message)


def test_over_a_limit_the_error_is_also_a_limit_error_that_says_how_to_raise_it(files):
    for name in ("deep", "stride0_70G", "deflate_bomb"):
        cost = measure(lambda n=name: load_model(files[n][0]))
        assert isinstance(cost.error, ModelTooLargeError) and isinstance(cost.error, LimitError), name
        assert "REALESRGAN_EXT_MAX_" in str(cost.error) and "--max-" in str(cost.error)


def test_limits_can_be_raised_and_lowered(files, monkeypatch):
    plain = files["deflate_bomb"][0].with_name("plain.pth")
    assert load_model(plain).scale == 4
    cost = measure(lambda: load_model(plain, limits=Limits(max_model_bytes=2 ** 20)))
    cost.refused(ModelTooLargeError, "inflated is 4.", "more than the 1.0 MiB allowed", "--max-model-bytes")
    assert load_model(files["deflate_bomb"][0], limits=Limits(max_zip_ratio=10_000)).scale == 4
    monkeypatch.setenv("REALESRGAN_EXT_MAX_MODEL_PARAMS", "1000")
    with pytest.raises(ModelTooLargeError, match="more than the 1,000 allowed"):
        load_model(plain)
    monkeypatch.setenv("REALESRGAN_EXT_MAX_MODEL_PARAMS", "lots")
    with pytest.raises(ValueError, match="REALESRGAN_EXT_MAX_MODEL_PARAMS must be a number, got 'lots'"):
        Limits.from_env()


def test_in_memory_state_dicts_are_checked_the_same_way():
    for content, fragment in [({"params": {"a": torch.zeros(1)}, "arch": nested(40)}, "nest deeper"),
                              ({"params": {3.5: torch.zeros(1)}}, "not a string (3.5, a float)"),
                              ({"params": tiny_rrdb_state(), "arch": {"num_feat": 10 ** 5000}},
                               "num_feat=<int of 16610 bits> (allowed: an integer 1..256)")]:
        measure(lambda c=content: load_model(c)).refused(ModelLoadError, "<state dict>", fragment)


def test_structure_walk_counts_shared_parts_once_and_depth_exactly():
    check_structure(nested(15), "x")  # 16 lists deep, 2^15 paths: accepted at once
    with pytest.raises(ModelTooLargeError, match="deeper than 16"):
        check_structure({"a": nested(15)}, "x")
    shared = [1, 2]
    check_structure([[[shared]], shared], "x")  # reached at depth 2 first, then 4: depth 4
    with pytest.raises(ModelTooLargeError, match="deeper than 3"):
        check_structure([[[shared]], shared], "x", Limits(max_structure_depth=3))
    with pytest.raises(ModelTooLargeError, match="more than 10 entries"):
        check_structure({"a": list(range(11))}, "x", Limits(max_structure_items=10))
    assert short_repr(nested(60)).startswith("[[[[...], [...]], [[...], [...]]]")
    assert len(short_repr("y" * 10 ** 6)) < 130 and short_repr(cyclic()) == "[[[[...]]]]"


def test_checkpoint_problem_names_a_state_that_is_not_a_dict(tmp_path):
    for content in ([1, 2], torch.zeros(3), "text"):
        torch.save(content, tmp_path / "1.state")
        problem = checkpoint_problem(tmp_path / "1.state", [])
        assert problem == (f"{tmp_path / '1.state'} holds a {type(content).__name__}, not a dict of iter, "
                           "optimizers, schedulers")
    torch.save({"iter": 1}, tmp_path / "1.state")
    assert checkpoint_problem(tmp_path / "1.state", []).endswith("lacks ['optimizers', 'schedulers']")


def load_cli():
    return load_script("inference")


def test_cli_and_page_refuse_them_with_rc_2_and_a_one_line_reason(files, tmp_path, capsys):
    import cv2
    import numpy as np

    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((4, 4, 3), np.uint8))
    cli = load_cli()
    from realesrgan_ext.webui.app import run_request
    from realesrgan_ext.webui.model_choices import UpscalerCache
    from realesrgan_ext.webui.settings import WebSettings

    settings = WebSettings(tmp_path / "web", tmp_path / "experiments")
    for name in ("deep", "stride0_70G", "fake_compact", "deflate_bomb", "int_key_params", "damaged_compact"):
        path, fragment = files[name]
        cost = measure(lambda p=path: cli.main(["-i", str(tmp_path / "a.png"), "-o", str(tmp_path / "out"),
                                                "-m", str(p), "--quiet"]))
        cost.bounded()
        assert cost.result == 2, name
        err = capsys.readouterr().err
        assert err.startswith(f"error: {path}") and fragment in err and "Traceback" not in err, err
        cost = measure(lambda p=path: run_request(settings, UpscalerCache("cpu"), [str(tmp_path / "a.png")], None,
                                                  str(p), 0, 0, "auto"))
        cost.bounded()
        status, report = cost.result
        assert report is None and status.startswith("**Error:** cannot use the model") and fragment in status


def test_blending_bounds_both_files_before_any_arithmetic(files, tmp_path):
    from realesrgan_ext.inference.model_blending import load_blended_model

    good = tmp_path / "good.pth"
    torch.save({"params": tiny_rrdb_state()}, good)
    for name in ("stride0_70G", "deep", "int_key_params"):
        bad, fragment = files[name]
        for pair in ((good, bad), (bad, bad)):  # with itself: same shapes, so only the bounds stop the arithmetic
            cost = measure(lambda p=pair: load_blended_model(*p, 0.5))
            cost.refused(ModelLoadError, str(bad), fragment)
