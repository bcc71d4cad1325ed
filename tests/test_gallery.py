"""The README's gallery: scripts/make_gallery.py lays out bicubic, each model and the original crop
exactly, picks its default columns from what exists, refuses bad crops, and the committed picture
is the small one the README shows."""

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from realesrgan_ext.archs.rrdb_arch import RRDBGenerator
from realesrgan_ext.tools import gallery
from realesrgan_ext.tools.bicubic_lr import bicubic_downscale
from realesrgan_ext.tools.image_files import DataToolError
from tests.helpers import load_script

REPO = Path(__file__).resolve().parents[1]
make_gallery = load_script("make_gallery")
COMMITTED = REPO / "docs" / "gallery" / "gallery.jpg"
MAX_BYTES = 400_000


@pytest.fixture
def tiny_model(tmp_path):
    """A random x4 RRDB (1 block, 8 features) saved as a BasicSR checkpoint; the network itself too."""
    net = RRDBGenerator(scale=4, num_feat=8, num_block=1, num_grow_ch=4).eval()
    path = tmp_path / "tiny_x4.pth"
    torch.save({"params": net.state_dict()}, path)
    return path, net


def test_script_lays_out_bicubic_model_and_original(tmp_path, tiny_model, one_torch_thread):
    path, net = tiny_model
    out = tmp_path / "g.png"
    assert make_gallery.main(["--output", str(out), "--crop", "chelsea:40:90", "--crop", "flower:120:210",
                              "--size", "32", "--model", f"tiny={path}"]) == 0
    picture = np.asarray(Image.open(out).convert("RGB"))
    size, gap, header = 32, gallery.GAP, gallery.HEADER_HEIGHT
    assert picture.shape == (header + 2 * size + gap, 3 * size + 2 * gap, 3)
    for row, (photo, top, left) in enumerate([("chelsea", 40, 90), ("flower", 120, 210)]):
        y = header + row * (size + gap)
        panels = [picture[y:y + size, c * (size + gap):c * (size + gap) + size] for c in range(3)]
        original = np.asarray(Image.open(gallery.PHOTOS[photo].locate()).convert("RGB"))[top:top + size,
                                                                                          left:left + size]
        lr = bicubic_downscale(original, 4)
        bicubic = cv2.resize(lr.astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
        with torch.no_grad():
            sr = net(torch.from_numpy(lr).permute(2, 0, 1)[None].float() / 255)[0].permute(1, 2, 0).numpy()
        np.testing.assert_array_equal(panels[2], original)
        assert np.abs(panels[0].astype(int) - np.clip(np.round(bicubic), 0, 255)).max() == 0
        assert np.abs(panels[1].astype(int) - np.clip(np.round(sr * 255), 0, 255)).max() <= 1
    titles = picture[:header]
    for c in range(3):  # each column has its title drawn in dark pixels
        assert (titles[:, c * (size + gap):c * (size + gap) + size] < 100).any()


def test_default_columns_follow_what_exists(tmp_path):
    assert [m for _, m in gallery.default_models(tmp_path)] == [
        "realesrgan-x4plus", "realesrgan-x4plus-anime", "realesr-animevideov3-x4"]
    demo = tmp_path / "experiments" / "demo_x4" / "models" / "net_g_latest.pth"
    demo.parent.mkdir(parents=True)
    demo.write_bytes(b"")
    assert gallery.default_models(tmp_path) == [("Real-ESRGAN x4plus", "realesrgan-x4plus"), ("demo model", str(demo))]


def test_bad_crops_are_refused_by_name(tmp_path, capsys):
    with pytest.raises(DataToolError, match="PHOTO:TOP:LEFT"):
        gallery.parse_crop("nosuchphoto:1:2")
    with pytest.raises(DataToolError, match="chelsea:200:0 of 192 px leaves the 451x300 photo"):
        gallery.cut(gallery.Crop("chelsea", 200, 0), 192)
    assert make_gallery.main(["--output", str(tmp_path / "g.png"), "--crop", "chelsea:1"]) == 1
    assert "expected PHOTO:TOP:LEFT" in capsys.readouterr().err


def test_committed_gallery_is_the_small_default_layout():
    assert 0 < COMMITTED.stat().st_size <= MAX_BYTES
    width, height = Image.open(COMMITTED).size
    size, gap, rows = gallery.DEFAULT_SIZE, gallery.GAP, len(gallery.DEFAULT_CROPS)
    assert height == gallery.HEADER_HEIGHT + rows * size + (rows - 1) * gap
    assert (width + gap) % (size + gap) == 0 and (width + gap) // (size + gap) >= 4  # bicubic, models, original
    assert "docs/gallery/gallery.jpg" in (REPO / "README.md").read_text()
