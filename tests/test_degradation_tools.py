"""Seeing the degradations: make_lr.py --degradation and the HR/LR grid."""

from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from helpers import smooth_image

from realesrgan_ext.tools.degradation_grid import LABEL_HEIGHT, degradation_grid
from realesrgan_ext.tools.image_files import DataToolError
from tests.helpers import load_script

REPO = Path(__file__).resolve().parents[1]




def write_images(folder: Path, names: list[str], size: int = 96) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        cv2.imwrite(str(folder / name), smooth_image(size, size + 8, seed=i))
    return folder


def test_make_lr_degradation_mode_is_reproducible_per_image(tmp_path):
    make_lr = load_script("make_lr")
    hr = write_images(tmp_path / "hr", ["a.png", "b.jpg"])
    args = ["--input", str(hr), "--degradation", str(REPO / "options" / "realesrgan_x4.yml")]
    assert make_lr.main([*args, "--output", str(tmp_path / "lr1")]) == 0
    assert make_lr.main([*args, "--output", str(tmp_path / "lr2")]) == 0
    assert make_lr.main([*args, "--output", str(tmp_path / "lr3"), "--seed", "1"]) == 0
    only_a = write_images(tmp_path / "only_a", ["a.png"])
    assert make_lr.main(["--input", str(only_a), "--degradation", args[-1], "--output", str(tmp_path / "lr4")]) == 0
    lr = {d: cv2.imread(str(tmp_path / d / "a.png"), cv2.IMREAD_UNCHANGED) for d in ("lr1", "lr2", "lr3", "lr4")}
    assert lr["lr1"].shape == (24, 26, 3) and lr["lr1"].dtype == np.uint8
    assert cv2.imread(str(tmp_path / "lr1" / "b.png")).shape == (24, 26, 3)
    assert np.array_equal(lr["lr1"], lr["lr2"]) and np.array_equal(lr["lr1"], lr["lr4"])  # not order-dependent
    assert not np.array_equal(lr["lr1"], lr["lr3"])
    bicubic = cv2.resize(smooth_image(96, 104, seed=0), (26, 24), interpolation=cv2.INTER_AREA)
    assert np.abs(lr["lr1"].astype(float) - bicubic).mean() > 1  # degraded, not just resized


def test_make_lr_degradation_errors_name_the_file(tmp_path, capsys):
    make_lr = load_script("make_lr")
    hr = write_images(tmp_path / "hr", ["tiny.png"], size=40)
    bad = tmp_path / "bad.yml"
    bad.write_text(yaml.safe_dump({"scale": 4, "datasets": {"train": {"degradation": {"second": {"nois": 1}}}}}))
    assert make_lr.main(["--input", str(hr), "--output", str(tmp_path / "lr"), "--degradation", str(bad)]) == 1
    assert "bad.yml" in capsys.readouterr().err
    options = str(REPO / "options" / "realesrgan_x4.yml")
    assert make_lr.main(["--input", str(hr), "--output", str(tmp_path / "lr"), "--degradation", options]) == 1
    err = capsys.readouterr().err
    assert "tiny.png" in err and "too small" in err


def test_grid_layout_and_reproducibility(tmp_path):
    hr = write_images(tmp_path / "hr", ["p0.png", "p1.png"], size=120)
    options = REPO / "options" / "realesrnet_x4.yml"
    out = degradation_grid(options, tmp_path / "grid.png", input_dir=str(hr), images=2, draws=2, crop=80, gap=4)
    grid = cv2.imread(str(out))
    assert grid.shape == (2 * (80 + LABEL_HEIGHT) + 4, 3 * 80 + 2 * 4, 3)
    again = degradation_grid(options, tmp_path / "again.png", input_dir=str(hr), images=2, draws=2, crop=80, gap=4)
    assert np.array_equal(grid, cv2.imread(str(again)))
    with pytest.raises(DataToolError, match="multiple of the scale"):
        degradation_grid(options, tmp_path / "x.png", input_dir=str(hr), crop=82)


def test_pipeline_val_set_has_seeded_draws_per_photo(tmp_path):
    from realesrgan_ext.data.degradation_options import DegradationOptions
    from realesrgan_ext.tools.pipeline_lr import make_pipeline_val_set

    hr = write_images(tmp_path / "hr", ["cat.png"], size=98)  # 98x106: cropped to multiples of 4
    out = tmp_path / "val"
    assert make_pipeline_val_set(hr, out, DegradationOptions(), 4, copies=2, seed=0) == 2
    assert not (tmp_path / "val.partial").exists()
    assert sorted(p.name for p in (out / "low_res").iterdir()) == ["cat_d0.png", "cat_d1.png"]
    assert cv2.imread(str(out / "high_res" / "cat_d1.png")).shape == (96, 104, 3)
    lr0, lr1 = (cv2.imread(str(out / "low_res" / f"cat_d{k}.png")) for k in (0, 1))
    assert lr0.shape == (24, 26, 3) and not np.array_equal(lr0, lr1)
