"""A fine-tune's own validation split, carved from its training HR tiles: what ``val.keep_best`` judges.

Keep-best must not choose by the photos the result is finally judged on, and it must not choose by
images it trained on either. ``make_finetune_split`` holds out one tile of every source photo
(tiles are named ``<photo>_sNNN``, as ``tools.sample_data`` writes them; the last one is held out),
lists the others in a meta-info file for ``RealESRGANHRDataset`` (``meta_info_file``), and turns
the held-out tiles' center crops into a paired validation set degraded by the fine-tune's own
pipeline with fixed seeds (``pipeline_lr.make_pipeline_val_set``).
"""

from __future__ import annotations

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


def held_out_tiles(names: list[str]) -> set[str]:
    """The last tile of every photo that has at least two (a photo with one tile stays in training)."""
    by_photo: dict[str, list[str]] = {}
    for name in names:
        match = TILE_NAME.match(name)
        by_photo.setdefault(match["photo"] if match else name, []).append(name)
    return {sorted(tiles)[-1] for tiles in by_photo.values() if len(tiles) > 1}


def make_finetune_split(hr_dir: str | Path, out_dir: str | Path, options: DegradationOptions, scale: int,
                        crop: int = 128, copies: int = 2, seed: int = 1) -> FinetuneSplit:
    """Write ``out_dir/train.txt`` and ``out_dir/val/{high_res,low_res}`` (``copies`` seeded LR draws of a
    ``crop`` px center crop of each held-out tile). Rebuilt from scratch each call."""
    hr_dir, out_dir = Path(hr_dir), Path(out_dir)
    rels = list_images(hr_dir)
    names = [strip_extension(rel) for rel in rels]
    held = held_out_tiles(names)
    if not held:
        raise DataToolError(f"{hr_dir}: no photo has two tiles (<photo>_sNNN), nothing to hold out for validation")
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
