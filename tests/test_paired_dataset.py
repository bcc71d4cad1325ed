"""PairedLRHRDataset: pairing, aligned crops, size checks, bit depths, LMDB input."""

import cv2
import lmdb
import numpy as np
import pytest
import torch
from basicsr.data import build_dataset
from helpers import smooth_image, write_pair_folders

from realesrgan_ext.data.image_store import FolderStore
from realesrgan_ext.data.pairing import pair_images, read_meta_info


def make_opt(hr_dir, lr_dir, **extra):
    opt = {"name": "t", "type": "PairedLRHRDataset", "dataroot_gt": str(hr_dir), "dataroot_lq": str(lr_dir),
           "scale": 4, "phase": "train", "gt_size": 16, "use_hflip": True, "use_rot": True}
    opt.update(extra)
    return opt


def test_pairs_by_name_in_public_layout(tmp_path):
    hr_dir, lr_dir = write_pair_folders(tmp_path / "train", ["b", "a", "sub/a"])
    ds = build_dataset(make_opt(hr_dir, lr_dir))
    assert len(ds) == 3
    assert [p[0] for p in ds.pairs] == ["a", "b", "sub/a"]
    item = ds[0]
    assert item["gt"].shape == (3, 16, 16) and item["lq"].shape == (3, 4, 4)
    assert item["gt"].dtype == torch.float32 and 0 <= item["gt"].min() and item["gt"].max() <= 1


def test_crop_is_aligned_between_lr_and_hr(tmp_path):
    """An HR made by nearest-upscaling the LR must stay its exact upscale after crop + augment."""
    hr_dir, lr_dir = tmp_path / "hr", tmp_path / "lr"
    hr_dir.mkdir()
    lr_dir.mkdir()
    lr = smooth_image(12, 10, seed=3)
    cv2.imwrite(str(lr_dir / "x.png"), lr)
    cv2.imwrite(str(hr_dir / "x.png"), cv2.resize(lr, (40, 48), interpolation=cv2.INTER_NEAREST))
    ds = build_dataset(make_opt(hr_dir, lr_dir, gt_size=24))
    for _ in range(20):
        item = ds[0]
        up = torch.nn.functional.interpolate(item["lq"][None], scale_factor=4, mode="nearest")[0]
        assert torch.equal(up, item["gt"])


def test_size_mismatch_names_pair_and_sizes(tmp_path):
    hr_dir, lr_dir = write_pair_folders(tmp_path, ["img"])
    cv2.imwrite(str(lr_dir / "img.png"), smooth_image(9, 8))
    with pytest.raises(ValueError, match=r"1 of 1 LR/HR pairs in .* do not match the scale x4 .*\n  HR img 32x32, "
                                         r"LR img 8x9"):
        build_dataset(make_opt(hr_dir, lr_dir))  # read from the headers before training starts
    from realesrgan_ext.data.paired_lrhr_dataset import check_pair_sizes

    with pytest.raises(ValueError, match=r"HR .*img\.png is 32x32, LR .*img\.png is 8x9"):  # as read (LMDB)
        check_pair_sizes(np.zeros((32, 32, 3)), np.zeros((9, 8, 3)), 4, str(hr_dir / "img.png"),
                         str(lr_dir / "img.png"))


def test_pairs_made_for_another_scale_are_refused_when_built(tmp_path):
    hr_dir, lr_dir = write_pair_folders(tmp_path, ["a", "b", "c"], hr_size=32, scale=2)
    with pytest.raises(ValueError, match=r"3 of 3 LR/HR pairs .* do not match the scale x4 \(each LR must be "
                                         r"exactly HR / 4\):\n  HR a 32x32, LR a 16x16\n"):
        build_dataset(make_opt(hr_dir, lr_dir, phase="val"))
    assert len(build_dataset(make_opt(hr_dir, lr_dir, scale=2, gt_size=16))) == 3


def test_missing_partner_is_reported(tmp_path):
    hr_dir, lr_dir = write_pair_folders(tmp_path, ["one", "two"])
    (lr_dir / "two.png").unlink()
    with pytest.raises(FileNotFoundError, match="LR 'two'"):
        build_dataset(make_opt(hr_dir, lr_dir))


def test_filename_template_and_other_extension(tmp_path):
    hr_dir, lr_dir = tmp_path / "hr", tmp_path / "lr"
    write_pair_folders(tmp_path, ["0001"], lr_ext=".jpg")
    (lr_dir).mkdir()
    (tmp_path / "low_res" / "0001.jpg").rename(lr_dir / "0001x4.jpg")
    (tmp_path / "high_res").rename(hr_dir)
    ds = build_dataset(make_opt(hr_dir, lr_dir, filename_tmpl="{}x4"))
    assert ds.pairs == [("0001", "0001x4")]
    assert ds[0]["lq"].shape == (3, 4, 4)


