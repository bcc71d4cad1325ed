"""Upscaling a video's segments on a Ray cluster: the one-machine work folder, filled by Ray actors.

``upscale_video(..., frames_runner=ray_frames_runner(...))`` plans, checks, resumes and muxes exactly
as on one machine; only the segments are made elsewhere. The driver lists every frame's pts by
demuxing (no decoding), cuts them into the same segments as one machine (``segment_frames`` from
``work.next_frame`` on), and streams them through a ``ray.data`` pool of ``SegmentActor``: each
loads the model once (``ray_batch.UpscaleActor``), seeks to its segment, decodes, upscales and
encodes it into the work folder. The driver records finished segments in frame order (the manifest
lists a run of consecutive segments, which ``--resume`` continues after) and raises
``SegmentsFailedError`` with every failed segment's reason once the others are done.

Workers read the input and write the work folder themselves: input, output and work folder (beside
the output) must be on storage that every node sees under the same path.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import av
import numpy as np

from realesrgan_ext.inference.ray_batch import UpscaleActor, UpscaleSettings, actor_count, connect_ray
from realesrgan_ext.inference.upscaler import Upscaler
from realesrgan_ext.video.encoder import EncodeSettings, encode_frames
from realesrgan_ext.video.pipeline import FramesRunner, _pts
from realesrgan_ext.video.segments import WorkFolder
from realesrgan_ext.video.source import (
    SourceFrame,
    VideoInfo,
    VideoInputError,
    _decode,
    frame_pixels,
    main_video_stream,
    open_input,
)


@dataclass(frozen=True)
class PlannedSegment:
    """A segment to make: its work-folder index, first frame index and its frames' pts (stream time base)."""

    index: int
    first: int
    pts: tuple[int, ...]

    def describe(self) -> str:
        return f"segment {self.index} (frames {self.first}-{self.first + len(self.pts) - 1})"


class SegmentsFailedError(RuntimeError):
    """Some segments could not be made; ``failures`` holds each one with its reason."""

    def __init__(self, failures: list[tuple[PlannedSegment, str]], total: int) -> None:
        self.failures = failures
        lines = [f"{s.describe()}: {reason}" for s, reason in failures]
        super().__init__(f"{len(failures)} of {total} segment(s) failed:\n  " + "\n  ".join(lines))


def frame_times(info: VideoInfo) -> list[int]:
    """Every frame's pts in presentation order, from the video packets alone (nothing is decoded).

    Packets the demuxer marks as discarded (before an edit list's start) decode to no frame.
    """
    pts = []
    with open_input(info.path) as container:
        stream = main_video_stream(container, info.path)
        try:
            for packet in container.demux(stream):
                if not packet.size or packet.is_discard:
                    continue
                if packet.pts is None:
                    raise VideoInputError(f"{info.path}: video packets without timestamps; --ray seeks to each "
                                          "segment by its timestamps (remux the file, or run without --ray)")
                pts.append(packet.pts)
        except av.FFmpegError as err:
            raise VideoInputError(f"{info.path}: corrupt container, demuxing failed after {len(pts)} "
                                  f"packet(s) ({err})") from err
    return sorted(pts)


def plan_segments(pts: list[int], start: int, segment_frames: int, first_index: int) -> list[PlannedSegment]:
    """The segments after frame ``start`` in runs of ``segment_frames``: the one-machine boundaries."""
    return [PlannedSegment(first_index + n, first, tuple(pts[first: first + segment_frames]))
            for n, first in enumerate(range(start, len(pts), segment_frames))]


def read_segment(info: VideoInfo, segment: PlannedSegment) -> Iterator[SourceFrame]:
    """The segment's frames as RGB, equal to ``read_frames``' frames ``first`` to ``first + count - 1``.

    Seeks backward to the key frame at or before the first frame's pts, decodes, and drops the
    frames before it in presentation order (so B-frames and variable frame rates are right);
    a seek that lands past the first frame (a demuxer indexing by decode time) decodes from the
    start instead. Each frame's pts is checked against the plan.
    """
    want = segment.pts
    frames = _decoded(info, want[0] if segment.first else None)
    head = next(frames, None)
    if segment.first and (head is None or head.pts is None or head.pts > want[0]):
        frames.close()
        frames = _decoded(info, None)
        head = next(frames, None)
    done = 0
    try:
        for frame in itertools.chain([head] if head is not None else [], frames):
            if done == len(want):
                return
            if frame.pts is not None and frame.pts >= want[0]:
                yield _checked(info, segment, frame, done)
                done += 1
    finally:
        frames.close()
    if done < len(want):
        raise VideoInputError(f"{info.path}: {segment.describe()} ended after {done} of {len(want)} frames")


