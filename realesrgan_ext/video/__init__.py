"""Video upscaling on PyAV (its wheels carry FFmpeg): read, upscale with the image engine, encode, mux.

    from realesrgan_ext.video import encode_settings, probe_video, upscale_video

    info = probe_video("clip.mp4")                       # VideoInfo; VideoInputError names a bad file
    result = upscale_video(info, "clip_x4.mp4", upscaler, encode_settings(crf=18), resume=True)

``source`` reads (metadata and RGB frames), ``encoder`` encodes segments, ``segments`` keeps the
resumable work folder, ``mux`` joins the segments with the input's audio and subtitles, and
``pipeline`` runs them together. ``scripts/inference_video.py`` is the command-line front end.
"""

from realesrgan_ext.video.containers import default_codec
from realesrgan_ext.video.encoder import (
    DEFAULT_CODEC,
    DEFAULT_CRF,
    EncodeSettings,
    VideoEncodeError,
    crf_encoders,
    encode_settings,
)
from realesrgan_ext.video.pipeline import (
    DEFAULT_BATCH,
    DEFAULT_SEGMENT_FRAMES,
    VideoResult,
    temporary_output,
    upscale_video,
)
from realesrgan_ext.video.segments import work_folder_for
from realesrgan_ext.video.source import SourceFrame, VideoInfo, VideoInputError, probe_video, read_frames

__all__ = [
    "DEFAULT_BATCH", "DEFAULT_CODEC", "DEFAULT_CRF", "DEFAULT_SEGMENT_FRAMES", "EncodeSettings", "SourceFrame",
    "VideoEncodeError", "VideoInfo", "VideoInputError", "VideoResult", "crf_encoders", "default_codec",
    "encode_settings",
    "probe_video", "read_frames", "temporary_output", "upscale_video", "work_folder_for",
]
