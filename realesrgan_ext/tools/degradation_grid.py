"""A picture of what the degradation pipeline does: HR crops beside the LR it makes from them.

Each row is one HR crop followed by several LR draws of the pipeline (different seeds, so the
variety shows), each LR enlarged by nearest neighbour to the HR's size so single LR pixels stay
visible. Any option file works: its ``datasets.train.degradation`` (defaults when absent), its
``scale`` and, unless given, its training images (``datasets.train.dataroot_gt``, folder or LMDB).
"""

from __future__ import annotations

import random
from pathlib import Path

import cv2
import numpy as np

from realesrgan_ext.data.image_io import load_training_image
from realesrgan_ext.data.image_store import open_store
from realesrgan_ext.tools.image_files import DataToolError, write_png
from realesrgan_ext.tools.pipeline_lr import pipeline_downscale, read_option_file

LABEL_HEIGHT = 18


def _crops(root: str, count: int, size: int, seed: int) -> list[tuple[str, np.ndarray]]:
    """``count`` random ``size`` px crops (8-bit BGR) from different images of ``root`` where possible."""
    store = open_store(root)
    keys = sorted(store.keys())
    if not keys:
        raise DataToolError(f"{root}: no images found")
    rng = random.Random(seed)
    chosen = rng.sample(keys, count) if count <= len(keys) else [rng.choice(keys) for _ in range(count)]
    crops = []
    for key in chosen:
        img = load_training_image(store.read(key), store.source(key))
        h, w = img.shape[:2]
        if h < size or w < size:
            img = cv2.copyMakeBorder(img, 0, max(0, size - h), 0, max(0, size - w), cv2.BORDER_REFLECT_101)
            h, w = img.shape[:2]
        top, left = rng.randint(0, h - size), rng.randint(0, w - size)
        crop = img[top:top + size, left:left + size]
        crops.append((key, np.clip(np.round(crop * 255), 0, 255).astype(np.uint8)))
    return crops


def _labelled(tile: np.ndarray, text: str) -> np.ndarray:
    label = np.full((LABEL_HEIGHT, tile.shape[1], 3), 255, np.uint8)
    cv2.putText(label, text, (3, LABEL_HEIGHT - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([label, tile])


def degradation_grid(option_file: str | Path, output: str | Path, *, input_dir: str | None = None,
                     images: int = 4, draws: int = 3, crop: int | None = None, seed: int = 0,
                     gap: int = 4) -> Path:
    """Write the grid PNG to ``output`` and return its path.

    ``crop``: HR crop side (default: the option file's ``gt_size``, else 256); a multiple of the scale.
    """
    from realesrgan_ext.tools.pipeline_lr import degradation_of_file

    opt = read_option_file(option_file)
    options, scale = degradation_of_file(option_file)
    train = (opt.get("datasets") or {}).get("train") or {}
    root = input_dir or train.get("dataroot_gt")
    if not root:
        raise DataToolError(f"{option_file}: no datasets.train.dataroot_gt; pass the HR folder (--input)")
    size = int(crop or train.get("gt_size") or 256)
    if size % scale:
        raise DataToolError(f"crop {size} is not a multiple of the scale {scale}")
    rows = []
    for row, (key, hr) in enumerate(_crops(str(root), images, size, seed)):
        tiles = [_labelled(hr, f"HR {Path(key).name}"[:size // 7])]
        for draw in range(draws):
            draw_seed = seed * 1000 + row * draws + draw
            lr = pipeline_downscale(hr, options, scale, draw_seed, f"{root}:{key}")
            big = cv2.resize(lr, (size, size), interpolation=cv2.INTER_NEAREST)
            tiles.append(_labelled(big, f"LR x{scale} seed {draw_seed}"))
        spacer = np.full((tiles[0].shape[0], gap, 3), 255, np.uint8)
        rows.append(np.hstack([t for tile in tiles for t in (tile, spacer)][:-1]))
    spacer = np.full((gap, rows[0].shape[1], 3), 255, np.uint8)
    grid = np.vstack([r for row in rows for r in (row, spacer)][:-1])
    output = Path(output)
    write_png(output, grid, 9, str(output))
    return output
