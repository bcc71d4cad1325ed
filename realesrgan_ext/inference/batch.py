"""Upscaling a file or a folder tree: planning outputs safely, overlapping I/O with compute.

``plan_jobs`` maps inputs to outputs (subfolders mirrored) and refuses, before any work, a plan
in which an output would overwrite an input or two inputs would write the same output.
``run_jobs`` decodes ahead and encodes behind in a thread pool while the calling thread runs
the network, shows a tqdm bar, and reports every failed file by path without stopping the rest.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from realesrgan_ext.inference.image_io import (
    IMAGE_SUFFIXES,
    OUTPUT_EXTS,
    InputImage,
    choose_extension,
    load_image,
    save_image,
)
from realesrgan_ext.inference.upscaler import Upscaler, check_outscale

DEFAULT_SUFFIX = "out"  # Real-ESRGAN's: photo.png -> photo_out.png
IO_WORKERS = 2  # decode / encode threads; also how many images are decoded ahead and written behind


class OutputConflictError(ValueError):
    """An output path that would overwrite an input or another output."""


@dataclass(frozen=True)
class Job:
    """One input file and where its result goes (``target``'s suffix is the planned extension;
    ``ext='auto'`` may still switch to ``.png`` for an image found to have alpha or 16 bits)."""

    source: Path
    target: Path


@dataclass
class BatchResult:
    """What a run did: written outputs, failures as (input path, reason), wall time."""

    written: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        total = len(self.written) + len(self.failed)
        rate = f" ({self.seconds / len(self.written):.2f} s/image)" if self.written else ""
        lines = [f"upscaled {len(self.written)} of {total} image(s) in {self.seconds:.1f} s{rate}"]
        if self.failed:
            lines.append(f"{len(self.failed)} failed:")
            lines += [f"  {path}: {reason}" for path, reason in self.failed]
        return "\n".join(lines)


def find_images(root: Path, exclude: Path | None = None) -> list[Path]:
    """Image files under ``root`` (recursive, sorted), skipping anything inside ``exclude``."""
    exclude = exclude.resolve() if exclude is not None else None
    found = []
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        if exclude is not None and exclude != root.resolve() and exclude in path.resolve().parents:
            continue  # earlier results in an output folder nested inside the input folder
        found.append(path)
    return found


def plan_jobs(input_path: str | Path, output_dir: str | Path, suffix: str = DEFAULT_SUFFIX,
              ext: str = "auto") -> list[Job]:
    """Inputs (one file, or every image under a folder) and their output paths.

    ``out_dir/<relative folder>/<stem>_<suffix>.<ext>``; ``ext='auto'`` plans the input's own
    suffix. Raises ``FileNotFoundError`` for a missing input, ``OutputConflictError`` when an
    output would overwrite an input or two inputs share an output.
    """
    if ext not in OUTPUT_EXTS:
        raise ValueError(f"ext must be one of {OUTPUT_EXTS}, got {ext!r}")
    src, out_dir = Path(input_path), Path(output_dir)
    if src.is_dir():
        sources, root = find_images(src, exclude=out_dir), src
    elif src.is_file():
        sources, root = [src], src.parent
    else:
        raise FileNotFoundError(f"{src}: no such file or folder")
    jobs = [Job(s, output_path(s, root, out_dir, suffix, ext)) for s in sources]
    check_conflicts(jobs)
    return jobs


def output_path(source: Path, root: Path, out_dir: Path, suffix: str, ext: str) -> Path:
    """Where ``source`` (under ``root``) is written: ``out_dir/<rel folder>/<stem>[_suffix].<ext>``."""
    rel = source.relative_to(root)
    extension = source.suffix.lstrip(".") if ext == "auto" else ext
    stem = f"{source.stem}_{suffix}" if suffix else source.stem
    return out_dir / rel.parent / f"{stem}.{extension or 'png'}"


def check_conflicts(jobs: Iterable[Job], inputs: Iterable[Path] = ()) -> None:
    """Raise ``OutputConflictError`` naming every output that is an input or is shared."""
    jobs = list(jobs)
    sources = {path_key(j.source): j.source for j in jobs} | {path_key(p): p for p in inputs}
    problems, seen = [], {}
    for job in jobs:
        key = path_key(job.target)
        if key in sources:
            problems.append(f"{job.target} would overwrite the input {sources[key]}")
        elif key in seen:
            problems.append(f"{seen[key]} and {job.source} would both be written to {job.target}")
        seen[key] = job.source
    if problems:
        raise OutputConflictError("refusing to start: " + "; ".join(problems) +
                                  ". Choose another output folder or --suffix.")


def run_jobs(upscaler: Upscaler, jobs: list[Job], outscale: float | None = None, ext: str = "auto",
             workers: int = IO_WORKERS, progress: bool = True) -> BatchResult:
    """Upscale every job; decoding runs ahead and writing behind in ``workers`` threads.

    A file that fails to decode, upscale or write is recorded in ``BatchResult.failed`` with
    its path and reason (and printed above the progress bar); the rest still runs.
    """
    check_outscale(outscale, upscaler.limits)  # before any image is read
    result, start = BatchResult(), time.perf_counter()
    taken = _claim({path_key(j.target) for j in jobs}, {path_key(j.source) for j in jobs})
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="sr-io") as pool, \
            tqdm(total=len(jobs), unit="img", disable=not progress, dynamic_ncols=True) as bar, \
            tqdm(unit="tile", disable=not progress, dynamic_ncols=True, leave=False, position=1) as tiles:
        decoding: deque[tuple[Job, Future[InputImage]]] = deque()
        writing: deque[tuple[Job, Future[Path]]] = deque()
        pending = iter(jobs)

        def fail(job: Job, err: BaseException) -> None:
            reason = str(err) if str(err).startswith(str(job.source)) else f"{type(err).__name__}: {err}"
            result.failed.append((job.source, reason.removeprefix(f"{job.source}: ")))
            bar.write(f"failed: {job.source}: {result.failed[-1][1]}")
            bar.update(1)

        def finish_oldest_write() -> None:
            job, fut = writing.popleft()
            try:
                result.written.append(fut.result())
                bar.update(1)
            except Exception as err:  # noqa: BLE001  (reported per file; the run goes on)
                fail(job, err)

        def submit_decode() -> None:
            job = next(pending, None)
            if job is not None:
                decoding.append((job, pool.submit(load_image, job.source, upscaler.limits)))

        for _ in range(max(1, workers)):
            submit_decode()
        while decoding:
            job, fut = decoding.popleft()
            submit_decode()
            try:
                image = fut.result()
                target = final_target(job, image, ext, taken)
                pixels = upscaler.upscale(image.pixels, outscale, on_tile=_tile_progress(tiles, job.source.name))
            except Exception as err:  # noqa: BLE001  (reported per file; the run goes on)
                fail(job, err)
                continue
            writing.append((job, pool.submit(save_image, target, pixels)))
            while len(writing) > max(1, workers):
                finish_oldest_write()
            bar.set_postfix(failed=len(result.failed), refresh=False)
        while writing:
            finish_oldest_write()
    result.seconds = time.perf_counter() - start
    return result


def _tile_progress(bar: tqdm, name: str):
    """``on_tile`` callback driving the second (per-tile) progress bar."""

    def update(done: int, total: int) -> None:
        if done == 1:
            bar.reset(total=total)
            bar.set_description_str(name, refresh=False)
        bar.update(1)

    return update


def final_target(job: Job, image: InputImage, ext: str, taken: Callable[[str], bool]) -> Path:
    """The planned target, or the same name as ``.png`` when the pixels need it (alpha, 16 bit).

    ``taken(key)`` says whether that ``.png`` (as ``path_key``) is an input or another image's output,
    which raises ``OutputConflictError`` rather than overwrite it.
    """
    extension = choose_extension(image, ext)
    if job.target.suffix.lower() == f".{extension}" or (ext == "auto" and _same_format(job.target, image)):
        return job.target
    target = job.target.with_suffix(f".{extension}")
    if taken(path_key(target)):
        raise OutputConflictError(f"{job.source}: its result must be .{extension} ({_why(image)}), and "
                                  f"{target} is an input or another image's output; use another --suffix")
    return target


def _claim(claimed: set[str], inputs: set[str]) -> Callable[[str], bool]:
    """``taken`` for one process: a name is taken if it is an input or already claimed; else claim it."""

    def taken(key: str) -> bool:
        if key in inputs or key in claimed:
            return True
        claimed.add(key)
        return False

    return taken


def _same_format(target: Path, image: InputImage) -> bool:
    return target.suffix.lower() in (".jpg", ".jpeg") and image.format == "jpeg" and not image.has_alpha \
        and image.pixels.dtype == np.uint8


def _why(image: InputImage) -> str:
    return "it has alpha" if image.has_alpha else f"{image.pixels.dtype} pixels"


def path_key(path: Path) -> str:
    """A path's identity for conflict checks: absolute, symlinks resolved."""
    return str(Path(path).resolve())
