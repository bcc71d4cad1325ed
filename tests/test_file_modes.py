"""Every file the project writes follows the umask (no private 0600 outputs, no executable data)."""

import os
import stat

import numpy as np
import pytest
import torch
from helpers import write_pair_folders

from realesrgan_ext.inference.image_io import save_image
from realesrgan_ext.tools.lmdb_writer import make_lmdb
from realesrgan_ext.utils.checkpoint import atomic_torch_save

UMASK = 0o027  # group may read, others nothing: expected files are 0640, folders 0750


@pytest.fixture
def umask_027():
    old = os.umask(UMASK)
    yield
    os.umask(old)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_upscaled_image_follows_the_umask(tmp_path, umask_027):
    out = save_image(tmp_path / "out" / "photo_out.png", np.zeros((4, 4, 3), np.uint8))
    assert mode(out) == 0o666 & ~UMASK
    assert os.listdir(out.parent) == ["photo_out.png"]  # no temporary left


def test_checkpoint_follows_the_umask(tmp_path, umask_027):
    atomic_torch_save({"params": {"w": torch.zeros(2)}}, tmp_path / "net_g_1.pth")
    assert mode(tmp_path / "net_g_1.pth") == 0o666 & ~UMASK


def test_lmdb_files_follow_the_umask(tmp_path, umask_027):
    hr, _ = write_pair_folders(tmp_path / "data", ["a", "b"], hr_size=16)
    make_lmdb(hr, tmp_path / "hr.lmdb", progress=False)
    files = sorted(p for p in (tmp_path / "hr.lmdb").iterdir())
    assert {p.name for p in files} >= {"data.mdb", "lock.mdb", "meta_info.txt"}
    for path in files:
        assert mode(path) == 0o666 & ~UMASK, path.name
    assert mode(tmp_path / "hr.lmdb") == 0o777 & ~UMASK
