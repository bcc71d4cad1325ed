"""An encoded image's format, size and frames, read from its header before a single pixel is decoded.

A 100 KB PNG can declare 30000 x 30000 pixels (3.6 GB once decoded), a GIF or TIFF thousands of
frames, a progressive JPEG thousands of scans (each a pass over the whole image). ``read_header``
opens the bytes with Pillow, which parses only the header (lazily), and refuses, with
``ImageTooLargeError``, more than ``Limits.max_image_pixels`` pixels, ``Limits.max_image_frames``
frames or ``Limits.max_jpeg_scans`` scans; any other unreadable header is an ``ImageReadError``. Only
``FORMATS`` are accepted: OpenCV then picks the same decoder by the same signature, so the
size it decodes is the size checked here. GIF frames are counted from the file's own blocks
(Pillow's GIF seek decodes every frame on the way), TIFF pages by walking at most
``max_image_frames`` directories.
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass

from PIL import Image

from realesrgan_ext.data.image_errors import ImageReadError, ImageTooLargeError
from realesrgan_ext.limits import Limits, over_limit

# Pillow format names OpenCV decodes too (PPM covers PGM / PBM / PNM / PFM).
FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF", "PPM")
_EXIF_ORIENTATION = 0x0112
# Signatures, to name the format a damaged file claims to be.
_MAGIC = ((b"\x89PNG", "PNG"), (b"\xff\xd8\xff", "JPEG"), (b"GIF8", "GIF"), (b"BM", "BMP"), (b"II*\0", "TIFF"),
          (b"MM\0*", "TIFF"), (b"RIFF", "WebP"))
_JPEG_SCAN = b"\xff\xda"  # start-of-scan marker
_PILLOW_BOMB = re.compile(r"\((\d+) pixels\)")


@dataclass(frozen=True)
class ImageHeader:
    """What the header declares: Pillow's format name and mode, size, frames, EXIF orientation (1..8)."""

    format: str
    mode: str
    width: int
    height: int
    frames: int = 1
    orientation: int = 1


