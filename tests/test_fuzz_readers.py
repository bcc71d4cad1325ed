"""Property-based fuzzing of the image readers and the checkpoint loader (Hypothesis, derandomized).

On random bytes and on mutations of small valid files (bytes overwritten, inserted, cut off) the
only outcomes allowed are a result or the documented error: ``ImageReadError`` for images,
``ModelLoadError`` for checkpoints. Tight limits keep a mutated header that declares a large
(but allowed) image from making an example slow.
"""

import io
import tempfile
from pathlib import Path

import cv2
import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from realesrgan_ext.archs.rrdb_arch import RRDBGenerator
from realesrgan_ext.data.image_io import ImageReadError, decode_image
from realesrgan_ext.inference.image_io import InputImage, decode
from realesrgan_ext.inference.model_loader import LoadedModel, ModelLoadError, load_model
from realesrgan_ext.limits import Limits

FUZZ = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SMALL = Limits(max_image_pixels=2 ** 16, max_image_frames=8, max_output_pixels=2 ** 18, max_model_params=2 ** 20,
               max_model_bytes=2 ** 22, max_structure_items=10_000)


def _image_seeds() -> list[bytes]:
    img = np.random.default_rng(0).integers(0, 256, (6, 5, 3), dtype=np.uint8)
    seeds = [cv2.imencode(ext, img)[1].tobytes() for ext in (".png", ".jpg", ".webp", ".bmp", ".tif", ".ppm")]
    seeds.append(cv2.imencode(".png", np.dstack([img, img[:, :, :1]]))[1].tobytes())  # RGBA
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "GIF")
    return [*seeds, buf.getvalue()]


def _checkpoint_seeds() -> list[bytes]:
    seeds = []
    for content in ({"params": RRDBGenerator(num_feat=4, num_block=1, num_grow_ch=2, scale=4).state_dict()},
                    {"params_ema": RRDBGenerator(num_feat=4, num_block=1, num_grow_ch=2, scale=2).state_dict(),
                     "arch": {"type": "RRDBGenerator", "num_feat": 4, "num_block": 1, "num_grow_ch": 2, "scale": 2}}):
        buf = io.BytesIO()
        torch.save(content, buf)
        seeds.append(buf.getvalue())
    return seeds


IMAGE_SEEDS, CHECKPOINT_SEEDS = _image_seeds(), _checkpoint_seeds()


@st.composite
def mutated(draw, seeds: list[bytes]) -> bytes:
    """A seed with a few bytes overwritten, a few inserted, and maybe cut short."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(0, 6))):
        at = draw(st.integers(0, len(data) - 1))
        if draw(st.booleans()):
            data[at] = draw(st.integers(0, 255))
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=4))
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data)


def _image_outcome(data: bytes) -> None:
    for read in (lambda: decode(data, "fuzz.png", "png", SMALL), lambda: decode_image(data, "fuzz", SMALL)):
        try:
            result = read()
        except ImageReadError as err:
            assert str(err).startswith("fuzz") and len(str(err)) < 600, str(err)
            continue
        pixels = result.pixels if isinstance(result, InputImage) else result
        assert isinstance(pixels, np.ndarray) and pixels.shape[0] * pixels.shape[1] <= SMALL.max_image_pixels


@FUZZ
@given(st.one_of(st.binary(max_size=600), mutated(IMAGE_SEEDS)))
def test_image_readers_give_an_image_or_an_image_read_error(data):
    _image_outcome(data)


def test_every_image_seed_decodes():
    for data in IMAGE_SEEDS:
        assert decode(data, "seed.png", "png", SMALL).pixels.shape[:2] == (6, 5)


@FUZZ
@given(st.one_of(st.binary(max_size=600), mutated(CHECKPOINT_SEEDS)))
def test_checkpoint_loader_gives_a_model_or_a_model_load_error(data):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.pth"
        path.write_bytes(data)
        try:
            loaded = load_model(path, limits=SMALL)
        except ModelLoadError as err:
            assert str(err).startswith(str(path)) and len(str(err)) < 1000, str(err)
            return
        assert isinstance(loaded, LoadedModel) and loaded.scale in (2, 4)


def test_every_checkpoint_seed_loads(tmp_path):
    for i, data in enumerate(CHECKPOINT_SEEDS):
        (tmp_path / f"{i}.pth").write_bytes(data)
        assert load_model(tmp_path / f"{i}.pth", limits=SMALL).scale == (4, 2)[i]
