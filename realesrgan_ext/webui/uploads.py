"""Uploaded files as named images: single images, and the images inside a ``.zip``.

Each input gets a safe relative output folder: an uploaded image's results go to the run
folder itself, a zip's to ``<zip stem>/<folders inside the zip>``. Member names that are
absolute or climb out (``..``) are refused, never followed. Zip members are decoded from
memory (nothing is extracted to disk) and their total uncompressed size is bounded, so a small
zip cannot expand into gigabytes.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from realesrgan_ext.data.image_io import ImageReadError
from realesrgan_ext.inference.image_io import IMAGE_SUFFIXES, InputImage, decode, load_image

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
    read: Callable[[], InputImage]


Failures = list[tuple[str, str]]  # (name shown on the page, reason)


def collect_uploads(paths: list[Path], max_bytes: int | None = None) -> tuple[list[UploadedImage], Failures]:
    """Images from uploaded files, and (name, reason) for each upload that cannot be used.

    ``max_bytes``: the upload limit; a zip may expand to ``ZIP_EXPANSION`` times it.
    """
    images: list[UploadedImage] = []
    failed: Failures = []
    for path in paths:
        path = Path(path)
        if path.suffix.lower() == ZIP_SUFFIX:
            try:
                found, bad = zip_images(path, None if max_bytes is None else max_bytes * ZIP_EXPANSION)
            except (UnsafeUploadError, zipfile.BadZipFile, OSError) as err:
                failed.append((path.name, str(err).removeprefix(f"{path.name}: ")))
                continue
            images += found
            failed += bad
        elif path.suffix.lower() in IMAGE_SUFFIXES:
            images.append(UploadedImage(path.name, PurePosixPath(), path.stem, lambda p=path: load_image(p)))
        else:
            failed.append((path.name, f"not an image or a .zip (accepted: {' '.join(UPLOAD_SUFFIXES)})"))
    return images, failed


def zip_images(path: Path, max_total: int | None) -> tuple[list[UploadedImage], Failures]:
    """The image members of a zip (sorted by name), and (name, reason) for unsafe member names."""
    with zipfile.ZipFile(path) as zf:
        members = [m for m in zf.infolist() if not m.is_dir() and _is_image_member(m.filename)]
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
        images.append(UploadedImage(name, folder, rel.stem, _member_reader(path, member, name)))
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


def _member_reader(path: Path, member: zipfile.ZipInfo, name: str) -> Callable[[], InputImage]:
    def read() -> InputImage:
        try:
            with zipfile.ZipFile(path) as zf, zf.open(member) as f:
                data = f.read()  # zipfile stops at the size the directory declares and checks the CRC
        except (zipfile.BadZipFile, OSError, RuntimeError) as err:  # RuntimeError: encrypted member
            raise ImageReadError(f"{name}: cannot be read from the zip ({err})") from err
        return decode(data, name, PurePosixPath(member.filename).suffix.lower().lstrip(".") or "png")

    return read
