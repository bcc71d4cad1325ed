"""Short test clips with sound, made from scikit-image's sample photos (tests and the video benchmark).

``make_sample_clip`` pans and zooms across a photo (so consecutive frames differ the way video
frames do) and adds a sine tone as AAC: nothing is downloaded and any size or length is quick to make.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

PHOTOS = ("astronaut", "chelsea", "coffee")  # skimage.data RGB photos
TONE_HZ = 440.0
AUDIO_RATE = 48000
AUDIO_FRAME = 1024  # samples per AAC frame


def panned_frames(count: int, width: int, height: int, photo: str = "astronaut") -> np.ndarray:
    """``count`` RGB frames (count x height x width x 3 uint8): a crop of ``photo`` panning right and zooming in."""
    from skimage import data

    source = getattr(data, photo)()
    src_h, src_w = source.shape[:2]
    frames = np.empty((count, height, width, 3), np.uint8)
    for i in range(count):
        t = i / max(count - 1, 1)
        zoom = 1.0 - 0.3 * t  # the crop shrinks to 70 %: a zoom in
        crop_h = min(src_h, int(src_w * zoom * height / width))
        crop_w = int(crop_h * width / height)
        x0 = int((src_w - crop_w) * t)
        y0 = (src_h - crop_h) // 2
        crop = source[y0: y0 + crop_h, x0: x0 + crop_w]
        frames[i] = cv2.resize(crop, (width, height), interpolation=cv2.INTER_AREA)
    return frames


def make_sample_clip(path: str | Path, frames: int = 6, width: int = 64, height: int = 48, fps: int = 12,
                     audio: bool = True, photo: str = "astronaut", codec: str = "libx264",
                     frame_times: list[float] | None = None, rotation: int = 0, subtitle: str | None = None,
                     colorspace: int | None = None, audio_codec: str = "aac",
                     sample_aspect_ratio: Fraction | None = None) -> Path:
    """Write a clip of ``frames`` panned frames to ``path`` (format from its suffix) and return the path.

    ``frame_times``: each frame's time in seconds (a variable frame rate); default ``i / fps``.
    ``rotation``: display-matrix rotation in degrees. ``subtitle``: one text subtitle over the clip
    (.mkv). ``colorspace``: FFmpeg's colour matrix to tag and convert with (1 = BT.709).
    ``audio_codec``: the tone's encoder (PyAV converts the float samples to its sample format).
    ``sample_aspect_ratio``: non-square pixels (32/27: an anamorphic 16:9 NTSC DVD).
    """
    path = Path(path)
    pixels = panned_frames(frames, width, height, photo)
    time_base = Fraction(1, 90000) if frame_times is not None else Fraction(1, fps)
    times = frame_times if frame_times is not None else [i / fps for i in range(frames)]
    with av.open(str(path), mode="w") as container:
        video = container.add_stream(codec, rate=fps)
        video.width, video.height = width, height
        video.pix_fmt = "yuv420p" if codec != "ffv1" else "bgr0"
        video.time_base = video.codec_context.time_base = time_base
        if colorspace is not None:
            video.codec_context.colorspace, video.codec_context.color_range = colorspace, 1
        if rotation:
            video.set_display_rotation(rotation)
        if sample_aspect_ratio:
            video.codec_context.sample_aspect_ratio = sample_aspect_ratio
        sound = container.add_stream(audio_codec, rate=AUDIO_RATE, layout="mono") if audio else None
        text = container.add_mux_stream("subrip", time_base=Fraction(1, 1000)) if subtitle is not None else None
        for image, seconds in zip(pixels, times, strict=True):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            if colorspace is not None:
                frame = frame.reformat(format=video.pix_fmt, dst_colorspace=colorspace, dst_color_range=1)
                frame.colorspace, frame.color_range = colorspace, 1
            frame.pts = round(seconds / time_base)
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        if sound is not None:
            _write_tone(container, sound, times[-1] + 1 / fps)
        if text is not None:
            _write_subtitle(container, text, subtitle, times[-1] + 1 / fps)
    return path


def _write_tone(container, stream, seconds: float) -> None:
    total = int(seconds * AUDIO_RATE)
    t = np.arange(total, dtype=np.float32) / AUDIO_RATE
    samples = (0.3 * np.sin(2 * np.pi * TONE_HZ * t)).astype(np.float32)
    for start in range(0, total, AUDIO_FRAME):
        chunk = samples[None, start: start + AUDIO_FRAME]
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = AUDIO_RATE, start
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))


def _write_subtitle(container, stream, text: str, seconds: float) -> None:
    packet = av.Packet(text.encode())
    packet.stream = stream
    packet.time_base = Fraction(1, 1000)
    packet.pts = packet.dts = 0
    packet.duration = int(seconds * 1000)
    container.mux(packet)
