"""Reading a video with PyAV: what it holds (``probe_video``) and its frames as RGB arrays (``read_frames``).

Every failure (unreadable file, no video stream, a stream that does not decode) is a
``VideoInputError`` whose message starts with the file's path, so a front end can print it as is.
Frames keep their own timestamps (``pts`` in the stream's ``time_base``): variable frame rate
survives, and the encoder writes each output frame at its input frame's time. A stream of more
than 8 bits per sample (10-bit H.264 / HEVC, ProRes) is read as 16-bit RGB, so its gradients are
not cut to 256 levels on the way through the network.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from realesrgan_ext.limits import Limits, over_limit
from realesrgan_ext.video.deinterlace import deinterlace, wants_deinterlacing

# What each frame is converted to for the network (8-bit streams, and deeper ones); the encoder converts
# back with the same colorspace.
RGB_FORMAT, DEEP_RGB_FORMAT = "rgb24", "rgb48le"


class VideoInputError(ValueError):
    """An input video that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class ColourTags:
    """The colour description of a stream (FFmpeg's enum values; 2 = unspecified, 0 = range unspecified)."""

    primaries: int = 2
    transfer: int = 2
    space: int = 2
    range: int = 0


@dataclass(frozen=True)
class VideoInfo:
    """What ``probe_video`` found: the first video stream and the streams that are copied beside it."""

    path: Path
    width: int
    height: int
    time_base: Fraction
    average_rate: Fraction | None
    frames: int  # as the container states it; 0 when unknown (the reader counts them anyway)
    duration: float | None  # seconds, of the video stream (None when the container does not say)
    rotation: int  # degrees counter-clockwise, from the display matrix (0 when absent)
    colour: ColourTags
    pix_fmt: str
    copied_streams: tuple[int, ...]  # indices of the audio / subtitle / cover-art streams to carry over
    bit_depth: int = 8  # bits per sample of the decoded pixel format (10 for yuv420p10le)
    sample_aspect_ratio: Fraction | None = None  # a pixel's width / height where not 1 (32/27: a 16:9 NTSC DVD)
    interlaced: bool = False  # the first frame is flagged interlaced
    deinterlace: str = "auto"  # how frames are read: ``deinterlace.MODES``

    @property
    def expected_frames(self) -> int:
        """The frame count the container states, else its duration at its frame rate (Matroska states
        none); 0 when neither is known. Progress bars and limits use it; the reader counts the frames."""
        return self.frames or round((self.duration or 0) * float(self.average_rate or 0))

    @property
    def deep(self) -> bool:
        """More than 8 bits per sample: frames are read as 16-bit RGB."""
        return self.bit_depth > 8

    def describe(self) -> str:
        rate = f"{float(self.average_rate):.3f} fps" if self.average_rate else "unknown fps"
        count = (f"{self.frames} frames" if self.frames else f"about {self.expected_frames} frames"
                 if self.expected_frames else "frame count unknown")
        fields = f", interlaced (deinterlace {self.deinterlace})" if self.interlaced else ""
        sar = self.sample_aspect_ratio
        pixels = f" (pixel aspect {sar.numerator}:{sar.denominator})" if sar else ""
        return f"{self.path.name}: {self.width}x{self.height}{pixels} {self.pix_fmt}, {rate}, {count}{fields}"


def open_input(path: str | Path) -> av.container.InputContainer:
    """``av.open`` for reading, with a ``VideoInputError`` naming the file when it cannot be opened."""
    path = Path(path)
    if not path.is_file():
        raise VideoInputError(f"{path}: no such file")
    try:
        return av.open(str(path), mode="r")
    except (av.FFmpegError, UnicodeDecodeError) as err:
        raise VideoInputError(f"{path}: not a readable video ({_reason(err)})") from err


def probe_video(path: str | Path, limits: Limits | None = None) -> VideoInfo:
    """The first video stream's size, timing, rotation and colour, read from its first decoded frame.

    Raises ``VideoInputError`` for a missing or unreadable file, a file without a video stream,
    or a video stream whose first frame does not decode; ``LimitError`` for a stream whose declared
    frame size is over ``limits.max_image_pixels`` (checked before a frame is decoded).
    """
    path = Path(path)
    limits = limits or Limits.from_env()
    with open_input(path) as container:
        stream = main_video_stream(container, path)
        declared = stream.codec_context.width * stream.codec_context.height
        if declared > limits.max_image_pixels:
            size = f"{stream.codec_context.width}x{stream.codec_context.height}"
            raise over_limit(f"{path}: a {size} frame", declared, "max_image_pixels", limits, "px")
        first = next(_decode(container, stream, path), None)
        if first is None:
            raise VideoInputError(f"{path}: the video stream has no decodable frame")
        duration = float(stream.duration * stream.time_base) if stream.duration else (
            container.duration / av.time_base if container.duration else None)
        copied = tuple(s.index for s in container.streams if s.type in ("audio", "subtitle") or is_cover_art(s))
        return VideoInfo(path=path, width=first.width, height=first.height, time_base=stream.time_base,
                         average_rate=stream.average_rate, frames=stream.frames, duration=duration,
                         rotation=int(round(first.rotation or 0)), colour=_colour(first),
                         pix_fmt=first.format.name, copied_streams=copied, bit_depth=bit_depth(first.format),
                         sample_aspect_ratio=_pixel_aspect(stream), interlaced=bool(first.interlaced_frame))


