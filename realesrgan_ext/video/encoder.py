"""Encoding upscaled RGB frames with PyAV: the codec settings, and one segment file at a time.

Default: H.264 (``libx264``, which PyAV's wheel carries) at CRF 18 in yuv420p, the colorspace and
range of the input (so colours convert back the way they were read); yuv420p10le for an input of
more than 8 bits where the encoder takes it. ``--lossless``: FFV1 in packed RGB (``bgr0``; planar
16-bit ``gbrp16le`` for a deeper input), which keeps every upscaled pixel exactly. A missing encoder is a
``VideoEncodeError`` saying which encoders this PyAV build has.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from realesrgan_ext.video.frame_graph import through_graph
from realesrgan_ext.video.source import DEEP_RGB_FORMAT, RGB_FORMAT, ColourTags, VideoInfo

DEFAULT_CODEC = "libx264"
DEFAULT_CRF = 18
DEFAULT_PIX_FMT = "yuv420p"
LOSSLESS_CODEC, LOSSLESS_PIX_FMT, DEEP_LOSSLESS_PIX_FMT = "ffv1", "bgr0", "gbrp16le"
PALETTE_PIX_FMT = "pal8"  # GIF: 256 colours chosen per frame (palettegen), not a fixed 3-3-2 bit cube
PALETTE_FILTERS = ("palettegen", "stats_mode=single:reserve_transparent=0"), ("paletteuse", "new=1")
DEEP_SUFFIX = "10le"  # an 8-bit format's 10-bit twin: yuv420p -> yuv420p10le
# Colorspaces swscale converts with (FFmpeg's AVColorSpace values it understands); others use its default (BT.601).
SWS_COLORSPACES = frozenset({1, 4, 5, 6, 7, 9, 10})
SEGMENT_FORMAT = "nut"  # the work folder's segment files: FFmpeg's own container, any codec, exact time bases


class VideoEncodeError(RuntimeError):
    """The output cannot be encoded as asked (a missing encoder, a size the pixel format cannot hold)."""


@dataclass(frozen=True)
class EncodeSettings:
    """How the video stream is encoded: codec, pixel format and the encoder's private options."""

    codec: str = DEFAULT_CODEC
    pix_fmt: str = DEFAULT_PIX_FMT
    options: tuple[tuple[str, str], ...] = (("crf", str(DEFAULT_CRF)),)

    @property
    def lossless(self) -> bool:
        return self.codec == LOSSLESS_CODEC

    def describe(self) -> str:
        opts = " ".join(f"{k}={v}" for k, v in self.options)
        return f"{self.codec} {self.pix_fmt}{' ' + opts if opts else ''}"


def encode_settings(codec: str | None = None, crf: int | None = None, lossless: bool = False,
                    bit_depth: int = 8) -> EncodeSettings:
    """Settings for the CLI's ``--codec`` / ``--crf`` / ``--lossless``; checks the encoder exists here.

    ``crf`` applies to encoders that take one (x264, x265, VP9, SVT-AV1); others get their defaults.
    ``bit_depth``: the input's bits per sample; over 8, the output keeps 10 bits (16 when lossless)
    where the encoder takes them.
    """
    if lossless:
        if codec not in (None, LOSSLESS_CODEC) or crf is not None:
            raise VideoEncodeError("--lossless is FFV1 (exact RGB); it takes no --codec or --crf")
        _require_encoder(LOSSLESS_CODEC)
        return EncodeSettings(LOSSLESS_CODEC, DEEP_LOSSLESS_PIX_FMT if bit_depth > 8 else LOSSLESS_PIX_FMT,
                              (("level", "3"), ("slicecrc", "1")))
    codec = codec or DEFAULT_CODEC
    encoder = _require_encoder(codec)
    formats = [f.name for f in encoder.video_formats or ()]
    pix_fmt = next((f for f in (DEFAULT_PIX_FMT, PALETTE_PIX_FMT) if f in formats), formats[0] if formats else
                   DEFAULT_PIX_FMT)
    if bit_depth > 8 and pix_fmt + DEEP_SUFFIX in formats:
        pix_fmt += DEEP_SUFFIX
    if crf is not None and crf < 0:
        raise VideoEncodeError(f"--crf must be >= 0, got {crf}")
    takes_crf = _takes_crf(codec)
    crf = DEFAULT_CRF if crf is None else crf
    return EncodeSettings(codec, pix_fmt, (("crf", str(crf)),) if takes_crf else ())


def check_output_size(settings: EncodeSettings, width: int, height: int, source: Path | None = None) -> None:
    """Refuse a size the pixel format cannot hold (yuv420p: even width and height); names ``source``."""
    fmt = av.VideoFormat(settings.pix_fmt)
    step_w, step_h = _subsampling(fmt)
    if width % step_w or height % step_h:
        raise VideoEncodeError(
            f"{str(source) + ': ' if source else ''}the output would be {width}x{height}, and {settings.pix_fmt} "
            f"({settings.codec}) needs a width that is a "
            f"multiple of {step_w} and a height that is a multiple of {step_h}; choose an --outscale that gives "
            "such a size, or --lossless")