def _decoded(info: VideoInfo, seek_pts: int | None) -> Iterator[av.VideoFrame]:
    with open_input(info.path) as container:
        stream = main_video_stream(container, info.path)
        stream.thread_type = "AUTO"
        if seek_pts is not None:
            container.seek(seek_pts, backward=True, any_frame=False, stream=stream)
        yield from _decode(container, stream, info.path)


def _checked(info: VideoInfo, segment: PlannedSegment, frame: av.VideoFrame, offset: int) -> SourceFrame:
    index = segment.first + offset
    if frame.pts != segment.pts[offset]:
        raise VideoInputError(f"{info.path}: frame {index} decoded at pts {frame.pts}, the packets said "
                              f"{segment.pts[offset]} (a stream whose frames do not match its packets)")
    if (frame.width, frame.height) != (info.width, info.height):
        raise VideoInputError(f"{info.path}: frame {index} is {frame.width}x{frame.height}, the video "
                              f"started at {info.width}x{info.height} (a size change mid-stream)")
    return SourceFrame(index, frame_pixels(frame, info), frame.pts, frame.time_base or info.time_base)


class SegmentActor(UpscaleActor):
    """One model per actor (as ``UpscaleActor``); ``__call__`` makes a batch of segments in the work folder."""

    def __init__(self, settings: dict[str, Any], info: VideoInfo, encode: EncodeSettings, work: str,
                 batch: int) -> None:
        super().__init__(settings)
        self.info, self.encode, self.work, self.batch = info, encode, WorkFolder(Path(work), {}), batch

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        stamps, errors = [], []
        for index, first, pts in zip(batch["index"], batch["first"], batch["pts"], strict=True):
            made, error = self._one(PlannedSegment(int(index), int(first), tuple(json.loads(pts))))
            stamps.append(json.dumps(made))
            errors.append(error)
        return {"index": batch["index"], "stamps": np.array(stamps, dtype=object),
                "error": np.array(errors, dtype=object)}

    def _one(self, segment: PlannedSegment) -> tuple[list[tuple[int, int]], str]:
        """(packet stamps, "") with the segment at its partial path, or ([], reason): never a crashed task."""
        path = self.work.partial_path(segment.index)
        try:
            frames = read_segment(self.info, segment)
            return encode_frames(path, self._upscaled(frames), self.encode, self.info), ""
        except Exception as err:  # noqa: BLE001  (reported per segment; the others go on)
            if path.is_file():
                path.unlink()  # an unfinished segment is not left behind
            return [], _reason(err, self.info.path)

    def _upscaled(self, frames: Iterator[SourceFrame]) -> Iterator[tuple[np.ndarray, int]]:
        """``(pixels, pts)`` per frame, ``batch`` frames per network call, as on one machine."""
        while chunk := list(itertools.islice(frames, self.batch)):
            pixels = self.upscaler.upscale_batch(np.stack([f.rgb for f in chunk]), self.settings.outscale)
            yield from ((image, _pts(f, self.info)) for f, image in zip(chunk, pixels, strict=True))


def _reason(err: Exception, source: Path) -> str:
    """One line on why a segment failed: an input error as it is (it names the file), else its type and text."""
    return str(err) if str(err).startswith(str(source)) else f"{type(err).__name__}: {err}"


