"""Upscaling a whole video: decode, upscale in batches, encode in segments, mux, rename; resumable.

Three threads with bounded queues, so memory stays bounded for any length and the network never
waits on I/O:

* a reader decodes frames to RGB (``source.read_frames``), at most ``QUEUE_BATCHES`` batches ahead;
* the calling thread upscales ``batch`` frames at a time (``Upscaler.upscale_batch``; one at a
  time on a CPU, where batches run no faster, so each frame is exactly the image CLI's result);
* a writer encodes segments of ``segment_frames`` frames into the work folder (``segments``),
  recording each when it is whole.

At the end the segments are muxed with the input's audio and subtitles into a hidden temporary
file beside the output, which is renamed to the output only when complete; the work folder is
then removed. An interruption leaves no output, and the finished segments for ``resume``.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from realesrgan_ext.inference.model_loader import LoadedModel
from realesrgan_ext.inference.upscaler import Upscaler
from realesrgan_ext.limits import LimitError
from realesrgan_ext.video.containers import check_container
from realesrgan_ext.video.encoder import EncodeSettings, check_output_size, encode_frames
from realesrgan_ext.video.mux import mux_output
from realesrgan_ext.video.segments import WorkFolder, open_work_folder, work_folder_for
from realesrgan_ext.video.source import SourceFrame, VideoInfo, read_frames

DEFAULT_BATCH = 4  # frames per network call on a GPU (a CPU takes one: 4 ran 5-20 % slower per frame there)
DEFAULT_SEGMENT_FRAMES = 100  # frames per work-folder segment: what an interruption can lose
QUEUE_BATCHES = 2  # how many batches the reader runs ahead of the network, and the writer behind it
_DONE = object()  # end-of-stream marker in the queues
# Architectures run on whole frames by --tile 0: a compact network (realesr-animevideov3) has a small
# receptive field and no activations at output size (64 channels at input size, about 0.5 GB per
# activation at 1920x1088 in fp32), so tiles with context only add work (480p x4: 8.7 s whole frame,
# 11.6 s in 256 px tiles with 48 px context, PyTorch, 2 cores).
WHOLE_FRAME_ARCHS = frozenset({"SRVGGNetCompact"})
WHOLE_FRAME_PIXELS = 1920 * 1088
# What turns the video into finished segments in the work folder, from ``work.next_frame`` on, and returns
# the total frame count: ``_run_frames`` here, or ``ray_segments.ray_frames_runner`` on a Ray cluster.
# Arguments: info, upscaler, settings, outscale, batch, segment_frames, work, advance(frames done).
FramesRunner = Callable[[VideoInfo, Upscaler, EncodeSettings, float | None, int, int, WorkFolder,
                         Callable[[int], None]], int]


@dataclass
class VideoResult:
    """What ``upscale_video`` did: frames written (and how many were resumed), time, notes."""

    output: Path
    frames: int = 0
    resumed_frames: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        done = self.frames - self.resumed_frames
        rate = f", {done / self.seconds:.2f} fps" if self.seconds > 0 and done else ""
        resumed = f" ({self.resumed_frames} resumed)" if self.resumed_frames else ""
        return f"upscaled {self.frames} frames{resumed} into {self.output} in {self.seconds:.1f} s{rate}"


def auto_tile(model: LoadedModel, width: int, height: int) -> int:
    """``--tile 0`` for a video: the whole frame for ``WHOLE_FRAME_ARCHS`` up to ``WHOLE_FRAME_PIXELS``,
    else 0 (the image CLI's automatic tile)."""
    if model.name in WHOLE_FRAME_ARCHS and width * height <= WHOLE_FRAME_PIXELS:
        return max(width, height)
    return 0


def temporary_output(output: Path) -> Path:
    """Where the output is muxed before the final rename: hidden, beside it, with its suffix (the format)."""
    return output.with_name(f".{output.stem}.partial{output.suffix}")


def default_batch(device: torch.device) -> int:
    """Frames per network call: ``DEFAULT_BATCH`` on a GPU; one on a CPU, where a batch runs no faster
    and its convolutions may round differently from one frame's (1 level, in a few pixels)."""
    return DEFAULT_BATCH if device.type == "cuda" else 1


def upscale_video(info: VideoInfo, output: str | Path, upscaler: Upscaler, settings: EncodeSettings,
                  outscale: float | None = None, batch: int | None = None,
                  segment_frames: int = DEFAULT_SEGMENT_FRAMES, resume: bool = False,
                  run: dict[str, Any] | None = None, progress: bool = True,
                  on_frames: Callable[[int, int], None] | None = None,
                  frames_runner: FramesRunner | None = None) -> VideoResult:
    """Upscale every frame of ``info``'s video into ``output`` (see the module docstring).

    ``run``: what else identifies the run for ``resume`` (model, tiling, precision...); the input
    file, ``outscale``, ``settings`` and ``segment_frames`` are added here. ``on_frames(done, total)``
    is called after each batch (``total``: ``info.expected_frames``, 0 when unknown). ``frames_runner``:
    who makes the segments (default: this machine's threads; ``ray_segments.ray_frames_runner``: Ray actors). ``batch``:
    frames per network call, default ``default_batch`` of the upscaler's device.

    Raises ``VideoInputError`` (bad input), ``VideoEncodeError`` (an output that cannot be encoded).
    """
    output = Path(output)
    batch = batch or default_batch(upscaler.device)
    if batch < 1 or segment_frames < 1:
        raise ValueError(f"batch and segment_frames must be >= 1, got {batch}, {segment_frames}")
    if output.resolve() == info.path.resolve():
        raise ValueError(f"{output}: the output would overwrite the input")
    fmt = check_container(output, settings)
    check_output_size(settings, *_output_size(upscaler, info, outscale), info.path)
    try:
        upscaler.check_output(info.height, info.width, outscale)
    except LimitError as err:
        raise LimitError(f"{info.path}: {err}") from err
    output.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    described = {**(run or {}), **_describe_input(info), "outscale": outscale, "encode": settings.describe(),
                 "segment_frames": segment_frames}
    work, note = open_work_folder(work_folder_for(output), described, resume)
    result = VideoResult(output, resumed_frames=work.next_frame, notes=[note] if note else [])
    total = info.expected_frames
    with tqdm(total=total or None, initial=work.next_frame, unit="frame", disable=not progress,
              dynamic_ncols=True, desc=info.path.name) as bar:
        done = work.next_frame

        def advance(count: int) -> None:
            nonlocal done
            done += count
            bar.update(count)  # a disabled bar counts nothing
            if on_frames is not None:
                on_frames(done, total)

        runner = frames_runner or _run_frames
        result.frames = runner(info, upscaler, settings, outscale, batch, segment_frames, work, advance)
        bar.total = result.frames  # an estimated total ends at the count
    tmp = temporary_output(output)
    try:
        result.notes += mux_output(tmp, fmt, work, info)
        os.replace(tmp, output)
    finally:
        tmp.unlink(missing_ok=True)
    work.remove()
    result.seconds = time.perf_counter() - start
    return result


def _run_frames(info: VideoInfo, upscaler: Upscaler, settings: EncodeSettings, outscale: float | None,
                batch: int, segment_frames: int, work: WorkFolder, advance: Callable[[int], None]) -> int:
    """Decode, upscale and encode from ``work.next_frame`` on; returns the total frame count."""
    stop = threading.Event()
    decoded: queue.Queue = queue.Queue(maxsize=QUEUE_BATCHES * batch)
    upscaled: queue.Queue = queue.Queue(maxsize=QUEUE_BATCHES * batch)
    reader = _Worker(lambda: _read(info, work.next_frame, decoded, stop), "video-reader")
    writer = _Worker(lambda: _write(upscaled, work, settings, info, segment_frames, stop), "video-writer")
    reader.start()
    writer.start()
    try:
        for frames in _batches(decoded, batch, reader):
            pixels = upscaler.upscale_batch(np.stack([f.rgb for f in frames]), outscale)
            for frame, image in zip(frames, pixels, strict=True):
                _put(upscaled, (image, _pts(frame, info)), writer)
            advance(len(frames))
        _put(upscaled, _DONE, writer)
        writer.join()
        writer.raise_error()
    finally:
        stop.set()
        reader.join()
        writer.join()
    reader.raise_error()
    writer.raise_error()
    return work.next_frame


class _Worker(threading.Thread):
    """A daemon thread that keeps the exception its target raised, for the main thread to re-raise."""

    def __init__(self, target: Callable[[], None], name: str) -> None:
        super().__init__(name=name, daemon=True)
        self._target_fn, self.error = target, None

    def run(self) -> None:
        try:
            self._target_fn()
        except BaseException as err:  # noqa: BLE001  (handed to the main thread)
            self.error = err

    def raise_error(self) -> None:
        if self.error is not None:
            raise self.error


def _read(info: VideoInfo, start: int, decoded: queue.Queue, stop: threading.Event) -> None:
    try:
        for frame in read_frames(info, start):
            if not _put_unless(decoded, frame, stop):
                return
    finally:
        _put_unless(decoded, _DONE, stop)


def _batches(decoded: queue.Queue, batch: int, reader: _Worker) -> Iterator[list[SourceFrame]]:
    """Up to ``batch`` decoded frames at a time, until the reader is done (its error re-raised)."""
    frames: list[SourceFrame] = []
    while True:
        item = _get(decoded, reader)
        if item is _DONE:
            break
        frames.append(item)
        if len(frames) == batch:
            yield frames
            frames = []
    reader.join()  # the end marker is put before the thread records its error
    reader.raise_error()
    if frames:
        yield frames


def _write(upscaled: queue.Queue, work: WorkFolder, settings: EncodeSettings, info: VideoInfo,
           segment_frames: int, stop: threading.Event) -> None:
    """Encode segments of ``segment_frames`` frames from ``upscaled`` until the end marker."""
    index, first = len(work.segments), work.next_frame
    finished = interrupted = False

    def frames() -> Iterator[tuple[np.ndarray, int]]:
        nonlocal finished, interrupted
        for _ in range(segment_frames):
            item = _get(upscaled, None, stop)
            if item is None:
                interrupted = True
                return
            if item is _DONE:
                finished = True
                return
            yield item

    while not finished:
        count = 0

        def counted() -> Iterator[tuple[np.ndarray, int]]:
            nonlocal count
            for item in frames():
                count += 1
                yield item

        stamps = encode_frames(work.partial_path(index), counted(), settings, info)
        if interrupted or not count:
            work.partial_path(index).unlink(missing_ok=True)  # an unfinished segment is not recorded
            if interrupted:
                return
            continue
        work.add(index, first, count, stamps)
        index, first = index + 1, first + count


def _pts(frame: SourceFrame, info: VideoInfo) -> int:
    """The frame's pts in the stream's time base; frames without one are placed at index / frame rate."""
    if frame.pts is not None:
        return int(Fraction(frame.pts) * frame.time_base / info.time_base)
    rate = info.average_rate or Fraction(25)
    return int(Fraction(frame.index) / rate / info.time_base)


def _output_size(upscaler: Upscaler, info: VideoInfo, outscale: float | None) -> tuple[int, int]:
    height, width = upscaler.output_size(info.height, info.width, outscale)
    return width, height


def _describe_input(info: VideoInfo) -> dict[str, Any]:
    stat = info.path.stat()
    return {"input": str(info.path.resolve()), "input_bytes": stat.st_size, "input_mtime_ns": stat.st_mtime_ns,
            "deinterlace": info.deinterlace}


_POLL_S = 0.2  # how often a blocked queue operation checks that the other side is still alive


def _put(q: queue.Queue, item: Any, consumer: _Worker) -> None:
    """``q.put`` that gives up with the consumer's error when the consumer thread has died."""
    while True:
        try:
            q.put(item, timeout=_POLL_S)
            return
        except queue.Full:
            if not consumer.is_alive():
                consumer.raise_error()
                raise RuntimeError(f"{consumer.name} stopped") from None


def _put_unless(q: queue.Queue, item: Any, stop: threading.Event) -> bool:
    while not stop.is_set():
        try:
            q.put(item, timeout=_POLL_S)
            return True
        except queue.Full:
            continue
    return False


def _get(q: queue.Queue, producer: _Worker | None, stop: threading.Event | None = None) -> Any:
    """``q.get`` that notices a dead producer (its error re-raised) or ``stop`` (returns None)."""
    while True:
        try:
            return q.get(timeout=_POLL_S)
        except queue.Empty:
            if stop is not None and stop.is_set():
                return None
            if producer is not None and not producer.is_alive():
                producer.raise_error()
                return _DONE