def encode_frames(path: Path, frames: Iterable[tuple[np.ndarray, int | None]], settings: EncodeSettings,
                  info: VideoInfo) -> list[tuple[int, int]]:
    """Encode RGB frames ``(pixels, pts)`` (pts in the time base of ``info``, the input) into a new
    video-only file ``path``, with the input's frame rate, colour tags and sample aspect ratio.

    Returns each packet's ``(pts, dts)`` in ``time_base``, in file order: the segment container
    (NUT) keeps pts but not always dts, and the final muxer needs both. The file is whole when this
    returns; a failure leaves it partial.
    """
    stamps: list[tuple[int, int]] = []
    time_base, colour = info.time_base, info.colour
    with av.open(str(path), mode="w", format=SEGMENT_FORMAT, options={"avoid_negative_ts": "disabled"}) as out:
        stream = None

        def mux(packets: list[av.Packet]) -> None:
            for packet in packets:
                if packet.size:
                    stamps.append((_in(packet.pts, packet.time_base, time_base),
                                   _in(packet.dts, packet.time_base, time_base)))
                out.mux(packet)

        for pixels, pts in frames:
            if stream is None:
                stream = _video_stream(out, settings, pixels.shape[1], pixels.shape[0], info)
            frame = to_encoder_frame(pixels, settings, colour)
            frame.pts, frame.time_base = pts, time_base
            mux(stream.encode(frame))
        if stream is not None:
            mux(stream.encode(None))
    return stamps


def _in(value: int | None, source: Fraction | None, target: Fraction) -> int:
    """``value`` (in ``source`` units) in ``target`` units, exactly when the bases allow it."""
    if value is None:
        raise VideoEncodeError("the encoder produced a packet without a timestamp")
    return value if source in (None, target) else round(Fraction(value) * source / target)


def to_encoder_frame(pixels: np.ndarray, settings: EncodeSettings, colour: ColourTags) -> av.VideoFrame:
    """RGB pixels as a frame in the encoder's pixel format, converted with the input's colorspace and range."""
    source = DEEP_RGB_FORMAT if pixels.dtype == np.uint16 else RGB_FORMAT
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format=source)
    if settings.pix_fmt.startswith(("yuv", "nv")):
        space = colour.space if colour.space in SWS_COLORSPACES else None
        frame = frame.reformat(format=settings.pix_fmt, dst_colorspace=space, dst_color_range=colour.range or None)
    elif settings.pix_fmt == PALETTE_PIX_FMT:
        frame = palettized(frame.reformat(format=RGB_FORMAT))
    else:
        frame = frame.reformat(format=settings.pix_fmt)
    _tag(frame, colour, settings)
    return frame


def palettized(frame: av.VideoFrame) -> av.VideoFrame:
    """An RGB frame in 256 colours chosen for it (FFmpeg's palettegen + paletteuse, as its GIF guides do):
    34 dB against the RGB on a photo, where the fixed 3-3-2 bit cube (rgb8) gives 22 dB."""
    def palette(graph, source):
        (gen_name, gen_args), (use_name, use_args) = PALETTE_FILTERS
        split, generate, use = graph.add("split"), graph.add(gen_name, gen_args), graph.add(use_name, use_args)
        source.link_to(split)
        split.link_to(generate, 0, 0)
        split.link_to(use, 1, 0)
        generate.link_to(use, 0, 1)  # the palette is paletteuse's second input
        return use

    frame.pts = 0  # a frame made here from pixels has none; the buffer source wants one
    return through_graph(frame, palette)


def _video_stream(container, settings: EncodeSettings, width: int, height: int, info: VideoInfo):
    stream = container.add_stream(settings.codec, rate=info.average_rate, options=dict(settings.options))
    stream.width, stream.height, stream.pix_fmt = width, height, settings.pix_fmt
    stream.time_base = stream.codec_context.time_base = info.time_base
    context, colour = stream.codec_context, info.colour
    if info.sample_aspect_ratio:  # non-square pixels (an anamorphic DVD): the bitstream says so too
        context.sample_aspect_ratio = info.sample_aspect_ratio
    context.color_primaries, context.color_trc = colour.primaries, colour.transfer
    context.colorspace = 0 if is_rgb(settings.pix_fmt) else colour.space
    context.color_range = colour.range
    return stream


def _tag(frame: av.VideoFrame, colour: ColourTags, settings: EncodeSettings) -> None:
    frame.color_primaries, frame.color_trc = colour.primaries, colour.transfer
    frame.colorspace = 0 if is_rgb(settings.pix_fmt) else colour.space
    frame.color_range = colour.range


def is_rgb(pix_fmt: str) -> bool:
    """An RGB pixel format (bgr0, gbrp16le, GIF's rgb8...): tagged colorspace 0, no YUV matrix."""
    return av.VideoFormat(pix_fmt).is_rgb


def _subsampling(fmt: av.VideoFormat) -> tuple[int, int]:
    """(horizontal, vertical) chroma step of a pixel format: 2, 2 for yuv420p, 1, 1 for RGB."""
    width = height = 64
    return width // max(fmt.chroma_width(width), 1), height // max(fmt.chroma_height(height), 1)


def _require_encoder(name: str) -> av.codec.Codec:
    try:
        codec = av.codec.Codec(name, "w")
    except (av.codec.codec.UnknownCodecError, ValueError) as err:
        raise VideoEncodeError(f"this PyAV build has no {name!r} encoder; video encoders with a CRF here: "
                               f"{', '.join(crf_encoders())} (pass one with --codec)") from err
    if codec.type != "video":
        raise VideoEncodeError(f"{name!r} is a {codec.type} encoder, not a video one")
    return codec


def crf_encoders() -> list[str]:
    """The video encoders of this PyAV build that take a CRF (x264, x265, VP9, SVT-AV1...), sorted."""
    found = []
    for name in av.codecs_available:
        try:
            codec = av.codec.Codec(name, "w")
        except Exception:  # noqa: BLE001  (a decoder-only name)
            continue
        if codec.type == "video" and _takes_crf(name):
            found.append(name)
    return sorted(found)


def _takes_crf(name: str) -> bool:
    context = av.codec.CodecContext.create(name, "w")
    return any(option.name == "crf" for option in context.supported_options.private)
