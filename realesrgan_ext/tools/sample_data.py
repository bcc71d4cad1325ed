"""A small, deterministic LR/HR sample set from photographs shipped inside installed packages.

No download: the photos are files of scikit-image (``skimage/data``), scikit-learn
(``sklearn/datasets/images``) and matplotlib (``mpl-data/sample_data``), all pinned in
requirements.txt. Only real photographs are used (no line art, text, synthetic patterns or
medical / astronomical images); gray photos are stored as 3-channel BGR like the rest.

Layout written under ``output`` (default ``datasets/sample``)::

    train/high_res/{photo}_s{NNN}.png   tiles of ~256 px cut from the train photos
    train/low_res/{photo}_s{NNN}.png    their bicubic x``scale`` LR (same names)
    val/high_res/{photo}.png            a ~192 px center crop of each held-out photo
    val/low_res/{photo}.png
    SOURCES.txt                         which photo went where, and its source file

Validation photos are whole photos held out of training. Every HR side is a multiple of the
scale and every LR is exactly HR / scale (``bicubic_lr.bicubic_downscale``). Same bytes on
every run with the same package versions. The set is built in ``output.partial`` and moved
into place when complete.
"""

from __future__ import annotations

import importlib.util
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from realesrgan_ext.data.image_io import read_image
from realesrgan_ext.tools.bicubic_lr import bicubic_downscale, mod_crop
from realesrgan_ext.tools.image_files import DataToolError, write_png
from realesrgan_ext.tools.subimages import crop_boxes

SOURCES_NAME = "SOURCES.txt"
COMPRESS_LEVEL = 3


@dataclass(frozen=True)
class Photo:
    name: str
    package: str  # top-level package that ships the file
    path: str  # path inside the package folder

    def locate(self) -> Path:
        """The file on disk; never downloads (importlib finds the package without importing it)."""
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            raise DataToolError(f"sample photo {self.name}: package {self.package} is not installed "
                                f"(bash scripts/install.sh installs it)")
        file = Path(list(spec.submodule_search_locations)[0]) / self.path
        if not file.is_file():
            raise DataToolError(f"sample photo {self.name}: {file} is missing from the installed {self.package}")
        return file


TRAIN_PHOTOS = (
    Photo("astronaut", "skimage", "data/astronaut.png"),
    Photo("camera", "skimage", "data/camera.png"),
    Photo("coffee", "skimage", "data/coffee.png"),
    Photo("motorcycle", "skimage", "data/motorcycle_left.png"),
    Photo("brick", "skimage", "data/brick.png"),
    Photo("grass", "skimage", "data/grass.png"),
    Photo("gravel", "skimage", "data/gravel.png"),
    Photo("china", "sklearn", "datasets/images/china.jpg"),
    Photo("grace_hopper", "matplotlib", "mpl-data/sample_data/grace_hopper.jpg"),
)
VAL_PHOTOS = (
    Photo("chelsea", "skimage", "data/chelsea.png"),
    Photo("rocket", "skimage", "data/rocket.jpg"),
    Photo("flower", "sklearn", "datasets/images/flower.jpg"),
)


@dataclass
class SampleResult:
    output: Path
    train_pairs: int = 0
    val_pairs: int = 0
    train_photos: list[str] = field(default_factory=list)
    val_photos: list[str] = field(default_factory=list)


def load_photo(photo: Photo) -> np.ndarray:
    """The photo as uint8 3-channel BGR."""
    img = read_image(photo.locate())
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    elif img.shape[2] == 4:
        img = np.ascontiguousarray(img[:, :, :3])
    if img.dtype != np.uint8:
        raise DataToolError(f"sample photo {photo.name}: expected 8-bit, got {img.dtype}")
    return img


def center_crop(img: np.ndarray, size: int) -> np.ndarray:
    h, w = img.shape[:2]
    ch, cw = min(size, h), min(size, w)
    top, left = (h - ch) // 2, (w - cw) // 2
    return img[top:top + ch, left:left + cw]


def _write_pair(root: Path, split: str, name: str, hr: np.ndarray, scale: int) -> None:
    hr = mod_crop(hr, scale)
    write_png(root / split / "high_res" / f"{name}.png", hr, COMPRESS_LEVEL)
    write_png(root / split / "low_res" / f"{name}.png", bicubic_downscale(hr, scale, name), COMPRESS_LEVEL)


def write_whole_photos(folder: str | Path, scale: int, photos: tuple[Photo, ...] = VAL_PHOTOS) -> list[Path]:
    """Each photo whole (cropped to a multiple of ``scale``) as ``folder/<name>.png``: the fine-tune
    demo judges on these, not on the sample set's small center crops. Returns the files."""
    paths = []
    for photo in photos:
        paths.append(Path(folder) / f"{photo.name}.png")
        write_png(paths[-1], mod_crop(load_photo(photo), scale), COMPRESS_LEVEL)
    return paths


def prepare_sample_data(output: str | Path = "datasets/sample", scale: int = 4, *, tile_size: int = 256,
                        val_size: int = 192, train_photos: tuple[Photo, ...] = TRAIN_PHOTOS,
                        val_photos: tuple[Photo, ...] = VAL_PHOTOS, overwrite: bool = False) -> SampleResult:
    """Build the sample set (see the module doc). Train tiles: ``tile_size`` px, no overlap except the
    last row/column, which is flush with the photo's edge; val: a ``val_size`` px center crop.

    An existing ``output`` made by this function (it has ``SOURCES.txt``) is rebuilt; any other
    non-empty folder is refused unless ``overwrite``.
    """
    if scale < 1:
        raise DataToolError(f"scale must be >= 1, got {scale}")
    shared = {p.name for p in train_photos} & {p.name for p in val_photos}
    if shared:
        raise DataToolError(f"photos in both train and val: {sorted(shared)}")
    tile = tile_size // scale * scale
    crop = val_size // scale * scale
    if tile < scale or crop < scale:
        raise DataToolError(f"tile size {tile_size} and val size {val_size} must be >= the scale {scale}")
    output = Path(output)
    if output.exists() and any(output.iterdir()) and not (output / SOURCES_NAME).is_file() and not overwrite:
        raise DataToolError(f"{output} exists and was not made by prepare_sample_data; pass --overwrite or "
                            "choose another --output")
    partial = Path(f"{output}.partial")
    if partial.exists():
        shutil.rmtree(partial)
    result = SampleResult(output)
    sources = [f"# LR/HR sample set, x{scale}, tile {tile}, val crop {crop}: split, photo, file\n"]
    try:
        for photo in train_photos:
            img = load_photo(photo)
            h, w = img.shape[:2]
            for index, (top, left, th, tw) in enumerate(crop_boxes(h, w, tile, tile), start=1):
                _write_pair(partial, "train", f"{photo.name}_s{index:03d}", img[top:top + th, left:left + tw], scale)
                result.train_pairs += 1
            result.train_photos.append(photo.name)
            sources.append(f"train {photo.name} {photo.package}/{photo.path}\n")
        for photo in val_photos:
            _write_pair(partial, "val", photo.name, center_crop(load_photo(photo), crop), scale)
            result.val_pairs += 1
            result.val_photos.append(photo.name)
            sources.append(f"val {photo.name} {photo.package}/{photo.path}\n")
        (partial / SOURCES_NAME).write_text("".join(sources), encoding="utf-8")
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    if output.exists():
        shutil.rmtree(output)
    partial.rename(output)
    return result
