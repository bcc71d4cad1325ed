"""A fine-tune's own validation split, carved from its training HR tiles: what ``val.keep_best`` judges.

Keep-best must not choose by the photos the result is finally judged on, and it must not choose by
images it trained on, nor by other tiles of the photos it trained on: a tile of a brick wall whose
other tiles were trained on rewards memorising that wall (measured: the validation split's ST-LPIPS
improved 0.350 -> 0.275 while held-out photos got worse). ``make_finetune_split`` therefore holds
out whole PHOTOS (tiles are named ``<photo>_sNNN``, as ``tools.sample_data`` writes them): a seeded
draw of ``val_photos`` of them. It lists the other photos' tiles in a meta-info file for
``RealESRGANHRDataset`` (``meta_info_file``) and turns the held-out photos' tiles (center crops)
into a paired validation set degraded by the fine-tune's own pipeline with fixed seeds
(``pipeline_lr.make_pipeline_val_set``).
"""

from __future__ import annotations

import random
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from realesrgan_ext.data.degradation_options import DegradationOptions
from realesrgan_ext.data.image_io import read_image
from realesrgan_ext.tools.image_files import DataToolError, list_images, strip_extension, write_png
from realesrgan_ext.tools.pipeline_lr import make_pipeline_val_set
from realesrgan_ext.tools.sample_data import center_crop

TILE_NAME = re.compile(r"^(?P<photo>.+)_s(?P<index>\d+)$")


@dataclass(frozen=True)
class FinetuneSplit:
    train_list: Path  # meta-info file: the training tiles, one per line
    val_dir: Path  # high_res/ + low_res/
    train_count: int
    val_count: int


def photo_of(name: str) -> str:
    """The source photo of a tile name (``<photo>_sNNN``); a name without the suffix is its own photo."""
    match = TILE_NAME.match(name)
    return match["photo"] if match else name


def held_out_photos(names: list[str], count: int, seed: int) -> set[str]:
    """A seeded draw of ``count`` photos (by name, independent of listing order); at least one stays
    in training."""
    photos = sorted({photo_of(name) for name in names})
    if not 0 < count < len(photos):
        raise DataToolError(f"cannot hold out {count} of {len(photos)} photo(s) for validation: "
                            "it takes at least one photo held out and one left to train on")
    return set(random.Random(seed).sample(photos, count))


def make_finetune_split(hr_dir: str | Path, out_dir: str | Path, options: DegradationOptions, scale: int,
                        crop: int = 256, copies: int = 1, seed: int = 1, val_photos: int = 2) -> FinetuneSplit:
    """Write ``out_dir/train.txt`` and ``out_dir/val/{high_res,low_res}`` (``copies`` seeded LR draws of a
    ``crop`` px center crop of every tile of the ``val_photos`` held-out photos). Rebuilt from
    scratch each call."""
    hr_dir, out_dir = Path(hr_dir), Path(out_dir)
    rels = list_images(hr_dir)
    if not rels:
        raise DataToolError(f"{hr_dir}: no image files found")
    names = [strip_extension(rel) for rel in rels]
    photos = held_out_photos(names, val_photos, seed)
    held = {name for name in names if photo_of(name) in photos}
    crops = out_dir / "held_out_hr"
    shutil.rmtree(crops, ignore_errors=True)
    for rel, name in zip(rels, names, strict=True):
        if name in held:
            source = str(hr_dir / rel)
            write_png(crops / f"{name}.png", center_crop(read_image(source), crop // scale * scale), 3, source)
    train = [rel for rel, name in zip(rels, names, strict=True) if name not in held]
    out_dir.mkdir(parents=True, exist_ok=True)
    train_list = out_dir / "train.txt"
    train_list.write_text("".join(f"{rel}\n" for rel in train), encoding="utf-8")
    count = make_pipeline_val_set(crops, out_dir / "val", options, scale, copies, seed)
    return FinetuneSplit(train_list, out_dir / "val", len(train), count)
