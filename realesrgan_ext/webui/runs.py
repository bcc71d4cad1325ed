"""One upscaling request from the web page: a fresh folder, every image written in its own format.

``upscale_uploads`` runs each uploaded image through the ``Upscaler`` (the CLI's engine, so
the pixels equal ``scripts/inference.py``'s), writes ``<stem>_out.<ext>`` with the CLI's
format rules (alpha, 16-bit and gray kept; ``image_io.choose_extension``), records a failure
per file and goes on, and writes small 8-bit previews for the before/after comparison as files in
the run's ``.previews/`` (a session holds their paths, never pixels). Every path is checked to lie
inside the run's folder before anything is written there.

``RunFolders`` makes each request's folder and removes old ones: past an age, then the oldest while
all together exceed a size, never a folder whose request is still running.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from realesrgan_ext.inference.batch import DEFAULT_SUFFIX
from realesrgan_ext.inference.image_io import choose_extension, save_image
from realesrgan_ext.inference.upscaler import Upscaler
from realesrgan_ext.webui.uploads import UnsafeUploadError, UploadedImage

PREVIEW_SIDE = 1024  # longest side of the comparison images sent to the browser
ARCHIVE_NAME = "results.zip"  # all results of a run with more than one image
PREVIEWS = ".previews"  # inside a run folder: the comparison images, PNG
RUN_NAME = re.compile(r"\d{8}-\d{6}-\w+")  # new_run_folder's names; nothing else under the output is removed

Progress = Callable[[float, str], None]


@dataclass
class Comparison:
    """8-bit RGB(A) PNG previews of one result, equal sizes: the input enlarged (nearest) and the output."""

    name: str
    before: Path
    after: Path


@dataclass
class RunReport:
    """What a request did: its folder, written files, previews, failures as (name, reason)."""

    folder: Path
    written: list[Path] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    archive: Path | None = None

    @property
    def downloads(self) -> list[Path]:
        """The files to offer: the zip of all results first when there is one."""
        return ([self.archive] if self.archive else []) + self.written

    def message(self) -> str:
        """Markdown for the page: counts, time, the run's name (never a server path), each failure and why."""
        total = len(self.written) + len(self.failed)
        lines = [f"Upscaled **{len(self.written)} of {total}** file(s) in {self.seconds:.1f} s (run "
                 f"`{self.folder.name}`)."]
        if self.failed:
            lines += ["", f"**{len(self.failed)} failed:**"]
            lines += [f"- `{name}`: {reason}" for name, reason in self.failed]
        return "\n".join(lines)


def new_run_folder(output: Path) -> Path:
    """A new, uniquely named folder under ``output`` (``YYYYmmdd-HHMMSS-xxxxxxxx``)."""
    output.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=time.strftime("%Y%m%d-%H%M%S-"), dir=output))


class RunFolders:
    """Run folders under ``output``: ``new()`` makes one for a request after removing old ones (older than
    ``max_age`` seconds, then the oldest while all runs together exceed ``max_bytes``); a folder is kept
    while its request runs. Only folders named like ``new_run_folder``'s are ever removed. Thread-safe."""

    def __init__(self, output: Path, max_age: float, max_bytes: int) -> None:
        self.output, self.max_age, self.max_bytes = output, max_age, max_bytes
        self._busy: set[Path] = set()
        self._lock = threading.Lock()

    @contextmanager
    def new(self) -> Iterator[Path]:
        """A new run folder, kept from removal until the ``with`` block ends."""
        with self._lock:
            self._remove_old()
            folder = new_run_folder(self.output)
            self._busy.add(folder)
        try:
            yield folder
        finally:
            with self._lock:
                self._busy.discard(folder)

    def remove_old(self) -> list[Path]:
        """Remove the runs past the age or the total size now; returns the folders removed."""
        with self._lock:
            return self._remove_old()

    def _remove_old(self) -> list[Path]:
        runs = sorted((p.stat().st_mtime, p) for p in self.runs())  # oldest first
        sizes = {p: folder_bytes(p) for _, p in runs}
        total, now, removed = sum(sizes.values()), time.time(), []
        for mtime, path in runs:
            if path in self._busy or (now - mtime <= self.max_age and total <= self.max_bytes):
                continue
            shutil.rmtree(path, ignore_errors=True)
            total -= sizes[path]
            removed.append(path)
        return removed

    def runs(self) -> list[Path]:
        """The run folders under ``output``."""
        if not self.output.is_dir():
            return []
        return [p for p in self.output.iterdir() if p.is_dir() and not p.is_symlink() and RUN_NAME.fullmatch(p.name)]


def folder_bytes(folder: Path) -> int:
    """Bytes of the files under ``folder`` (links not followed)."""
    total = 0
    for root, _, names in os.walk(folder):
        for name in names:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                continue  # removed meanwhile
    return total