def read_header(data: bytes, source: str, limits: Limits | None = None) -> ImageHeader:
    """The header of ``data``; refuses a size or frame count over ``limits`` before anything is decoded."""
    limits = limits or Limits.from_env()
    if not data:
        raise ImageReadError(f"{source}: empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit replaces it
            with Image.open(io.BytesIO(data)) as im:
                fmt = im.format or "?"
                if fmt not in FORMATS:
                    raise ImageReadError(f"{source}: a {fmt} image; accepted: {', '.join(FORMATS)}")
                width, height = im.size
                _check_pixels(source, width, height, limits)
                frames = _count_frames(im, data, limits)
                orientation = _orientation(im)
                mode = im.mode
    except ImageReadError:
        raise
    except Image.DecompressionBombError as err:  # Pillow's own limit, past twice PIL.Image.MAX_IMAGE_PIXELS
        raise _pillow_refused(source, str(err), limits) from err
    except Exception as err:  # noqa: BLE001  (a damaged header fails inside Pillow with many types)
        claimed = next((name for magic, name in _MAGIC if data.startswith(magic)), None)
        what = f"{claimed} (corrupt or truncated" if claimed else "image (unknown format, or a damaged header"
        raise ImageReadError(f"{source}: not a readable {what}: {_reason(err)})") from err
    if frames > limits.max_image_frames:
        raise ImageTooLargeError(str(over_limit(f"{source}: its frame count", frames, "max_image_frames", limits)))
    scans = data.count(_JPEG_SCAN) if fmt == "JPEG" else 0  # 0xFFDA cannot occur inside entropy-coded data
    if scans > limits.max_jpeg_scans:
        raise ImageTooLargeError(str(over_limit(f"{source}: its JPEG scan count", scans, "max_jpeg_scans", limits)))
    return ImageHeader(fmt, mode, width, height, frames, orientation if 1 <= orientation <= 8 else 1)


def allow_in_pillow(limits: Limits) -> None:
    """Raise Pillow's own, process-wide bomb limit to ``max_image_pixels`` where that is higher (for
    scripts whose user raised it: Pillow refuses past twice ``PIL.Image.MAX_IMAGE_PIXELS``)."""
    current = Image.MAX_IMAGE_PIXELS
    if current is not None and 2 * current < limits.max_image_pixels:
        Image.MAX_IMAGE_PIXELS = limits.max_image_pixels


def check_decoded(pixels_shape: tuple[int, ...], header: ImageHeader, source: str) -> None:
    """Refuse pixels whose size differs from the header's (a decoder that read something else)."""
    if tuple(pixels_shape[:2]) != (header.height, header.width):
        raise ImageReadError(f"{source}: decoded to {pixels_shape[1]}x{pixels_shape[0]} px, but its header says "
                             f"{header.width}x{header.height}")


def _orientation(im: Image.Image) -> int:
    """EXIF orientation from the header (a PNG's eXIf chunk before its pixels: Pillow's ``getexif`` on a
    PNG decodes the whole image to look for one after them)."""
    if im.format == "GIF":
        return 1
    if im.format == "PNG":
        raw = im.info.get("exif")
        if not raw:
            return 1
        exif = Image.Exif()
        exif.load(raw)
    else:
        exif = im.getexif()
    return int(exif.get(_EXIF_ORIENTATION, 1) or 1)


def _check_pixels(source: str, width: int, height: int, limits: Limits) -> None:
    if width < 1 or height < 1:
        raise ImageReadError(f"{source}: its header declares an empty {width}x{height} image")
    if width * height > limits.max_image_pixels:
        raise ImageTooLargeError(str(over_limit(f"{source}: {width}x{height} px", width * height, "max_image_pixels",
                                                limits, "px")))


def _count_frames(im: Image.Image, data: bytes, limits: Limits) -> int:
    """Frames, counting at most one past ``max_image_frames``."""
    if im.format == "GIF":
        return gif_frames(data, limits.max_image_frames + 1)
    if im.format == "TIFF":
        count = 1
        while count <= limits.max_image_frames:
            try:
                im.seek(count)  # reads one more directory; decodes nothing
            except EOFError:
                break
            count += 1
        return count
    return int(getattr(im, "n_frames", 1) or 1)  # PNG (APNG) / WebP: from a header field


def gif_frames(data: bytes, stop: int) -> int:
    """Image descriptors in a GIF, counted from its block structure (at most ``stop``); decodes nothing."""
    pos = 13 + ((3 << ((data[10] & 7) + 1)) if len(data) > 10 and data[10] & 0x80 else 0)
    frames = 0
    while pos < len(data) and frames < stop:
        block = data[pos]
        if block == 0x3B:  # trailer
            break
        if block == 0x21:  # extension: label, then sub-blocks
            pos = _skip_sub_blocks(data, pos + 2)
        elif block == 0x2C:  # image descriptor, optional local colour table, LZW code size, sub-blocks
            flags = data[pos + 9] if pos + 9 < len(data) else 0
            pos += 10 + ((3 << ((flags & 7) + 1)) if flags & 0x80 else 0)
            pos = _skip_sub_blocks(data, pos + 1)
            frames += 1
        else:
            break  # damage: what was counted so far stands (the decoder will judge the rest)
    return max(frames, 1)


def _skip_sub_blocks(data: bytes, pos: int) -> int:
    while pos < len(data) and data[pos]:
        pos += data[pos] + 1
    return pos + 1


def _pillow_refused(source: str, message: str, limits: Limits) -> ImageReadError:
    match = _PILLOW_BOMB.search(message)
    pixels = int(match.group(1)) if match else None
    if pixels is None or pixels > limits.max_image_pixels:
        return ImageTooLargeError(str(over_limit(f"{source}: its size", pixels or 0, "max_image_pixels", limits,
                                                 "px")))
    return ImageTooLargeError(f"{source}: {pixels / 1e6:.1f} MP is within max_image_pixels, but Pillow's own limit "
                              f"(PIL.Image.MAX_IMAGE_PIXELS x 2 = {2 * (Image.MAX_IMAGE_PIXELS or 0) / 1e6:.1f} MP) "
                              "refuses it; raise that too (the scripts' --max-image-pixels does)")


def _reason(err: Exception) -> str:
    """Pillow's message without the in-memory buffer it names, cut short."""
    text = re.sub(r"\s*<[\w.]+ object at 0x[0-9a-fA-F]+>", "", str(err)).strip() or type(err).__name__
    return text[:200]