@dataclass(frozen=True)
class SourceFrame:
    """One decoded frame: its position, RGB pixels (H x W x 3 uint8) and time (``pts`` x ``time_base`` s)."""

    index: int
    rgb: np.ndarray
    pts: int | None
    time_base: Fraction


def read_frames(info: VideoInfo, start: int = 0) -> Iterator[SourceFrame]:
    """Every frame of ``info``'s video stream from index ``start`` on, as RGB, in presentation order.

    Frames before ``start`` are decoded but not converted (a resumed run skips them cheaply).
    """
    with open_input(info.path) as container:
        stream = main_video_stream(container, info.path)
        stream.thread_type = "AUTO"
        for index, frame in enumerate(_decode(container, stream, info.path)):
            if index < start:
                continue
            if (frame.width, frame.height) != (info.width, info.height):
                raise VideoInputError(f"{info.path}: frame {index} is {frame.width}x{frame.height}, the video "
                                      f"started at {info.width}x{info.height} (a size change mid-stream)")
            yield SourceFrame(index, frame_pixels(frame, info), frame.pts, frame.time_base or stream.time_base)


def frame_pixels(frame: av.VideoFrame, info: VideoInfo) -> np.ndarray:
    """What the network gets of a decoded frame: RGB (``to_rgb``), deinterlaced as ``info.deinterlace`` says."""
    return to_rgb(deinterlace(frame) if wants_deinterlacing(frame, info.deinterlace) else frame, info.deep)


def to_rgb(frame: av.VideoFrame, deep: bool = False) -> np.ndarray:
    """A decoded frame as H x W x 3 RGB, uint8 (``deep``: uint16), converted with the frame's own
    colorspace and range."""
    return frame.to_ndarray(format=DEEP_RGB_FORMAT if deep else RGB_FORMAT, src_colorspace=frame.colorspace or None,
                            src_color_range=frame.color_range or None)


def bit_depth(fmt: av.VideoFormat) -> int:
    """The most bits of any component of a pixel format (8 for yuv420p and rgb24, 10 for yuv420p10le)."""
    return max((c.bits for c in fmt.components), default=8)


def main_video_stream(container: av.container.InputContainer, path: Path) -> av.video.stream.VideoStream:
    """The video stream to upscale, as FFmpeg picks one: the largest that is not cover art (an attached
    picture), the first of those of one size."""
    moving = [s for s in container.streams.video if not is_cover_art(s)]
    if not moving:
        kinds = sorted({"cover art" if is_cover_art(s) else s.type for s in container.streams}) or ["no streams"]
        raise VideoInputError(f"{path}: no video stream (it holds {', '.join(kinds)})")
    return max(moving, key=lambda s: (s.codec_context.width * s.codec_context.height, -s.index))


def is_cover_art(stream) -> bool:
    """A video stream that is one still picture shown for the file (MP4 / M4A cover art), not video."""
    return stream.type == "video" and bool(stream.disposition & av.stream.Disposition.attached_pic)


def _decode(container: av.container.InputContainer, stream, path: Path) -> Iterator[av.VideoFrame]:
    """Decoded frames of ``stream``; a decoding error becomes a ``VideoInputError`` naming the file."""
    count = 0
    try:
        for frame in container.decode(stream):
            count += 1
            yield frame
    except av.FFmpegError as err:
        where = f"after {count} frame(s)" if count else "at the first frame"
        raise VideoInputError(f"{path}: corrupt video stream, decoding failed {where} ({_reason(err)})") from err


def _pixel_aspect(stream) -> Fraction | None:
    """The stream's sample aspect ratio (the container's, else the bitstream's); None for square or unknown."""
    ratio = stream.sample_aspect_ratio or stream.codec_context.sample_aspect_ratio
    return Fraction(ratio) if ratio and ratio > 0 and ratio != 1 else None


def _colour(frame: av.VideoFrame) -> ColourTags:
    return ColourTags(int(frame.color_primaries), int(frame.color_trc), int(frame.colorspace),
                      int(frame.color_range))


def _reason(err: BaseException) -> str:
    return getattr(err, "strerror", None) or str(err)
