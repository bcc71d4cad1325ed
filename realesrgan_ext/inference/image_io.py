"""Reading images for inference and writing the results, keeping what the input had.

``load_image`` returns RGB-order pixels in one of four layouts, so the upscaler and the writer
agree on what an image is:

=========  ==================  ==================================================
channels   layout              comes from
=========  ==================  ==================================================
HxW        gray                L / I;16 PNG, gray JPEG / TIFF
HxWx2      gray + alpha        LA PNG (8 or 16 bit)
HxWx3      RGB                 RGB files, palette PNG without transparency, CMYK JPEG
HxWx4      RGBA                RGBA files, palette PNG with transparency
=========  ==================  ==================================================

dtype is kept: uint8, uint16 (16-bit PNG / TIFF in -> 16-bit out) or float32 (float TIFF).
EXIF orientation is applied to the pixels (as ``PIL.ImageOps.exif_transpose`` does), and the
written file carries no orientation tag, so viewers show it the same way. Decoding goes through
OpenCV (``realesrgan_ext.data.image_io.decode_image``: 16-bit and alpha survive); JPEGs go through
Pillow, which also rejects truncated files that a lenient decoder would half-fill; Pillow reads
the PNG mode (palette, LA) and the EXIF orientation of other formats from the header.
ICC profiles and other metadata are not copied to the output. Every file's header is checked
against ``Limits`` (pixels, frames) before it is decoded (``data.image_header``).
"""

from __future__ import annotations

import io
import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps

from realesrgan_ext.data.image_header import FORMATS, check_decoded, read_header
from realesrgan_ext.data.image_io import ImageReadError, decode_with_header
from realesrgan_ext.limits import Limits

# Files a folder run (and the web page) picks up, case-insensitive: Pillow's suffixes of the formats the
# reader accepts (image_header.FORMATS: .gif, .ppm and .jfif too); a single file given by path is always tried.
IMAGE_SUFFIXES = tuple(sorted(ext for ext, fmt in Image.registered_extensions().items() if fmt in FORMATS))
OUTPUT_EXTS = ("auto", "png", "jpg", "webp")
JPEG_QUALITY = 95
WEBP_QUALITY = 95
_WRITABLE = {"png", "jpg", "jpeg", "webp", "tif", "tiff", "bmp"}
_HIGH_DEPTH_EXTS = {"png", "tif", "tiff"}  # formats that hold 16-bit samples
_ALPHA_EXTS = {"png"}  # images with alpha are always written as PNG
_JPEG_MAGIC = b"\xff\xd8\xff"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class ImageWriteError(OSError):
    """An image that cannot be encoded or written; the message names the target."""


@dataclass
class InputImage:
    """Decoded pixels (see the module docstring for the layouts) and where they came from."""

    pixels: np.ndarray
    source: str
    format: str  # "jpeg", "png" or the file suffix without dot ("tiff", "webp", ...)

    @property
    def has_alpha(self) -> bool:
        return self.pixels.ndim == 3 and self.pixels.shape[2] in (2, 4)


def load_image(path: str | Path, limits: Limits | None = None) -> InputImage:
    """Read and decode a file; ``ImageReadError`` (naming the path) for empty, corrupt or truncated files,
    ``ImageTooLargeError`` (one) for a header declaring more than ``limits`` allow."""
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise ImageReadError(f"{path}: {err.strerror or err}") from err
    suffix = Path(path).suffix.lower().lstrip(".") or "png"
    return decode(data, str(path), suffix, limits)


def decode(data: bytes, source: str, suffix: str = "png", limits: Limits | None = None) -> InputImage:
    """Decode encoded bytes to an ``InputImage`` (RGB order, orientation applied)."""
    if not data:
        raise ImageReadError(f"{source}: empty file")
    if data.startswith(_JPEG_MAGIC):
        return InputImage(_decode_jpeg(data, source, limits), source, "jpeg")
    img, header = decode_with_header(data, source, limits)  # BGR(A) / gray, orientation not applied
    mode, orientation = header.mode, header.orientation
    if img.ndim == 3 and img.shape[2] == 4:
        if mode in ("LA", "La"):
            img = np.ascontiguousarray(img[:, :, (0, 3)])  # OpenCV expands LA to BGRA
        elif mode in ("P", "RGB", "L") and _opaque(img[:, :, 3]):
            img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)  # palette without transparency
        else:
            img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA)
    elif img.ndim == 3 and img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    elif img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    elif img.ndim != 2:
        raise ImageReadError(f"{source}: unsupported channel count {img.shape[2]}")
    fmt = "png" if data.startswith(_PNG_MAGIC) else suffix
    return InputImage(np.ascontiguousarray(apply_orientation(img, orientation)), source, fmt)


