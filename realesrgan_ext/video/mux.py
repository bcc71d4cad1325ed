"""Muxing the output: the encoded video segments joined into one stream, beside the input's audio and subtitles.

The segments' packets are copied, not re-encoded: every segment starts with a key frame and was
encoded with the same settings, so they join into one stream. Audio and subtitle packets are copied
from the input where the output container holds their codec; audio it does not hold is
re-encoded to the container's default audio codec; text subtitles it does not hold are converted
to a text format it does (SRT / ASS to MP4's mov_text, to WebM's WebVTT); bitmap subtitles it does not
hold (PGS, DVD) are left out, with a note. Packets of all streams are written in time order, a few
at a time (bounded memory).
What describes the content comes along: the container's tags (title...) and chapters, each stream's
tags (language, title) and disposition (default, forced, commentary...), and Matroska attachments
(the fonts an ASS subtitle is drawn with), where the output container holds them.
"""

from __future__ import annotations

import heapq
import io
import mimetypes
from collections.abc import Iterator, Mapping
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

from realesrgan_ext.video.containers import holds_attachments, holds_cover_art, is_text_subtitle, text_subtitle_codec
from realesrgan_ext.video.encoder import is_rgb
from realesrgan_ext.video.segments import WorkFolder
from realesrgan_ext.video.source import VideoInfo, is_cover_art, main_video_stream, open_input

COVER_ART_KEY = Fraction(-(10**9))  # the muxing order of a cover picture: before any timed packet
# Tags a muxer writes itself, or that describe the input's encoding rather than its content (lower case;
# mkvmerge's "_STATISTICS_*" tags too).
ENCODING_TAGS = frozenset({"encoder", "duration", "number_of_frames", "number_of_bytes", "bps", "major_brand",
                           "minor_version", "compatible_brands"})


def content_tags(metadata: Mapping[str, str]) -> dict[str, str]:
    """``metadata`` without the tags that describe the input's encoding (``ENCODING_TAGS``)."""
    return {k: v for k, v in metadata.items()
            if k.lower() not in ENCODING_TAGS and not k.lower().startswith("_statistics")}


def mux_output(target: Path, fmt: str, work: WorkFolder, info: VideoInfo) -> list[str]:
    """Write ``target`` (format ``fmt``): the video packets of ``work``'s segments in order, with the
    input's audio / subtitle streams, rotation, colour tags, tags, chapters and attachments. Returns notes
    on what was not copied as is."""
    notes: list[str] = []
    with av.open(str(target), mode="w", format=fmt) as out, open_input(info.path) as source:
        first = av.open(str(work.files()[0]))
        try:
            video = _video_stream(out, first.streams.video[0], info)
        finally:
            first.close()
        _copy_description(main_video_stream(source, info.path), video)
        out.metadata.update(content_tags(source.metadata))
        out.set_chapters(source.chapters())  # formats without chapters (AVI) leave them out
        copies = _other_streams(out, fmt, source, info, notes)
        for index, (stream, _) in copies.items():
            _copy_description(source.streams[index], stream)
        _attachments(out, fmt, source, notes)
        streams = [_video_packets(work, video, info.time_base), _source_packets(source, copies)]
        for _, packet in heapq.merge(*streams, key=lambda item: item[0]):
            out.mux(packet)
        for _, (stream, encoder) in copies.items():
            if encoder == "audio":
                out.mux(stream.encode(None))
    return notes


# FFmpeg's default layout for a channel count: an encoder will not open with an unordered one ('1 channels')
DEFAULT_LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "4.0", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}


def _named_layout(layout: av.AudioLayout) -> str:
    return DEFAULT_LAYOUTS.get(layout.nb_channels, layout.name) if "channels" in layout.name else layout.name