class SegmentRecorder:
    """Records finished segments in the manifest in frame order, whatever order they finish in."""

    def __init__(self, work: WorkFolder, planned: list[PlannedSegment]) -> None:
        self.work, self.planned = work, {s.index: s for s in planned}
        self.waiting: dict[int, list[tuple[int, int]]] = {}
        self.failures: list[tuple[PlannedSegment, str]] = []

    def finished(self, index: int, stamps: list[tuple[int, int]], error: str) -> int:
        """Note segment ``index``'s result; returns its frame count when it was made, else 0."""
        segment = self.planned[index]
        if error:
            self.failures.append((segment, error))
            return 0
        self.waiting[index] = stamps
        next_index = len(self.work.segments)
        while next_index in self.waiting:
            done = self.planned[next_index]
            self.work.add(next_index, done.first, len(done.pts), self.waiting.pop(next_index))
            next_index += 1
        return len(segment.pts)

    def unfinished(self, reason: str) -> None:
        """Every segment not reported yet fails with ``reason``."""
        reported = {s.index for s, _ in self.failures} | set(self.waiting) | set(range(len(self.work.segments)))
        self.failures += [(s, reason) for i, s in self.planned.items() if i not in reported]

    def raise_failures(self) -> None:
        if self.failures:
            raise SegmentsFailedError(sorted(self.failures, key=lambda f: f[0].index), len(self.planned))


def ray_frames_runner(settings: UpscaleSettings, address: str | None = None, actors: int = 0,
                      cpus_per_actor: float = 1.0, gpus_per_actor: float = 0.0,
                      init_options: dict[str, Any] | None = None) -> FramesRunner:
    """A ``frames_runner`` for ``upscale_video`` that makes the segments on Ray (see the module docstring).

    ``settings``: the model and engine each actor builds (its ``outscale`` is the run's). ``address``
    None joins ``RAY_ADDRESS`` or starts a local runtime; ``actors`` 0 = as many as the cluster holds.
    Raises ``RayUnavailableError`` and, after the other segments are done, ``SegmentsFailedError``.
    """

    def run(info: VideoInfo, upscaler: Upscaler, encode: EncodeSettings, outscale: float | None, batch: int,
            segment_frames: int, work: WorkFolder, advance: Callable[[int], None]) -> int:
        planned = plan_segments(frame_times(info), work.next_frame, segment_frames, len(work.segments))
        if not planned:
            return work.next_frame
        constructor = {"settings": asdict(replace(settings, outscale=outscale)), "info": info, "encode": encode,
                       "work": str(work.path), "batch": batch}
        made = _made_on_ray(planned, constructor, address, actors, cpus_per_actor, gpus_per_actor, init_options)
        recorder = SegmentRecorder(work, planned)
        try:
            for row in made:  # as each segment finishes, in any order
                stamps = [tuple(pair) for pair in json.loads(row["stamps"])]
                advance(recorder.finished(int(row["index"]), stamps, row["error"]))
        except _RunStopped as err:  # an actor that could not start, a lost node: the rest is not made
            recorder.unfinished(str(err))
        recorder.raise_failures()
        return work.next_frame

    return run


def _made_on_ray(planned: list[PlannedSegment], constructor: dict[str, Any], address: str | None, actors: int,
                 cpus_per_actor: float, gpus_per_actor: float, init_options: dict[str, Any] | None) -> Iterator[dict]:
    """``SegmentActor(**constructor)``'s result row for each planned segment, from a pool of actors on Ray."""
    ray = connect_ray(address, init_options)
    pool = min(actors or actor_count(ray.cluster_resources(), cpus_per_actor, gpus_per_actor), len(planned))
    rows = [{"index": s.index, "first": s.first, "pts": json.dumps(s.pts)} for s in planned]
    dataset = ray.data.from_items(rows, override_num_blocks=len(rows)).map_batches(
        SegmentActor, fn_constructor_kwargs=constructor, batch_size=1, batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=pool), num_cpus=cpus_per_actor, num_gpus=gpus_per_actor or None)
    return _rows(dataset, ray)


class _RunStopped(RuntimeError):
    """The Ray run ended before every segment was reported (the message says why, in one line)."""


def _rows(dataset, ray) -> Iterator[dict]:
    try:
        yield from dataset.iter_rows()
    except ray.exceptions.RayError as err:  # its text is a remote traceback: keep the last line, the error
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        raise _RunStopped(f"the Ray run stopped: {lines[-1] if lines else type(err).__name__}") from err


__all__ = ["PlannedSegment", "SegmentActor", "SegmentRecorder", "SegmentsFailedError", "frame_times",
           "plan_segments", "ray_frames_runner", "read_segment"]
