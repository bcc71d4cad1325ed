"""Deinterlacing: a frame whose two fields were taken apart in time (TV, DVD) as one picture, before the network.

The networks were trained on progressive pictures: an interlaced frame upscaled as it is magnifies
the comb its fields make where anything moves. FFmpeg's ``estdif`` (edge slope tracing) rebuilds a
frame from its first field, interpolating along edges, from that frame alone: a frame comes out the
same whether decoded with the whole video or with its segment (``ray_segments``, ``--resume``).

Modes: ``auto`` deinterlaces the frames the stream flags as interlaced and leaves the others
untouched; ``on`` every frame (a stream that does not flag its fields); ``off`` none.
"""

from __future__ import annotations

import av

from realesrgan_ext.video.frame_graph import through_graph

MODES = ("auto", "on", "off")
ESTDIF = "mode=frame:parity=auto:deint=all"  # one frame out per frame in, field order from the frame


def check_mode(mode: str) -> str:
    """``mode`` when it is one of ``MODES``, else a ``ValueError`` saying which are."""
    if mode not in MODES:
        raise ValueError(f"deinterlace must be one of {MODES}, got {mode!r}")
    return mode


def wants_deinterlacing(frame: av.VideoFrame, mode: str) -> bool:
    """Whether ``mode`` deinterlaces ``frame``."""
    return check_mode(mode) == "on" or (mode == "auto" and bool(frame.interlaced_frame))


def deinterlace(frame: av.VideoFrame) -> av.VideoFrame:
    """``frame`` rebuilt from its first field by FFmpeg's estdif (its pixel format, or the planar twin of
    a packed RGB one); the caller keeps the input frame's timestamp (estdif counts in half frames)."""
    def estdif(graph, source):
        filtered = graph.add("estdif", ESTDIF)
        source.link_to(filtered)
        return filtered

    return through_graph(frame, estdif)
