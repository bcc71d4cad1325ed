"""What an output container holds: its muxer for a suffix, the codecs, subtitles, attachments and cover art
it keeps, and the encoder to use when none is asked for.

Each answer comes from FFmpeg: its muxer's own lists (``supported_codecs``, default codecs), or, where
a muxer accepts what it then drops (WebM and attachments, Matroska and cover pictures), a tiny probe
file written and read back.
"""

from __future__ import annotations

import functools
import io
import tempfile
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from realesrgan_ext.video.encoder import EncodeSettings, VideoEncodeError, encode_settings


def output_format(path: Path) -> str:
    """The FFmpeg muxer FFmpeg picks for ``path``'s suffix; ``VideoEncodeError`` when there is none."""
    with tempfile.TemporaryDirectory(prefix="realesrgan_ext_video_") as folder:
        try:
            with av.open(str(Path(folder) / f"probe{path.suffix}"), mode="w") as container:
                return container.format.name.split(",")[0]
        except (av.FFmpegError, ValueError) as err:
            raise VideoEncodeError(f"{path}: FFmpeg has no container format for the suffix {path.suffix!r} "
                                   "(use .mp4, .mkv, .mov...)") from err


def default_codec(path: Path) -> str | None:
    """The encoder for ``path`` when no ``--codec`` is given: None (H.264, the default) where its container
    holds H.264, else the container's own default (VP9 for .webm, GIF for .gif)."""
    fmt = output_format(path)
    with av.open(io.BytesIO(), mode="w", format=fmt) as container:
        if "h264" in container.supported_codecs:
            return None
        fallback = container.default_video_codec
    if fallback in (None, "none"):
        raise VideoEncodeError(f"{path}: the {fmt} container holds no video")
    return av.codec.Codec(fallback, "w").name


def check_container(path: Path, settings: EncodeSettings) -> str:
    """The muxer for ``path``, after checking it holds ``settings``' codec (``.webm`` does not hold H.264)."""
    fmt = output_format(path)
    codec = av.codec.Codec(settings.codec, "w").name
    with av.open(io.BytesIO(), mode="w", format=fmt) as container:
        supported = container.supported_codecs
    if codec not in supported and av.codec.Codec(settings.codec, "w").canonical_name not in supported:
        raise VideoEncodeError(f"{path}: the {fmt} container cannot hold {settings.codec} video; choose another "
                               "--codec or output suffix (.mkv holds almost anything)")
    return fmt


def text_subtitle_codec(out) -> str | None:
    """A text subtitle encoder the container ``out`` holds: its default where that is text (WebM's WebVTT),
    else the first such of the codecs it holds (MP4's mov_text); None when it holds none."""
    if out.default_subtitle_codec not in (None, "none") and is_text_subtitle(out.default_subtitle_codec, "w"):
        return out.default_subtitle_codec
    return next((name for name in sorted(out.supported_codecs) if is_text_subtitle(name, "w")), None)


def is_text_subtitle(name: str, mode: str) -> bool:
    """Whether FFmpeg has a text-subtitle decoder (``mode`` "r") or encoder ("w") called ``name``."""
    try:
        codec = av.codec.Codec(name, mode)
    except (av.codec.codec.UnknownCodecError, ValueError):
        return False
    return codec.type == "subtitle" and codec.text_sub


@functools.cache
def holds_attachments(fmt: str) -> bool:
    """Whether FFmpeg's ``fmt`` muxer keeps an attachment: Matroska does; MP4, MOV and AVI refuse one,
    WebM drops it."""
    def attach(probe) -> None:
        probe.add_attachment("probe.bin", "application/octet-stream", b"\0")

    return any(kind == "attachment" for kind, _ in _read_back(fmt, attach))


@functools.cache
def holds_cover_art(fmt: str) -> bool:
    """Whether FFmpeg's ``fmt`` muxer keeps a cover picture as one (MP4 does; Matroska and MOV do not)."""
    def cover(probe) -> list[av.Packet]:
        stream = probe.add_stream("mjpeg", rate=1)  # a JPEG's bytes as its one packet; no encoder runs
        stream.width, stream.height, stream.pix_fmt = 16, 16, "yuvj420p"
        stream.time_base = Fraction(1, 1000)  # no encoder opens to set one; a muxer divides by it
        stream.disposition = av.stream.Disposition.attached_pic
        packet = av.Packet(cv2.imencode(".jpg", np.zeros((16, 16, 3), np.uint8))[1].tobytes())
        packet.stream, packet.pts, packet.dts, packet.time_base = stream, 0, 0, stream.time_base
        return [packet]

    return any(kind == "video" and flags & av.stream.Disposition.attached_pic for kind, flags in _read_back(fmt, cover))


def _read_back(fmt: str, add) -> list[tuple[str, int]]:
    """(type, disposition) of each stream of a tiny ``fmt`` file (one frame of its default video codec, in
    the pixel format ``encode_settings`` picks, and what ``add(container)`` adds, muxing the packets it
    returns), read back; empty when the muxer refuses it (or this PyAV has no such encoder)."""
    buffer = io.BytesIO()
    try:
        with av.open(buffer, mode="w", format=fmt) as probe:
            settings = encode_settings(av.codec.Codec(probe.default_video_codec, "w").name)
            stream = probe.add_stream(settings.codec, rate=1)
            stream.width, stream.height, stream.pix_fmt = 16, 16, settings.pix_fmt
            extra = add(probe) or []
            frame = av.VideoFrame(16, 16, stream.pix_fmt)
            frame.pts = 0
            for packet in [*extra, *stream.encode(frame), *stream.encode(None)]:
                probe.mux(packet)
        buffer.seek(0)
        with av.open(buffer, format=fmt) as back:
            return [(s.type, int(s.disposition)) for s in back.streams]
    except (av.FFmpegError, ValueError, VideoEncodeError):
        return []