def test_gray_rgba_and_16bit_load(tmp_path):
    hr_dir, lr_dir = tmp_path / "hr", tmp_path / "lr"
    hr_dir.mkdir()
    lr_dir.mkdir()
    gray = smooth_image(16, 16, channels=1)[:, :, 0]
    cv2.imwrite(str(hr_dir / "gray.png"), gray)
    cv2.imwrite(str(lr_dir / "gray.png"), cv2.resize(gray, (4, 4), interpolation=cv2.INTER_AREA))
    rgba = np.dstack([smooth_image(16, 16, seed=1), np.full((16, 16), 7, np.uint8)])
    cv2.imwrite(str(hr_dir / "rgba.png"), rgba)
    cv2.imwrite(str(lr_dir / "rgba.png"), rgba[::4, ::4])
    deep = np.full((16, 16, 3), 65535, np.uint16)
    deep[..., 0] = 32768
    cv2.imwrite(str(hr_dir / "deep.png"), deep)
    cv2.imwrite(str(lr_dir / "deep.png"), deep[::4, ::4])
    ds = build_dataset(make_opt(hr_dir, lr_dir, phase="val"))
    items = {p[0]: ds[i] for i, p in enumerate(ds.pairs)}
    g = items["gray"]["gt"]
    assert torch.equal(g[0], g[1]) and torch.equal(g[1], g[2])
    assert torch.allclose(g[0], torch.from_numpy(gray / 255.0).float())
    rgb = torch.from_numpy(rgba[:, :, 2::-1] / 255.0).float().permute(2, 0, 1)  # alpha dropped, as imfrombytes
    torch.testing.assert_close(ds[ds.pairs.index(("rgba", "rgba"))]["gt"], rgb)
    d = items["deep"]["gt"]
    assert torch.allclose(d[2], torch.full((16, 16), 32768 / 65535))  # BGR blue -> RGB channel 2
    assert torch.allclose(d[0], torch.ones(16, 16))


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_training_images_follow_exif_orientation_as_basicsr(fmt):
    """An orientation-6 photo (stored sideways) is read upright, exactly as basicsr's imfrombytes reads it."""
    import io

    from basicsr.utils import imfrombytes
    from PIL import Image

    from realesrgan_ext.data.image_io import load_training_image

    pixels = smooth_image(12, 20, seed=3)[:, :, ::-1]  # RGB, 12 high, 20 wide as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buffer, fmt, exif=exif, quality=95)
    ours = load_training_image(buffer.getvalue(), "photo")
    assert ours.shape == (20, 12, 3)
    np.testing.assert_array_equal(ours, imfrombytes(buffer.getvalue(), float32=True))


def write_lmdb(folder, path):
    store = FolderStore(folder)
    env = lmdb.open(str(path), map_size=1 << 24)
    lines = []
    with env.begin(write=True) as txn:
        for key in store.keys():
            data = store.read(key)
            img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
            txn.put(key.encode(), data)
            lines.append(f"{key}.png ({img.shape[0]},{img.shape[1]},{img.shape[2]}) 1")  # BasicSR's format
    env.close()
    (path / "meta_info.txt").write_text("\n".join(lines) + "\n")


def test_reads_paired_lmdbs(tmp_path):
    hr_dir, lr_dir = write_pair_folders(tmp_path / "src", ["p/a", "q/a"])
    write_lmdb(hr_dir, tmp_path / "hr.lmdb")
    write_lmdb(lr_dir, tmp_path / "lr.lmdb")
    folder_ds = build_dataset(make_opt(hr_dir, lr_dir, phase="val"))
    lmdb_ds = build_dataset(make_opt(tmp_path / "hr.lmdb", tmp_path / "lr.lmdb", phase="val"))
    assert lmdb_ds.pairs == [("p/a", "p/a"), ("q/a", "q/a")]
    for i in range(2):
        assert torch.equal(folder_ds[i]["gt"], lmdb_ds[i]["gt"])
    again = build_dataset(make_opt(tmp_path / "hr.lmdb", tmp_path / "lr.lmdb", phase="val"))
    assert torch.equal(again[1]["lq"], lmdb_ds[1]["lq"])  # two datasets on one LMDB
    loader = torch.utils.data.DataLoader(lmdb_ds, batch_size=2, num_workers=1)
    assert next(iter(loader))["lq"].shape == (2, 3, 8, 8)


def test_reads_lmdbs_made_by_create_lmdb(tmp_path):
    from realesrgan_ext.tools.lmdb_writer import make_lmdb_pair

    hr_dir, lr_dir = write_pair_folders(tmp_path / "src", ["a", "sub/b"])
    make_lmdb_pair([hr_dir, lr_dir], [tmp_path / "hr.lmdb", tmp_path / "lr.lmdb"], progress=False)
    ds = build_dataset(make_opt(tmp_path / "hr.lmdb", tmp_path / "lr.lmdb", phase="val"))
    assert [p[0] for p in ds.pairs] == ["a", "sub/b"]
    assert ds[1]["gt"].shape == (3, 32, 32)


def test_meta_info_file_selects_pairs(tmp_path):
    hr_dir, lr_dir = write_pair_folders(tmp_path, ["a", "b", "c"])
    meta = tmp_path / "meta.txt"
    meta.write_text("c.png (32,32,3) 1\nb.png, a.png\n")
    assert read_meta_info(meta) == [("c", None), ("b", "a")]
    pairs = pair_images(FolderStore(hr_dir), FolderStore(lr_dir), "{}", str(meta))
    assert pairs == [("c", "c"), ("b", "a")]


def test_gt_size_must_be_multiple_of_scale(tmp_path):
    hr_dir, lr_dir = write_pair_folders(tmp_path, ["a"])
    with pytest.raises(ValueError, match="gt_size"):
        build_dataset(make_opt(hr_dir, lr_dir, gt_size=18))


def test_spawned_worker_reads_the_dataset(tmp_path):
    """A ``spawn`` worker re-imports our dataset module (and basicsr) without ``register()``:
    basicsr's init_dist sets ``spawn`` as the start method, so DDP data loading depends on it."""
    hr_dir, lr_dir = write_pair_folders(tmp_path / "src", ["a", "b"])
    dataset = build_dataset(make_opt(hr_dir, lr_dir, phase="val"))
    loader = torch.utils.data.DataLoader(dataset, batch_size=2, num_workers=1, multiprocessing_context="spawn")
    assert torch.equal(next(iter(loader))["lq"], torch.stack([dataset[0]["lq"], dataset[1]["lq"]]))