def _video_stream(out, template, info: VideoInfo):
    stream = out.add_stream_from_template(template)
    stream.time_base = info.time_base
    context, colour = stream.codec_context, info.colour  # the segment container does not keep the colour tags
    context.color_primaries, context.color_trc, context.color_range = colour.primaries, colour.transfer, colour.range
    context.colorspace = template.codec_context.colorspace or (0 if is_rgb(template.codec_context.pix_fmt)
                                                               else colour.space)
    if info.sample_aspect_ratio:
        stream.sample_aspect_ratio = info.sample_aspect_ratio  # the container's display size
    if info.average_rate:
        context.framerate = info.average_rate  # Matroska's default frame duration; players show it as the fps
    if info.rotation:
        stream.set_display_rotation(info.rotation)
    return stream


def _other_streams(out, fmt: str, source, info: VideoInfo, notes: list[str]) -> dict[int, tuple]:
    """Output streams for the input's audio / subtitles / cover art: {input index: (output stream, None when
    its packets are copied, else what is re-encoded: "audio" or "subtitle")}."""
    supported = out.supported_codecs
    streams: dict[int, tuple] = {}
    for index in info.copied_streams:
        template = source.streams[index]
        codec = template.codec_context.name
        if is_cover_art(template) and not holds_cover_art(fmt):
            if holds_attachments(fmt):  # Matroska keeps a cover as an attachment, and shows it as a cover
                out.add_attachment(*_cover_attachment(info.path, index, template.metadata))
            else:
                notes.append(f"cover art stream {index} ({codec}) left out: {out.format.name} keeps no cover "
                             "picture")
        elif codec in supported and not _pcm_in_mp4(fmt, codec):
            streams[index] = (out.add_stream_from_template(template), None)
        elif template.type == "audio" and out.default_audio_codec not in (None, "none"):
            encoder = out.add_stream(out.default_audio_codec, rate=template.codec_context.sample_rate,
                                     layout=_named_layout(template.codec_context.layout))
            formats = av.codec.Codec(out.default_audio_codec, "w").audio_formats
            if formats:
                encoder.format = formats[0].name  # PyAV converts the decoded samples to it
            streams[index] = (encoder, "audio")
            why = (f"{out.format.name} does not hold {codec}" if codec not in supported
                   else "browsers and QuickTime play no PCM in MP4 (.mov or .mkv keep it)")
            notes.append(f"audio stream {index} ({codec}) re-encoded to {out.default_audio_codec}: {why}")
        elif template.type == "subtitle" and is_text_subtitle(codec, "r") and (text := text_subtitle_codec(out)):
            template.codec_context.open()  # its decoder makes the ASS header the encoder starts from
            encoder = out.add_stream(text)
            encoder.codec_context.subtitle_header = template.codec_context.subtitle_header
            encoder.time_base = template.time_base
            streams[index] = (encoder, "subtitle")
            notes.append(f"subtitle stream {index} ({codec}) converted to {text}: {out.format.name} does not hold "
                         f"{codec}")
        else:
            notes.append(f"{template.type} stream {index} ({codec}) left out: {out.format.name} does not hold "
                         f"{codec} (use .mkv to keep it)")
    return streams


def _pcm_in_mp4(fmt: str, codec: str) -> bool:
    """PCM audio bound for MP4: FFmpeg writes it (as ISO 23003-5 'ipcm'), but browsers and QuickTime do
    not play it, so it is re-encoded like audio MP4 does not hold."""
    return fmt == "mp4" and codec.startswith("pcm_")


def _cover_attachment(path: Path, index: int, metadata: Mapping[str, str]) -> tuple[str, str, bytes]:
    """(file name, MIME type, bytes) of the cover picture in stream ``index`` of ``path`` (read apart from
    the muxing pass): its own name where it has one, else ``cover`` with its image format's suffix."""
    with open_input(path) as again:
        data = next(bytes(p) for p in again.demux(again.streams[index]) if p.size)
    try:
        image_format = Image.open(io.BytesIO(data)).format or ""
    except OSError:
        image_format = ""
    mime = metadata.get("mimetype") or Image.MIME.get(image_format, "application/octet-stream")
    return metadata.get("filename") or f"cover{mimetypes.guess_extension(mime) or '.bin'}", mime, data


