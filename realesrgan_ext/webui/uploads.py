"""Uploaded files as named images: single images, and the images inside a ``.zip``.

Each input gets a safe relative output folder: an uploaded image's results go to the run
folder itself, a zip's to ``<zip stem>/<folders inside the zip>``. Member names that are
absolute or climb out (``..``) are refused, never followed. Zip members are decoded from
memory (nothing is extracted to disk) and their total uncompressed size is bounded, so a small
zip cannot expand into gigabytes.

Before any image is upscaled, every one's header is read (``data.image_header``) and the request
is held to ``Limits``: at most ``max_images`` images (a zip of more is refused whole), each within
``max_image_pixels``, all together within ``max_request_pixels``; a compressed zip member may
inflate at most ``max_zip_ratio``:1. What does not fit is reported per file, never decoded.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from realesrgan_ext.data.image_header import ImageHeader, read_header
from realesrgan_ext.data.image_io import ImageReadError
from realesrgan_ext.inference.image_io import IMAGE_SUFFIXES, InputImage, decode
from realesrgan_ext.limits import Limits, how_to_raise, over_limit

ZIP_SUFFIX = ".zip"
UPLOAD_SUFFIXES = (*IMAGE_SUFFIXES, ZIP_SUFFIX)
# Zip members' uncompressed bytes, all together, may be at most this many times the upload limit.
ZIP_EXPANSION = 10


class UnsafeUploadError(ValueError):
    """An upload that would write outside the output folder or expand beyond the limits."""


@dataclass
class UploadedImage:
    """One image to upscale: its name on the page, the folder its result goes to (relative), a reader."""

    name: str
    folder: PurePosixPath
    stem: str
    data: Callable[[], bytes]  # the encoded bytes (from the upload, or inflated from the zip)
    limits: Limits = field(default_factory=Limits.from_env)
    header: ImageHeader | None = None  # read by ``within_limits`` (sizes the request's memory)

    def read(self) -> InputImage:
        """Decode the image (header checked against ``limits`` first)."""
        return decode(self.data(), self.name, PurePosixPath(self.name).suffix.lower().lstrip(".") or "png",
                      self.limits)


Failures = list[tuple[str, str]]  # (name shown on the page, reason)


def collect_uploads(paths: list[Path], max_bytes: int | None = None,
                    limits: Limits | None = None) -> tuple[list[UploadedImage], Failures]:
    """Images from uploaded files, and (name, reason) for each upload that cannot be used.

    ``max_bytes``: the upload limit; a zip may expand to ``ZIP_EXPANSION`` times it. Then
    ``within_limits``: headers read, images and pixels counted against ``limits``.
    """
    limits = limits or Limits.from_env()
    images: list[UploadedImage] = []
    failed: Failures = []
    for path in paths:
        path = Path(path)
        if path.suffix.lower() == ZIP_SUFFIX:
            try:
                found, bad = zip_images(path, None if max_bytes is None else max_bytes * ZIP_EXPANSION, limits)
            except (UnsafeUploadError, zipfile.BadZipFile, OSError) as err:
                failed.append((path.name, str(err).removeprefix(f"{path.name}: ")))
                continue
            images += found
            failed += bad
        elif path.suffix.lower() in IMAGE_SUFFIXES:
            images.append(UploadedImage(path.name, PurePosixPath(), path.stem, lambda p=path: _file_bytes(p),
                                        limits))
        else:
            failed.append((path.name, f"not an image or a .zip (accepted: {' '.join(UPLOAD_SUFFIXES)})"))
    kept, refused = within_limits(images, limits)
    return kept, failed + refused


def within_limits(images: list[UploadedImage], limits: Limits) -> tuple[list[UploadedImage], Failures]:
    """The images that fit the request's limits (in order), and (name, reason) for the others.

    Only headers are read: an image over ``max_image_pixels`` or unreadable is refused alone; past
    ``max_images`` images or ``max_request_pixels`` pixels in all, the rest of the request is.
    """
    kept: list[UploadedImage] = []
    failed: Failures = []
    total = 0
    for item in images:
        if len(kept) == limits.max_images:
            failed.append((item.name, f"skipped: the request already holds {limits.max_images} images, the most "
                                      f"allowed (max_images; {how_to_raise('max_images')})"))
            continue
        try:
            header = read_header(item.data(), item.name, limits)
        except ImageReadError as err:
            failed.append((item.name, str(err).removeprefix(f"{item.name}: ")))
            continue
        pixels = header.width * header.height
        if total + pixels > limits.max_request_pixels:
            reason = over_limit("with it, the request's images together", total + pixels, "max_request_pixels",
                                limits, "px")
            failed.append((item.name, f"skipped: {reason}"))
            continue
        total += pixels
        item.header = header
        kept.append(item)
    return kept, failed


def zip_images(path: Path, max_total: int | None,
               limits: Limits | None = None) -> tuple[list[UploadedImage], Failures]:
    """The image members of a zip (sorted by name), and (name, reason) for unsafe member names.

    Refused whole (``UnsafeUploadError``) past ``max_total`` inflated bytes or ``limits.max_images``
    images, or with a member that inflates more than ``limits.max_zip_ratio``:1.
    """
    limits = limits or Limits.from_env()
    with zipfile.ZipFile(path) as zf:
        members = [m for m in zf.infolist() if not m.is_dir() and _is_image_member(m.filename)]
    if len(members) > limits.max_images:
        raise UnsafeUploadError(str(over_limit(f"{path.name}: its image count", len(members), "max_images", limits)))
    bomb = next((m for m in members if m.compress_type != zipfile.ZIP_STORED
                 and m.file_size > limits.max_zip_ratio * max(m.compress_size, 1)), None)
    if bomb is not None:
        ratio = bomb.file_size / max(bomb.compress_size, 1)
        raise UnsafeUploadError(str(over_limit(f"{path.name}: member {bomb.filename[:80]!r} inflates {ratio:.0f}:1; "
                                               "that ratio", ratio, "max_zip_ratio", limits)))
    total = sum(m.file_size for m in members)
    if max_total is not None and total > max_total:
        raise UnsafeUploadError(f"{path.name}: its images expand to {total / 2**20:.1f} MiB, more than the "
                                f"{max_total / 2**20:.0f} MiB allowed ({ZIP_EXPANSION}x the upload limit)")
    images, failed = [], []
    for member in sorted(members, key=lambda m: m.filename):
        name = f"{path.name}/{member.filename}"
        try:
            rel = safe_member_path(member.filename)
        except UnsafeUploadError as err:
            failed.append((name, str(err)))
            continue
        folder = PurePosixPath(Path(path.name).stem) / rel.parent
        images.append(UploadedImage(name, folder, rel.stem, _member_reader(path, member, name), limits))
    return images, failed


def safe_member_path(filename: str) -> PurePosixPath:
    """A zip member's name as a relative path that stays inside its folder; refuses ``..`` and absolute names."""
    rel = PurePosixPath(filename.replace("\\", "/"))
    if rel.is_absolute() or ".." in rel.parts or (rel.parts and ":" in rel.parts[0]):
        raise UnsafeUploadError("unsafe path inside the zip (absolute or with '..'); skipped")
    parts = [p for p in rel.parts if p not in ("", ".")]
    if not parts:
        raise UnsafeUploadError("empty name inside the zip; skipped")
    return PurePosixPath(*parts)


def _is_image_member(filename: str) -> bool:
    name = PurePosixPath(filename.replace("\\", "/"))
    hidden = name.name.startswith(".") or "__MACOSX" in name.parts  # macOS resource forks, dotfiles
    return not hidden and name.suffix.lower() in IMAGE_SUFFIXES


def _member_reader(path: Path, member: zipfile.ZipInfo, name: str) -> Callable[[], bytes]:
    def read() -> bytes:
        try:
            with zipfile.ZipFile(path) as zf, zf.open(member) as f:
                return f.read()  # zipfile stops at the size the directory declares and checks the CRC
        except (zipfile.BadZipFile, OSError, RuntimeError, ValueError) as err:  # RuntimeError: encrypted member
            raise ImageReadError(f"{name}: cannot be read from the zip ({err})") from err

    return read


def _file_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise ImageReadError(f"{path.name}: {err.strerror or err}") from err
