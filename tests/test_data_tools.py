"""Data preparation tools: LMDB writer, sub-images, bicubic LR, meta-info, sample set builder."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from basicsr.data.data_util import paired_paths_from_meta_info_file
from basicsr.utils import FileClient
from basicsr.utils.matlab_functions import imresize

from realesrgan_ext.tools import lmdb_writer, sample_data
from realesrgan_ext.tools.bicubic_lr import bicubic_downscale, make_lr_folder
from realesrgan_ext.tools.image_files import DataToolError, list_images
from realesrgan_ext.tools.meta_info import check_meta_info, folder_meta_info, paired_meta_info, write_meta_info
from realesrgan_ext.tools.subimages import crop_boxes, crop_positions, extract_subimages
from tests.helpers import load_script

REPO = Path(__file__).resolve().parents[1]




def noise(h: int, w: int, c: int = 3, dtype=np.uint8, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (h, w) if c == 1 else (h, w, c)
    return rng.integers(0, np.iinfo(dtype).max, shape, dtype=dtype, endpoint=True)


def write(path: Path, img: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), img)
    return path


@pytest.fixture
def mixed_folder(tmp_path) -> Path:
    """16-bit BGR, gray, BGRA, JPEG; two files named 'x' in different subfolders."""
    root = tmp_path / "src"
    write(root / "a" / "x.png", noise(12, 20, 3, np.uint16, 1))
    write(root / "b" / "x.png", noise(12, 20, 1, np.uint8, 2))
    write(root / "rgba.png", noise(9, 7, 4, np.uint8, 3))
    write(root / "photo.jpg", cv2.GaussianBlur(noise(16, 24, 3, np.uint8, 4), (5, 5), 2))
    (root / "notes.txt").write_text("not an image")
    return root


def read_lmdb(path: Path, key: str) -> np.ndarray:
    client = FileClient("lmdb", db_paths=[str(path)], client_keys=["x"])
    data = client.get(key, "x")
    assert data is not None, key
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)


# ---------------------------------------------------------------- LMDB


def test_lmdb_round_trip_is_bit_identical_through_basicsr(mixed_folder, tmp_path):
    out = tmp_path / "out.lmdb"
    result = lmdb_writer.make_lmdb(mixed_folder, out, progress=False, workers=2)
    assert result.keys == ["a/x", "b/x", "photo", "rgba"]  # equal names in two folders: distinct keys
    for key, rel in zip(result.keys, list_images(mixed_folder), strict=True):
        source = cv2.imread(str(mixed_folder / rel), cv2.IMREAD_UNCHANGED)
        stored = read_lmdb(out, key)
        assert stored.dtype == source.dtype and stored.shape == source.shape, key
        assert np.array_equal(stored, source), key
    meta = (out / "meta_info.txt").read_text().splitlines()
    assert meta == ["a/x.png (12,20,3) 1", "b/x.png (12,20,1) 1", "photo.png (16,24,3) 1", "rgba.png (9,7,4) 1"]
    assert not Path(f"{out}.partial").exists()


def test_lmdb_refuses_existing_output_unless_overwrite(mixed_folder, tmp_path):
    out = tmp_path / "out.lmdb"
    lmdb_writer.make_lmdb(mixed_folder, out, progress=False)
    with pytest.raises(DataToolError, match="already exists"):
        lmdb_writer.make_lmdb(mixed_folder, out, progress=False)
    write(mixed_folder / "new.png", noise(4, 4))
    result = lmdb_writer.make_lmdb(mixed_folder, out, overwrite=True, progress=False, compress_level=9)
    assert "new" in result.keys and "new.png (4,4,3) 9\n" in (out / "meta_info.txt").read_text()
    with pytest.raises(DataToolError, match="must end with '.lmdb'"):
        lmdb_writer.make_lmdb(mixed_folder, tmp_path / "out.db", progress=False)


def test_interrupted_lmdb_build_leaves_nothing_finished_and_rerun_works(mixed_folder, tmp_path):
    out = tmp_path / "out.lmdb"
    partial = Path(f"{out}.partial")
    seen = []

    def interrupt(key):
        seen.append(key)
        if len(seen) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        lmdb_writer.make_lmdb(mixed_folder, out, progress=False, on_image=interrupt)
    assert not out.exists() and not partial.exists()
    # a killed process leaves its partial behind: the next run discards it
    partial.mkdir()
    (partial / "data.mdb").write_bytes(b"garbage from a killed run")
    result = lmdb_writer.make_lmdb(mixed_folder, out, progress=False)
    assert len(result.keys) == 4 and (out / "meta_info.txt").is_file() and not partial.exists()
    assert np.array_equal(read_lmdb(out, "rgba"), cv2.imread(str(mixed_folder / "rgba.png"), cv2.IMREAD_UNCHANGED))


def test_corrupt_image_stops_with_its_path_or_is_skipped(mixed_folder, tmp_path, capsys):
    bad = mixed_folder / "b" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    out = tmp_path / "out.lmdb"
    with pytest.raises(DataToolError, match=str(bad)):
        lmdb_writer.make_lmdb(mixed_folder, out, progress=False)
    assert not out.exists() and not Path(f"{out}.partial").exists()

    script = load_script("create_lmdb")
    assert script.main(["--input", str(mixed_folder), "--output", str(out), "--workers", "1"]) == 1
    assert str(bad) in capsys.readouterr().err
    assert script.main(["--input", str(mixed_folder), "--output", str(out), "--skip-bad", "--workers", "1"]) == 0
    printed = capsys.readouterr().out
    assert "skipped 1 unreadable image" in printed and str(bad) in printed
    assert "b/broken" not in (out / "meta_info.txt").read_text()
    assert len((out / "meta_info.txt").read_text().splitlines()) == 4


def test_paired_lmdb_needs_equal_keys_and_drops_bad_pairs(tmp_path):
    lr, hr = tmp_path / "lr", tmp_path / "hr"
    for name in ("p/a", "q/a", "c"):
        write(hr / f"{name}.png", noise(8, 8))
        write(lr / f"{name}.png", noise(2, 2))
    (lr / "c.png").write_bytes(b"bad")
    outs = [tmp_path / "lr.lmdb", tmp_path / "hr.lmdb"]
    results = lmdb_writer.make_lmdb_pair([lr, hr], outs, skip_bad=True, progress=False)
    assert [r.keys for r in results] == [["p/a", "q/a"]] * 2
    for out in outs:
        assert [line.split(".")[0] for line in (out / "meta_info.txt").read_text().splitlines()] == ["p/a", "q/a"]
        client = FileClient("lmdb", db_paths=[str(out)], client_keys=["x"])
        assert client.get("c", "x") is None
    write(hr / "extra.png", noise(8, 8))
    with pytest.raises(DataToolError, match="extra"):
        lmdb_writer.make_lmdb_pair([lr, hr], [tmp_path / "l2.lmdb", tmp_path / "h2.lmdb"], progress=False)


def test_lmdb_refuses_paths_basicsr_cannot_key(tmp_path):
    write(tmp_path / "src" / "img.v2.png", noise(4, 4))
    write(tmp_path / "src" / "dup.png", noise(4, 4))
    write(tmp_path / "src" / "dup.jpg", noise(4, 4))
    with pytest.raises(DataToolError) as err:
        lmdb_writer.make_lmdb(tmp_path / "src", tmp_path / "o.lmdb", progress=False)
    assert "img.v2.png" in str(err.value) and "same key 'dup'" in str(err.value)
    assert not (tmp_path / "o.lmdb.partial").exists()


def test_lmdb_map_grows_when_full(tmp_path, monkeypatch):
    for i in range(6):
        write(tmp_path / "src" / f"{i}.png", noise(200, 200, 3, np.uint8, i))  # ~120 KB each, incompressible
    monkeypatch.setattr(lmdb_writer, "MIN_MAP_SIZE", 64 * 1024)
    monkeypatch.setattr(lmdb_writer, "_estimate_map_size", lambda folder, rels: 64 * 1024)
    monkeypatch.setattr(lmdb_writer, "BATCH_IMAGES", 2)
    result = lmdb_writer.make_lmdb(tmp_path / "src", tmp_path / "o.lmdb", progress=False)
    assert result.data_bytes > 6 * 100_000
    assert np.array_equal(read_lmdb(tmp_path / "o.lmdb", "5"), noise(200, 200, 3, np.uint8, 5))


# ---------------------------------------------------------------- sub-images


def test_crop_positions_follow_basicsr_recipe():
    assert crop_positions(1000, 480, 240) == [0, 240, 480, 520]  # last crop flush with the edge
    assert crop_positions(960, 480, 240) == [0, 240, 480]  # exact fit: no extra crop
    assert crop_positions(1000, 480, 240, thresh_size=40) == [0, 240, 480]  # rest 40 <= thresh: dropped
    assert crop_positions(300, 480, 240) == [0]  # short side kept whole
    assert crop_boxes(300, 1000, 480, 240)[-1] == (0, 520, 300, 480)


def test_subimages_cover_the_image_and_reassemble(tmp_path, capsys):
    img = noise(50, 70, 3, np.uint16, 7)
    write(tmp_path / "in" / "sub" / "pic.png", img)
    write(tmp_path / "in" / "tiny.png", noise(10, 40, 1))
    script = load_script("extract_subimages")
    argv = ["--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"), "--crop-size", "16", "--step", "12",
            "--workers", "2"]
    assert script.main(argv) == 0
    assert "tiny.png" in capsys.readouterr().out  # the kept-whole image is named in the summary
    boxes = crop_boxes(50, 70, 16, 12)
    names = sorted(p.name for p in (tmp_path / "out" / "sub").iterdir())
    assert names == [f"pic_s{i:03d}.png" for i in range(1, len(boxes) + 1)]
    canvas = np.zeros_like(img)
    covered = np.zeros(img.shape[:2], int)
    for i, (top, left, h, w) in enumerate(boxes, start=1):
        crop = cv2.imread(str(tmp_path / "out" / "sub" / f"pic_s{i:03d}.png"), cv2.IMREAD_UNCHANGED)
        assert crop.shape == (16, 16, 3) and crop.dtype == np.uint16
        canvas[top:top + h, left:left + w] = crop
        covered[top:top + h, left:left + w] += 1
    assert covered.min() >= 1 and covered.max() > 1  # everything covered, with overlap
    assert np.array_equal(canvas, img)
    tiny = sorted((tmp_path / "out").glob("tiny_s*.png"))  # 10x40: height kept whole, width cropped
    assert [cv2.imread(str(p), cv2.IMREAD_UNCHANGED).shape for p in tiny] == [(10, 16)] * 3

    skipped = extract_subimages(tmp_path / "in", tmp_path / "out2", 16, 12, small="skip", progress=False)
    assert skipped.small_skipped == ["tiny.png"] and not list((tmp_path / "out2").glob("tiny*"))


def test_paired_subimages_keep_hr_equal_lr_times_scale(tmp_path):
    hr = noise(40, 56, 3, np.uint8, 1)
    write(tmp_path / "hr" / "a.png", hr)
    write(tmp_path / "lr" / "a.png", hr[::4, ::4])
    result = extract_subimages(tmp_path / "hr", tmp_path / "hr_sub", 16, 12, input_lr=tmp_path / "lr",
                               output_lr=tmp_path / "lr_sub", scale=4, progress=False)
    assert result.crops == len(crop_boxes(10, 14, 4, 3))
    for hr_file in sorted((tmp_path / "hr_sub").iterdir()):
        hr_crop = cv2.imread(str(hr_file))
        lr_crop = cv2.imread(str(tmp_path / "lr_sub" / hr_file.name))
        assert hr_crop.shape == (16, 16, 3) and np.array_equal(hr_crop[::4, ::4], lr_crop)
    with pytest.raises(DataToolError, match="multiples of the scale"):
        extract_subimages(tmp_path / "hr", tmp_path / "x", 18, 12, input_lr=tmp_path / "lr", output_lr=tmp_path / "y",
                          scale=4, progress=False)


def test_unreadable_image_stops_subimages_with_its_path(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "bad.jpg").write_bytes(b"nope")
    with pytest.raises(DataToolError, match="bad.jpg"):
        extract_subimages(tmp_path / "in", tmp_path / "out", 16, 8, progress=False)


# ---------------------------------------------------------------- bicubic LR


def test_bicubic_downscale_matches_basicsr_and_keeps_depth():
    img8 = noise(16, 24, 3, np.uint8)
    expected = np.clip(np.round(imresize(img8.astype(np.float32) / 255, 1 / 4) * 255), 0, 255)
    assert np.array_equal(bicubic_downscale(img8, 4), expected.astype(np.uint8))
    img16 = noise(16, 24, 1, np.uint16)
    lr16 = bicubic_downscale(img16, 2)
    assert lr16.dtype == np.uint16 and lr16.shape == (8, 12)
    assert bicubic_downscale(noise(8, 8, 4), 4).shape == (2, 2, 4)
    with pytest.raises(DataToolError, match="not a multiple"):
        bicubic_downscale(noise(10, 8), 4)


def test_make_lr_modes(tmp_path, capsys):
    write(tmp_path / "hr" / "even.png", noise(16, 24, 3, np.uint16))
    write(tmp_path / "hr" / "sub" / "odd.jpg", noise(18, 27))
    script = load_script("make_lr")
    assert script.main(["--input", str(tmp_path / "hr"), "--output", str(tmp_path / "lr_e"), "--mode", "error"]) == 1
    err = capsys.readouterr().err
    assert "odd.jpg" in err and "27x18" in err
    assert script.main(["--input", str(tmp_path / "hr"), "--output", str(tmp_path / "lr_c")]) == 1
    assert "--hr-output" in capsys.readouterr().err  # crop needs somewhere to put the cropped HR
    result = make_lr_folder(tmp_path / "hr", tmp_path / "lr", 4, hr_output=tmp_path / "hr_png", progress=False)
    assert result.written == 2 and result.cropped == [("sub/odd.jpg", (27, 18), (24, 16))]
    assert list_images(tmp_path / "lr") == list_images(tmp_path / "hr_png") == ["even.png", "sub/odd.png"]
    for rel in ("even.png", "sub/odd.png"):
        hr = cv2.imread(str(tmp_path / "hr_png" / rel), cv2.IMREAD_UNCHANGED)
        lr = cv2.imread(str(tmp_path / "lr" / rel), cv2.IMREAD_UNCHANGED)
        assert hr.shape[:2] == (16, 24) and lr.shape[:2] == (4, 6) and lr.dtype == hr.dtype
    assert cv2.imread(str(tmp_path / "lr" / "even.png"), cv2.IMREAD_UNCHANGED).dtype == np.uint16


# ---------------------------------------------------------------- meta-info


def test_meta_info_formats_and_check(tmp_path, capsys):
    gt, lr = tmp_path / "gt", tmp_path / "lr"
    for name in ("0001", "0002"):
        write(gt / f"{name}.png", noise(8, 8))
        write(lr / f"{name}.png", noise(2, 2))
    assert folder_meta_info(gt) == ["0001.png", "0002.png"]
    lines, basicsr_ok = paired_meta_info(gt, lr)
    assert basicsr_ok
    meta = write_meta_info(lines, tmp_path / "meta_info.txt")
    assert meta.read_text() == "0001.png\n0002.png\n"
    paths = paired_paths_from_meta_info_file([str(lr), str(gt)], ["lq", "gt"], str(meta), "{}")
    assert all(Path(p["lq_path"]).is_file() and Path(p["gt_path"]).is_file() for p in paths)
    assert check_meta_info(meta, gt, lr, scale=4) == []
    assert "not 2x" in check_meta_info(meta, gt, lr, scale=2)[0]

    write(gt / "sub" / "0003.png", noise(8, 8))
    with pytest.raises(DataToolError, match="sub/0003"):
        paired_meta_info(gt, lr)
    write(lr / "sub" / "0003.png", noise(2, 2))
    assert paired_meta_info(gt, lr) == (["0001.png", "0002.png", "sub/0003.png"], False)  # basicsr looks flat

    (gt / "0002.png").write_bytes(b"corrupt")
    script = load_script("generate_meta_info")
    assert script.main(["--input", str(gt), "--output", str(tmp_path / "m.txt"), "--check"]) == 1
    captured = capsys.readouterr()
    assert str(gt / "0002.png") in captured.err and "1 failed" in captured.out


# ---------------------------------------------------------------- sample set


def test_sample_photos_are_present_and_splits_disjoint():
    train = {p.name for p in sample_data.TRAIN_PHOTOS}
    val = {p.name for p in sample_data.VAL_PHOTOS}
    assert not train & val and len(val) >= 3
    sources = [p.locate() for p in sample_data.TRAIN_PHOTOS + sample_data.VAL_PHOTOS]
    assert len(set(sources)) == len(sources)


def test_whole_photos_are_the_photos_cropped_to_the_scale(tmp_path):
    paths = sample_data.write_whole_photos(tmp_path / "whole", 4)
    assert [p.stem for p in paths] == [p.name for p in sample_data.VAL_PHOTOS]
    for path, photo in zip(paths, sample_data.VAL_PHOTOS, strict=True):
        source = sample_data.load_photo(photo)
        written = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        h, w = source.shape[0] // 4 * 4, source.shape[1] // 4 * 4
        assert written.shape == (h, w, 3) and np.array_equal(written, source[:h, :w])


def test_sample_builder_is_deterministic(tmp_path):
    subset = {"train_photos": sample_data.TRAIN_PHOTOS[:2], "val_photos": sample_data.VAL_PHOTOS[:1]}
    a = sample_data.prepare_sample_data(tmp_path / "a", 4, tile_size=256, **subset)
    sample_data.prepare_sample_data(tmp_path / "b", 4, tile_size=256, **subset)
    files = sorted(p.relative_to(tmp_path / "a").as_posix() for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(tmp_path / "b").as_posix() for p in (tmp_path / "b").rglob("*")
                           if p.is_file())
    for rel in files:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel
    assert a.train_pairs == 8 and a.val_pairs == 1  # two 512x512 photos in 256 px tiles
    assert list_images(tmp_path / "a" / "train" / "high_res") == list_images(tmp_path / "a" / "train" / "low_res")
    assert list_images(tmp_path / "a" / "val" / "low_res") == ["chelsea.png"]
    for split in ("train", "val"):
        for rel in list_images(tmp_path / "a" / split / "high_res"):
            hr = cv2.imread(str(tmp_path / "a" / split / "high_res" / rel), cv2.IMREAD_UNCHANGED)
            lr = cv2.imread(str(tmp_path / "a" / split / "low_res" / rel), cv2.IMREAD_UNCHANGED)
            assert hr.shape == (lr.shape[0] * 4, lr.shape[1] * 4, 3)
    train_sources = {name.split("_s")[0] for name in list_images(tmp_path / "a" / "train" / "high_res")}
    assert train_sources == {"astronaut", "camera"}
    # rebuilding over its own output works; a foreign folder is refused
    sample_data.prepare_sample_data(tmp_path / "a", 4, tile_size=256, **subset)
    write(tmp_path / "mine" / "x.png", noise(4, 4))
    with pytest.raises(DataToolError, match="--overwrite"):
        sample_data.prepare_sample_data(tmp_path / "mine", 4, **subset)