def upscale_uploads(upscaler: Upscaler, images: list[UploadedImage], folder: Path, outscale: float | None = None,
                    progress: Progress | None = None, failed: list[tuple[str, str]] | None = None) -> RunReport:
    """Upscale ``images`` into ``folder``; ``failed`` carries earlier failures (unusable uploads) into the report.

    ``progress(fraction, text)`` is called before each image and after each tile.
    """
    report, start = RunReport(folder, failed=list(failed or [])), time.perf_counter()
    claimed: set[Path] = set()
    for index, item in enumerate(images):
        tick = _tile_progress(progress, index, len(images), item.name)
        tick(0, 1)
        try:
            written, comparison = _upscale_one(upscaler, item, index, folder, outscale, tick, claimed)
        except Exception as err:  # noqa: BLE001  (reported on the page per file; the others still run)
            report.failed.append((item.name, _reason(err, item.name)))
            continue
        report.written.append(written)
        report.comparisons.append(comparison)
    if len(report.written) > 1:
        report.archive = write_archive(folder, report.written)
    report.seconds = time.perf_counter() - start
    return report


def _upscale_one(upscaler: Upscaler, item: UploadedImage, index: int, folder: Path, outscale: float | None,
                 tick: Callable[[int, int], None], claimed: set[Path]) -> tuple[Path, Comparison]:
    """Decode, upscale and write one image and its previews (its pixels are freed on return)."""
    image = item.read()
    pixels = upscaler.upscale(image.pixels, outscale, on_tile=tick)
    target = output_target(folder, item, choose_extension(image), claimed)
    written = save_image(target, pixels)
    return written, write_previews(folder, index, item.name, image.pixels, pixels)


def output_target(folder: Path, item: UploadedImage, ext: str, claimed: set[Path]) -> Path:
    """``folder/<item.folder>/<stem>_out.<ext>``, numbered when taken; refuses paths leaving ``folder``."""
    base = folder / item.folder
    target = base / f"{item.stem}_{DEFAULT_SUFFIX}.{ext}"
    number = 2
    while target in claimed:
        target = base / f"{item.stem}_{DEFAULT_SUFFIX}-{number}.{ext}"
        number += 1
    if not target.resolve().is_relative_to(folder.resolve()):
        raise UnsafeUploadError(f"{item.name}: its result would be written outside the output folder")
    claimed.add(target)
    return target


def write_archive(folder: Path, files: list[Path]) -> Path:
    """``folder/results.zip`` holding ``files`` by their paths relative to ``folder`` (written, then renamed)."""
    archive = folder / ARCHIVE_NAME
    partial = folder / f".{ARCHIVE_NAME}.part"
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in files:
            zf.write(path, path.relative_to(folder).as_posix())
    os.replace(partial, archive)
    return archive


def write_previews(folder: Path, index: int, name: str, before: np.ndarray, after: np.ndarray) -> Comparison:
    """``previews`` of one result written as ``folder/.previews/<index>-before.png`` and ``-after.png``."""
    small = previews(before, after)
    paths = [folder / PREVIEWS / f"{index}-{side}.png" for side in ("before", "after")]
    for path, pixels in zip(paths, small, strict=True):
        save_image(path, pixels)
    return Comparison(name, *paths)


def previews(before: np.ndarray, after: np.ndarray, side: int = PREVIEW_SIDE) -> tuple[np.ndarray, np.ndarray]:
    """Input and output as 8-bit RGB(A) of the same size, at most ``side`` px on the longest side."""
    after_8 = to_display(after)
    height, width = after_8.shape[:2]
    factor = min(1.0, side / max(height, width))
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    if factor < 1:
        after_8 = cv2.resize(after_8, size, interpolation=cv2.INTER_AREA)
    before_8 = cv2.resize(to_display(before), size, interpolation=cv2.INTER_NEAREST)
    return before_8, after_8


def to_display(pixels: np.ndarray) -> np.ndarray:
    """Any ``load_image`` layout (gray, gray+alpha, RGB, RGBA; uint8 / uint16 / float) as uint8 RGB or RGBA."""
    if pixels.dtype == np.uint16:
        pixels = np.rint(pixels / 257.0).astype(np.uint8)
    elif pixels.dtype != np.uint8:
        pixels = np.rint(np.clip(pixels, 0, 1) * 255.0).astype(np.uint8)
    if pixels.ndim == 2:
        return np.dstack([pixels] * 3)
    if pixels.shape[2] == 2:
        return np.dstack([pixels[:, :, 0]] * 3 + [pixels[:, :, 1]])
    return pixels


def _tile_progress(progress: Progress | None, index: int, count: int, name: str) -> Callable[[int, int], None]:
    def tick(done: int, total: int) -> None:
        if progress is not None:
            progress((index + done / total) / count, f"{name} ({index + 1}/{count}): tile {done}/{total}")

    return tick


def _reason(err: BaseException, name: str) -> str:
    """The error without its leading file path (the page shows the name already)."""
    text = str(err) or type(err).__name__
    head, sep, rest = text.partition(": ")
    if sep and (head == name or head.endswith(f"/{name}")):  # uploads are named by a temporary path
        text = rest
    return text if isinstance(err, (OSError, ValueError)) else f"{type(err).__name__}: {text}"