def _copy_description(source_stream, stream) -> None:
    """A stream's content tags (language, title) and disposition (default, forced...) onto its copy."""
    stream.metadata.update(content_tags(source_stream.metadata))
    stream.disposition = source_stream.disposition


def _attachments(out, fmt: str, source, notes: list[str]) -> None:
    """The input's attachments (Matroska: fonts, cover art) where the output format holds them."""
    attachments = [s for s in source.streams if s.type == "attachment"]
    if attachments and not holds_attachments(fmt):
        names = ", ".join(s.name or str(s.index) for s in attachments)
        notes.append(f"{len(attachments)} attachment(s) left out ({names}): {out.format.name} holds none "
                     "(use .mkv to keep them)")
        return
    for stream in attachments:
        out.add_attachment(stream.name or f"attachment{stream.index}", stream.mimetype or "application/octet-stream",
                           bytes(stream.data))


def decode_times(pts: np.ndarray) -> np.ndarray:
    """Decoding times for packets with presentation times ``pts`` (in decoding order): the sorted
    presentation times delayed by the stream's reorder depth, so they rise strictly and never pass a
    packet's pts, one frame duration apart as a single encoder's would be (segments encoded apart do
    not all have the same B-frame delay, and MP4 derives each frame's duration from them)."""
    if len(pts) == 0:
        return pts
    order = np.argsort(pts, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(pts))
    delay = int(max(0, np.max(np.arange(len(pts)) - rank)))
    ordered = pts[order]
    step = int(ordered[1] - ordered[0]) if len(pts) > 1 and ordered[1] > ordered[0] else 1
    lead = ordered[0] - step * np.arange(delay, 0, -1)
    return np.concatenate([lead, ordered[: len(pts) - delay]])


def _video_packets(work: WorkFolder, stream, time_base: Fraction) -> Iterator[tuple[Fraction, av.Packet]]:
    """The segments' video packets in order, with their recorded pts and ``decode_times``, keyed by decoding time."""
    pts = np.concatenate([np.asarray([p for p, _ in work.stamps(s)], np.int64) for s in work.segments])
    dts = decode_times(pts)
    index = 0
    for segment in work.segments:
        with av.open(str(work.path / segment.file)) as container:
            for packet in container.demux(container.streams.video[0]):
                if packet.size == 0:
                    continue
                if packet.duration:
                    packet.duration = round(Fraction(packet.duration) * packet.time_base / time_base)
                packet.pts, packet.dts, packet.time_base = int(pts[index]), int(dts[index]), time_base
                packet.stream = stream
                index += 1
                yield packet.dts * time_base, packet


def _source_packets(source, copies: dict[int, tuple]) -> Iterator[tuple[Fraction, av.Packet]]:
    """The input's packets of the copied streams (decoded and re-encoded where needed), keyed by time."""
    if not copies:
        return
    chosen = [source.streams[i] for i in copies]
    for packet in source.demux(chosen):
        stream, encoder = copies[packet.stream.index]
        if encoder is None:
            if packet.size and is_cover_art(packet.stream):  # its one picture, untimed: before everything
                packet.pts = packet.dts = 0
                packet.stream = stream
                yield COVER_ART_KEY, packet
                continue
            if packet.size == 0 or packet.dts is None:
                continue
            packet.stream = stream
            yield packet.dts * packet.time_base, packet
            continue
        if encoder == "subtitle":
            if packet.size and packet.pts is not None:
                yield packet.pts * packet.time_base, _converted_subtitle(packet, stream)
            continue
        for frame in packet.decode():
            frame.pts = None  # the encoder numbers samples itself
            for encoded in stream.encode(frame):
                yield (encoded.dts or 0) * encoded.time_base, encoded


def _converted_subtitle(packet: av.Packet, stream) -> av.Packet:
    """A text subtitle packet decoded and encoded for ``stream``, at its own time and duration."""
    converted = stream.codec_context.encode_subtitle(packet.stream.codec_context.decode2(packet))
    converted.stream, converted.time_base = stream, packet.time_base
    converted.pts = converted.dts = packet.pts
    converted.duration = packet.duration
    return converted
