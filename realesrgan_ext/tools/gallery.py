"""The README's before/after picture: crops of sample photos, enlarged 4x by bicubic and by models.

Each row is one crop of a photo that ships with an installed package (``sample_data``; by default
photos held out of the demo's training). The crop is reduced by the scale with the demo's bicubic
(``bicubic_downscale``), then enlarged again by bicubic interpolation (OpenCV's, as the training
plots' baseline) and by each model through the same engine as ``scripts/inference.py``, beside the
original crop. Column titles are drawn once on top. Nothing is downloaded: the models are the
bundled official ones and any checkpoints the demos left in ``experiments/``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from realesrgan_ext.tools.bicubic_lr import bicubic_downscale
from realesrgan_ext.tools.image_files import DataToolError
from realesrgan_ext.tools.sample_data import TRAIN_PHOTOS, VAL_PHOTOS, Photo

SCALE = 4
HEADER_HEIGHT = 26
FONT_SIZE = 15
GAP = 4
JPEG_QUALITY = 92
PHOTOS = {p.name: p for p in (*VAL_PHOTOS, *TRAIN_PHOTOS)}


@dataclass(frozen=True)
class Crop:
    """A square region of a sample photo, in the photo's pixels."""

    photo: str
    top: int
    left: int


# A cat's eye, dahlia petals, a launch tower's lattice at dusk: photos held out of the demos' training.
DEFAULT_CROPS = (Crop("chelsea", 40, 90), Crop("flower", 120, 210), Crop("rocket", 220, 0))
DEFAULT_SIZE = 192
BUNDLED_COLUMNS = (("Real-ESRGAN x4plus", "realesrgan-x4plus"),)
BUNDLED_FALLBACK = (("x4plus anime", "realesrgan-x4plus-anime"), ("animevideov3", "realesr-animevideov3-x4"))
DEMO_COLUMNS = (("demo model", "experiments/demo_x4/models/net_g_latest.pth"),
                ("real-world demo", "experiments/realworld_demo_x4/models/net_g_latest.pth"))


def default_models(root: str | Path) -> list[tuple[str, str]]:
    """(title, model) columns: x4plus, then the demo checkpoints under ``root`` where they exist,
    else the other bundled models (anime, animevideov3)."""
    demos = [(title, str(Path(root) / rel)) for title, rel in DEMO_COLUMNS if (Path(root) / rel).is_file()]
    return [*BUNDLED_COLUMNS, *(demos or BUNDLED_FALLBACK)]


def parse_crop(text: str) -> Crop:
    """``PHOTO:TOP:LEFT`` (a sample photo's name and the crop's corner) as a ``Crop``."""
    parts = text.split(":")
    if len(parts) != 3 or parts[0] not in PHOTOS or not all(p.isdigit() for p in parts[1:]):
        raise DataToolError(f"crop {text!r}: expected PHOTO:TOP:LEFT with PHOTO one of {sorted(PHOTOS)}")
    return Crop(parts[0], int(parts[1]), int(parts[2]))


def cut(crop: Crop, size: int) -> np.ndarray:
    """The ``size`` px RGB uint8 region of the crop's photo; an error if it does not fit."""
    from realesrgan_ext.inference import load_image

    photo: Photo = PHOTOS[crop.photo]
    pixels = load_image(photo.locate()).pixels
    if pixels.ndim != 3 or pixels.shape[2] != 3:
        pixels = cv2.cvtColor(pixels if pixels.ndim == 2 else pixels[..., 0], cv2.COLOR_GRAY2RGB)
    h, w = pixels.shape[:2]
    if crop.top + size > h or crop.left + size > w:
        raise DataToolError(f"crop {crop.photo}:{crop.top}:{crop.left} of {size} px leaves the {w}x{h} photo")
    return np.ascontiguousarray(pixels[crop.top:crop.top + size, crop.left:crop.left + size])


def bicubic_up(lr: np.ndarray, scale: int) -> np.ndarray:
    """``lr`` enlarged ``scale`` times by OpenCV's bicubic, rounded to uint8."""
    big = cv2.resize(lr.astype(np.float32), (lr.shape[1] * scale, lr.shape[0] * scale), interpolation=cv2.INTER_CUBIC)
    return np.clip(np.round(big), 0, 255).astype(np.uint8)


def _upscalers(models: Sequence[tuple[str, str]], backend: str, precision: str) -> list:
    from realesrgan_ext.inference import load_model
    from realesrgan_ext.inference.bundled_models import is_official_name, official_model_path
    from realesrgan_ext.inference.engines import make_upscaler

    upscalers = []
    for _, source in models:
        path = source if Path(source).exists() or not is_official_name(source) else official_model_path(source)
        upscaler = make_upscaler(load_model(path), backend, precision, tile=0)
        if upscaler.scale != SCALE:
            raise DataToolError(f"{source}: a x{upscaler.scale} model; the gallery compares x{SCALE} models")
        upscalers.append(upscaler)
    return upscalers


def gallery_rows(crops: Sequence[Crop], models: Sequence[tuple[str, str]], size: int = DEFAULT_SIZE, *,
                 backend: str = "pytorch", precision: str = "fp32") -> tuple[list[str], list[list[np.ndarray]]]:
    """Column titles and, per crop, its panels (RGB uint8, ``size`` px): bicubic, each model, original."""
    if size % SCALE:
        raise DataToolError(f"crop size {size} is not a multiple of the scale {SCALE}")
    upscalers = _upscalers(models, backend, precision)
    rows = []
    for crop in crops:
        hr = cut(crop, size)
        lr = bicubic_downscale(hr, SCALE, f"{crop.photo} crop")
        rows.append([bicubic_up(lr, SCALE), *(u.upscale(lr) for u in upscalers), hr])
    return ["bicubic", *(title for title, _ in models), "original"], rows


def compose(titles: Sequence[str], rows: Sequence[Sequence[np.ndarray]]) -> Image.Image:
    """One picture: the titles over their columns, the rows below, white gaps between panels."""
    size = rows[0][0].shape[0]
    width = len(titles) * size + (len(titles) - 1) * GAP
    height = HEADER_HEIGHT + len(rows) * size + (len(rows) - 1) * GAP
    canvas = Image.new("RGB", (width, height), "white")
    draw, font = ImageDraw.Draw(canvas), ImageFont.load_default(size=FONT_SIZE)
    for col, title in enumerate(titles):
        x = col * (size + GAP) + size // 2
        draw.text((x, HEADER_HEIGHT // 2), title, fill="black", font=font, anchor="mm")
    for r, panels in enumerate(rows):
        for col, panel in enumerate(panels):
            canvas.paste(Image.fromarray(panel), (col * (size + GAP), HEADER_HEIGHT + r * (size + GAP)))
    return canvas


def make_gallery(output: str | Path, crops: Sequence[Crop] = DEFAULT_CROPS,
                 models: Sequence[tuple[str, str]] | None = None, size: int = DEFAULT_SIZE, *,
                 root: str | Path = ".", backend: str = "pytorch", precision: str = "fp32") -> Path:
    """Write the gallery to ``output`` (``.jpg``: quality 92, no chroma subsampling; ``.png``) and return it.

    ``models``: (title, model) pairs, a model being a bundled name or a checkpoint path; default
    ``default_models(root)``.
    """
    titles, rows = gallery_rows(crops, models or default_models(root), size, backend=backend, precision=precision)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.partial{output.suffix}")
    options = {"quality": JPEG_QUALITY, "subsampling": 0} if output.suffix.lower() in (".jpg", ".jpeg") else {}
    compose(titles, rows).save(tmp, **options)
    tmp.replace(output)
    return output
