"""Inference: load a checkpoint, upscale images tile by tile, run over files and folders.

    from realesrgan_ext.inference import Upscaler, load_model, load_image, save_image

    model = load_model("RealESRGAN_x4plus.pth")         # LoadedModel: module + scale, channels, ...
    upscaler = Upscaler(model, tile=0, precision="auto", device="auto")
    image = load_image("photo.jpg")                     # RGB / gray / +alpha, uint8 or uint16
    save_image("photo_x4.png", upscaler.upscale(image.pixels, outscale=None))

``scripts/inference.py`` is the command-line front end (``plan_jobs`` + ``run_jobs``).
"""

from realesrgan_ext.inference.batch import (
    DEFAULT_SUFFIX,
    BatchResult,
    Job,
    OutputConflictError,
    find_images,
    plan_jobs,
    run_jobs,
)
from realesrgan_ext.inference.image_io import (
    IMAGE_SUFFIXES,
    OUTPUT_EXTS,
    ImageWriteError,
    InputImage,
    choose_extension,
    load_image,
    save_image,
)
from realesrgan_ext.inference.model_loader import (
    LoadedModel,
    ModelLoadError,
    UnsafeCheckpointError,
    infer_rrdb_settings,
    load_model,
)
from realesrgan_ext.inference.upscaler import (
    ALPHA_MODES,
    AUTO_TILE,
    DEFAULT_TILE_PAD,
    PRECISIONS,
    Upscaler,
    resolve_device,
    resolve_dtype,
)

__all__ = [
    "ALPHA_MODES", "AUTO_TILE", "DEFAULT_SUFFIX", "DEFAULT_TILE_PAD", "IMAGE_SUFFIXES", "OUTPUT_EXTS", "PRECISIONS",
    "BatchResult", "ImageWriteError", "InputImage", "Job", "LoadedModel", "ModelLoadError", "OutputConflictError",
    "UnsafeCheckpointError", "Upscaler", "choose_extension", "find_images", "infer_rrdb_settings", "load_image",
    "load_model", "plan_jobs", "resolve_device", "resolve_dtype", "run_jobs", "save_image",
]