def apply_orientation(img: np.ndarray, orientation: int) -> np.ndarray:
    """Pixels as displayed for EXIF orientation 1..8 (same result as ``ImageOps.exif_transpose``)."""
    ops = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.swapaxes(0, 1),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: np.rot90(a, 2).swapaxes(0, 1),
        8: lambda a: np.rot90(a, 1),
    }
    return ops[orientation](img) if orientation in ops else img


def choose_extension(image: InputImage, requested: str = "auto") -> str:
    """Output extension (no dot): ``auto`` keeps the input's format where it can hold the pixels.

    Alpha always gives PNG. 16-bit / float pixels give PNG unless the input was TIFF (``auto``) or
    the user asked for jpg / webp explicitly (then they are written as 8-bit).
    """
    if requested not in OUTPUT_EXTS:
        raise ValueError(f"ext must be one of {OUTPUT_EXTS}, got {requested!r}")
    if image.has_alpha:
        return "png"
    if requested != "auto":
        return requested
    ext = {"jpeg": "jpg"}.get(image.format, image.format)
    if ext not in _WRITABLE:
        return "png"
    if image.pixels.dtype != np.uint8 and ext not in _HIGH_DEPTH_EXTS:
        return "png"
    return ext


def encode(pixels: np.ndarray, ext: str, target: str = "image") -> bytes:
    """Encode RGB-order pixels (any layout of ``load_image``) to ``ext`` bytes."""
    ext = ext.lower().lstrip(".")
    if ext == "jpeg":
        ext = "jpg"
    if ext not in _WRITABLE:
        raise ImageWriteError(f"{target}: cannot write .{ext} files; use one of {sorted(_WRITABLE)}")
    img = pixels
    if img.dtype == np.float32 and ext not in ("tif", "tiff"):
        img = np.rint(np.clip(img, 0, 1) * 65535.0).astype(np.uint16)
    if img.dtype != np.uint8 and ext not in _HIGH_DEPTH_EXTS:
        scale = 255.0 / 65535.0 if img.dtype == np.uint16 else 255.0
        img = np.rint(np.clip(img.astype(np.float32) * scale, 0, 255)).astype(np.uint8)
    if img.ndim == 3:
        channels = img.shape[2]
        if channels == 2:
            gray, alpha = img[:, :, 0], img[:, :, 1]
            img = np.dstack([gray, gray, gray, alpha])  # no LA writer in OpenCV: RGBA with equal RGB
        elif channels == 1:
            img = img[:, :, 0]
        if img.ndim == 3:
            if img.shape[2] == 4 and ext not in _ALPHA_EXTS | {"webp", "tif", "tiff"}:
                raise ImageWriteError(f"{target}: .{ext} cannot hold an alpha channel; write PNG")
            img = cv2.cvtColor(img, cv2.COLOR_RGBA2BGRA if img.shape[2] == 4 else cv2.COLOR_RGB2BGR)
    params = {"jpg": [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY], "webp": [cv2.IMWRITE_WEBP_QUALITY, WEBP_QUALITY]}
    ok, buf = cv2.imencode(f".{ext}", img, params.get(ext, []))
    if not ok:
        raise ImageWriteError(f"{target}: OpenCV could not encode a {img.shape} {img.dtype} image as .{ext}")
    return buf.tobytes()


def save_image(path: str | Path, pixels: np.ndarray) -> Path:
    """Encode by the path's extension and write atomically (a temp file renamed into place)."""
    path = Path(path)
    data = encode(pixels, path.suffix, str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    # open(..., "x") creates it with the umask's mode (mkstemp's 0600 would survive the rename)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.{uuid.uuid4().hex[:8]}.part")
    try:
        with open(tmp, "xb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _decode_jpeg(data: bytes, source: str, limits: Limits | None) -> np.ndarray:
    header = read_header(data, source, limits)  # before Pillow decodes anything
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()  # raises on truncated data instead of filling the rest with gray
            check_decoded((im.height, im.width), header, source)
            im = ImageOps.exif_transpose(im)
            if im.mode not in ("L", "RGB"):
                im = im.convert("RGB")  # CMYK / YCCK JPEGs
            return np.asarray(im).copy()
    except ImageReadError:
        raise
    except Image.DecompressionBombError as err:
        raise ImageReadError(f"{source}: {err}") from err
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        raise ImageReadError(f"{source}: not a readable JPEG (corrupt or truncated: {_pillow_reason(err)})") from err


def _pillow_reason(err: Exception) -> str:
    """Pillow's message without the in-memory buffer it names (``<_io.BytesIO object at 0x...>``):
    the caller names the file."""
    return re.sub(r"\s*<[\w.]+ object at 0x[0-9a-fA-F]+>", "", str(err)).strip() or type(err).__name__


def _opaque(alpha: np.ndarray) -> bool:
    top = 255 if alpha.dtype == np.uint8 else 65535 if alpha.dtype == np.uint16 else 1.0
    return bool((alpha == top).all())
