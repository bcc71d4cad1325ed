"""scripts/inference.py --ray: a local Ray runtime (2 CPUs) writes the same files as a plain run."""

import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from realesrgan_ext.inference.batch import Job
from realesrgan_ext.inference.ray_batch import png_alternative_taken
from tests.helpers import load_script, smooth_image, tiny_rrdb

REPO = Path(__file__).resolve().parents[1]
needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray not installed "
                               "(bash scripts/install.sh --ray)")


def load_cli():
    return load_script("inference")


@pytest.fixture(scope="module")
def ray_runtime():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_png_alternative_is_taken_by_an_input_an_output_or_a_twin(tmp_path):
    jobs = [Job(tmp_path / "a.jpg", tmp_path / "out/a_out.jpg"),   # out/a_out.png is another job's output
            Job(tmp_path / "b.png", tmp_path / "out/a_out.png"),
            Job(tmp_path / "c.jpg", tmp_path / "out/c_out.jpg"),   # c_out.jpg and c_out.tif share c_out.png
            Job(tmp_path / "c.tif", tmp_path / "out/c_out.tif"),
            Job(tmp_path / "d.jpg", tmp_path / "out/d_out.jpg")]
    assert png_alternative_taken(jobs) == [True, False, True, True, False]


@needs_ray
def test_unreachable_cluster_is_a_clear_error(tmp_path, capsys, monkeypatch):
    from realesrgan_ext.archs.rrdb_arch import RRDBGenerator

    torch.save({"params": RRDBGenerator(num_feat=8, num_block=1, num_grow_ch=4, scale=2).state_dict()},
               tmp_path / "tiny.pth")
    (tmp_path / "in").mkdir()
    cv2.imwrite(str(tmp_path / "in" / "a.png"), smooth_image(8, 8))
    argv = ["-i", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-m", str(tmp_path / "tiny.pth"),
            "--quiet", "--ray", "127.0.0.1:1"]
    assert load_cli().main(argv) == 2
    err = capsys.readouterr().err
    assert "could not start or reach the Ray cluster 127.0.0.1:1" in err
    assert not (tmp_path / "out").exists()


@needs_ray
@pytest.mark.slow
def test_ray_run_writes_the_same_files_as_a_plain_run(tmp_path, ray_runtime, capsys):
    for seed, name in enumerate(("tiny.pth", "other.pth")):  # the run blends two, as --blend does on one machine
        torch.save({"params": tiny_rrdb(2, seed).state_dict()}, tmp_path / name)
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    for i, name in enumerate(["a.png", "sub/b.png", "c.jpg", "d.png"]):
        cv2.imwrite(str(src / name), smooth_image(20 + i, 24, seed=i))
    rgba = np.dstack([smooth_image(16, 16, seed=9), np.full((16, 16), 200, np.uint8)])
    cv2.imwrite(str(src / "e.png"), rgba)
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    common = ["-i", str(src), "-m", str(tmp_path / "tiny.pth"), "--blend", f"{tmp_path / 'other.pth'}:0.4",
              "--backend", "pytorch", "--precision", "fp32", "--quiet",
              "--max-image-pixels", "520"]  # refuses c (22 x 24) and d (23 x 24): the flag must reach the actors
    cli = load_cli()
    assert cli.main([*common, "-o", str(tmp_path / "plain")]) == 1  # broken and too large fail, the rest are written
    plain_err = capsys.readouterr()
    assert cli.main([*common, "-o", str(tmp_path / "ray"), "--ray", "--ray-actors", "2"]) == 1
    ray_out = capsys.readouterr()
    assert "upscaled 3 of 6 image(s)" in ray_out.err and "broken.png" in ray_out.err
    assert "c.jpg" in ray_out.err and "max-image-pixels" in ray_out.err
    assert "broken.png" in plain_err.err
    plain = sorted(p.relative_to(tmp_path / "plain") for p in (tmp_path / "plain").rglob("*") if p.is_file())
    on_ray = sorted(p.relative_to(tmp_path / "ray") for p in (tmp_path / "ray").rglob("*") if p.is_file())
    assert plain == on_ray and len(plain) == 3
    for rel in plain:
        assert (tmp_path / "plain" / rel).read_bytes() == (tmp_path / "ray" / rel).read_bytes(), rel
