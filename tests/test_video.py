"""Video upscaling (realesrgan_ext.video, scripts/inference_video.py) on tiny clips made here with sound."""

import re
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch

from realesrgan_ext.inference import Upscaler, load_model
from realesrgan_ext.video import (
    VideoInputError,
    default_codec,
    encode_settings,
    probe_video,
    read_frames,
    upscale_video,
    work_folder_for,
)
from realesrgan_ext.video.deinterlace import deinterlace
from realesrgan_ext.video.mux import decode_times
from realesrgan_ext.video.pipeline import temporary_output
from realesrgan_ext.video.sample_clip import make_sample_clip, panned_frames
from realesrgan_ext.video.source import to_rgb
from tests.helpers import load_script, tiny_rrdb, write_10_bit_ramp

REPO = Path(__file__).resolve().parents[1]
TILE, TILE_PAD = 16, 4  # smaller than the 32x24 frames: the tiled, cross-faded path runs, in batches


def load_cli():
    return load_script("inference_video")


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "tiny_x4.pth"
    torch.save({"params_ema": tiny_rrdb(4).state_dict()}, path)
    return path


def decoded(path):
    """(RGB frames, pts, time base, stream types, rotation, average rate) of a video file."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        return ([f.to_ndarray(format="rgb24") for f in frames], [f.pts for f in frames], stream.time_base,
                sorted(s.type for s in container.streams), frames[0].rotation, stream.average_rate)


def image_cli_frames(model_path, clip):
    """What the image path (Upscaler, tile TILE, PyTorch) makes of each frame of ``clip``."""
    upscaler = Upscaler(load_model(model_path), tile=TILE, tile_pad=TILE_PAD, precision="fp32", device="cpu")
    return [upscaler.upscale(frame.rgb) for frame in read_frames(probe_video(clip))]


def test_batches_equal_single_images(model_path, one_torch_thread):
    upscaler = Upscaler(load_model(model_path), tile=TILE, tile_pad=TILE_PAD, precision="fp32", device="cpu")
    frames = np.random.default_rng(0).integers(0, 256, (3, 20, 36, 3), dtype=np.uint8)
    batch = upscaler.upscale_batch(frames)
    assert batch.shape == (3, 80, 144, 3)
    for image, result in zip(frames, batch, strict=True):  # up to a batch's rounding: 1 level, rarely
        difference = np.abs(result.astype(int) - upscaler.upscale(image))
        assert difference.max() <= 1 and np.mean(difference > 0) < 1e-3
    resized = upscaler.upscale_batch(frames, outscale=1.5)
    assert np.abs(resized[1].astype(int) - upscaler.upscale(frames[1], outscale=1.5)).max() <= 1


def test_lossless_frames_equal_the_image_path_with_sound_and_timing(tmp_path, model_path, one_torch_thread):
    clip = make_sample_clip(tmp_path / "clip.mp4", frames=7, width=32, height=24, fps=12)
    out = tmp_path / "up.mkv"
    argv = ["-i", str(clip), "-o", str(out), "-m", str(model_path), "--backend", "pytorch", "--tile", str(TILE),
            "--tile-pad", str(TILE_PAD),
            "--lossless", "--segment-frames", "4", "--quiet"]
    assert load_cli().main(argv) == 0  # one frame per network call on a CPU: exactly the image path
    frames, pts, time_base, types, _, rate = decoded(out)
    _, in_pts, in_time_base, in_types, _, in_rate = decoded(clip)
    assert len(frames) == 7 and types == in_types == ["audio", "video"]
    # each frame at its input time, to MKV's millisecond; MKV holds no negative times, so all streams
    # may start later by the AAC priming delay (about 21 ms), as FFmpeg's own remux does
    times, in_times = [float(p * time_base) for p in pts], [float(p * in_time_base) for p in in_pts]
    assert [t - times[0] for t in times] == pytest.approx([t - in_times[0] for t in in_times], abs=1e-3)
    assert 0 <= times[0] < 0.05
    assert rate == in_rate == 12
    expected = image_cli_frames(model_path, clip)
    for got, want in zip(frames, expected, strict=True):
        np.testing.assert_array_equal(got, want)
    assert load_cli().main([*argv, "-o", str(tmp_path / "batched.mkv"), "--batch", "3"]) == 0
    for got, want in zip(decoded(tmp_path / "batched.mkv")[0], expected, strict=True):
        assert np.abs(got.astype(int) - want).max() <= 1  # batches of 3: up to a batch's rounding
    with av.open(str(out)) as up, av.open(str(clip)) as source:
        assert abs(up.duration - source.duration) <= 0.05 * av.time_base
        assert up.streams.audio[0].codec_context.name == "aac"
    assert not work_folder_for(out).exists() and not temporary_output(out).exists()


def test_blend_reuses_the_image_cli_blending(tmp_path, model_path, one_torch_thread):
    other = tmp_path / "other.pth"
    torch.save({"params_ema": tiny_rrdb(4, seed=1).state_dict()}, other)
    clip = make_sample_clip(tmp_path / "clip.mp4", frames=2, width=32, height=24, audio=False)
    out = tmp_path / "blended.mkv"
    argv = ["-i", str(clip), "-o", str(out), "-m", str(model_path), "--blend", f"{other}:1", "--backend", "pytorch",
            "--tile", str(TILE), "--tile-pad", str(TILE_PAD), "--lossless", "--quiet"]
    assert load_cli().main(argv) == 0
    for got, want in zip(decoded(out)[0], image_cli_frames(other, clip), strict=True):  # alpha 1: all the other
        np.testing.assert_array_equal(got, want)


def test_h264_keeps_variable_frame_rate_rotation_colour_pixel_aspect_and_subtitles(tmp_path, model_path,
                                                                                    one_torch_thread):
    times = [0.0, 0.1, 0.15, 0.4, 0.5]
    clip = make_sample_clip(tmp_path / "vfr.mkv", frames=5, width=32, height=24, frame_times=times,
                            rotation=90, subtitle="hello", colorspace=1, sample_aspect_ratio=Fraction(32, 27))
    info = probe_video(clip)
    upscaler = Upscaler(load_model(model_path), tile=TILE, tile_pad=TILE_PAD, precision="fp32", device="cpu")
    for suffix in (".mkv", ".mp4"):
        out = tmp_path / f"up{suffix}"
        result = upscale_video(info, out, upscaler, encode_settings(), batch=2, segment_frames=2, progress=False)
        frames, pts, time_base, types, rotation, _ = decoded(out)
        assert [float(p * time_base - pts[0] * time_base) for p in pts] == pytest.approx(times)
        assert 0 <= pts[0] * time_base < 0.05
        assert frames[0].shape == (96, 128, 3) and rotation == 90
        probed = probe_video(out)
        assert (probed.colour.space, probed.colour.range, probed.pix_fmt) == (1, 1, "yuv420p")
        assert probed.sample_aspect_ratio == Fraction(32, 27)  # an anamorphic picture stays 16:9 on screen
        with av.open(str(out)) as container:
            context = container.streams.video[0].codec_context
            next(container.decode(video=0))
            assert context.sample_aspect_ratio == Fraction(32, 27)  # in the H.264 stream too
        assert types == ["audio", "subtitle", "video"]
        with av.open(str(out)) as container:
            subtitles = container.streams.subtitles[0]
            packet = next(p for p in container.demux(subtitles) if p.size)
            text = [rect.ass for rect in subtitles.codec_context.decode2(packet).rects]
            assert text == [b"0,0,Default,,0,0,0,,hello"] and packet.pts * packet.time_base == 0
            codec = subtitles.codec_context.name
        if suffix == ".mkv":
            assert codec == "srt" and not result.notes  # copied as it was
        else:  # MP4 holds no SRT: converted to its own text subtitles, and said so
            assert result.notes == ["subtitle stream 2 (srt) converted to mov_text: mp4 does not hold srt"]


def test_a_10_bit_video_stays_deeper_than_8_bits(tmp_path, model_path, one_torch_thread):
    info = probe_video(write_10_bit_ramp(tmp_path / "deep.mkv"))
    source = [f.rgb for f in read_frames(info)]
    assert info.bit_depth == 10 and source[0].dtype == np.uint16 and len(np.unique(source[0])) > 256
    upscaler = Upscaler(load_model(model_path), tile=TILE, tile_pad=TILE_PAD, precision="fp32", device="cpu")
    lossless = encode_settings(lossless=True, bit_depth=info.bit_depth)
    upscale_video(info, tmp_path / "exact.mkv", upscaler, lossless, progress=False)
    with av.open(str(tmp_path / "exact.mkv")) as container:
        assert container.streams.video[0].codec_context.pix_fmt == "gbrp16le"
        got = [f.to_ndarray(format="rgb48le") for f in container.decode(video=0)]
    for frame, image in zip(source, got, strict=True):
        np.testing.assert_array_equal(image, upscaler.upscale(frame))  # every 16-bit pixel of the image path
    upscale_video(info, tmp_path / "h264.mkv", upscaler, encode_settings(bit_depth=10), progress=False)
    with av.open(str(tmp_path / "h264.mkv")) as container:
        frame = next(container.decode(video=0))
        assert frame.format.name == "yuv420p10le" and len(np.unique(frame.to_ndarray(format="rgb48le"))) > 256


def tagged_copy(clip, path):
    """``clip`` remuxed to ``path`` (.mkv) with a title, two chapters, a language, title and disposition on
    its audio, and a font attachment: what an episode from a Matroska release carries."""
    with av.open(str(clip)) as source, av.open(str(path), "w") as out:
        out.metadata["title"] = "Episode 1"
        streams = {s.index: out.add_stream_from_template(s) for s in source.streams}
        audio = streams[source.streams.audio[0].index]
        audio.metadata.update({"language": "jpn", "title": "Japanese 2.0"})
        audio.disposition = av.stream.Disposition.comment
        out.add_attachment("font.ttf", "application/x-truetype-font", b"\x00\x01\x00\x00 not really a font")
        out.set_chapters([{"id": i + 1, "start": i * 200, "end": (i + 1) * 200, "time_base": Fraction(1, 1000),
                           "metadata": {"title": title}} for i, title in enumerate(("Opening", "Part A"))])
        for packet in source.demux():
            if packet.size:
                packet.stream = streams[packet.stream.index]
                out.mux(packet)
    return path


def test_tags_chapters_dispositions_and_attachments_are_kept(tmp_path, model_path, one_torch_thread):
    clip = tagged_copy(make_sample_clip(tmp_path / "clip.mkv", frames=5, width=32, height=24), tmp_path / "ep.mkv")
    info = probe_video(clip)
    assert info.frames == 0 and info.expected_frames == 5  # Matroska states no count: its duration at its rate
    upscaler = Upscaler(load_model(model_path), tile=TILE, tile_pad=TILE_PAD, precision="fp32", device="cpu")
    for suffix in (".mkv", ".mp4"):
        out = tmp_path / f"up{suffix}"
        result = upscale_video(info, out, upscaler, encode_settings(), progress=False)
        with av.open(str(out)) as container:
            audio = container.streams.audio[0]
            assert container.metadata["title"] == "Episode 1"
            assert [c["metadata"]["title"] for c in container.chapters()] == ["Opening", "Part A"]
            assert audio.metadata["language"] == "jpn" and audio.disposition & av.stream.Disposition.comment
            attachments = [(s.name, bytes(s.data)) for s in container.streams if s.type == "attachment"]
        if suffix == ".mkv":
            assert attachments == [("font.ttf", b"\x00\x01\x00\x00 not really a font")] and not result.notes
        else:  # MP4 holds no attachments: left out, and said so
            assert not attachments and "1 attachment(s) left out (font.ttf): mp4" in result.notes[0]


def cover_picture(out) -> av.Packet:
    """A 64x64 JPEG as ``out``'s cover art: an attached-picture stream, and its one packet to mux once
    every stream is added."""
    cover = out.add_stream("mjpeg", rate=1)
    cover.width, cover.height, cover.pix_fmt = 64, 64, "yuvj420p"
    cover.time_base = Fraction(1, 1000)
    cover.disposition = av.stream.Disposition.attached_pic
    picture = av.Packet(cv2.imencode(".jpg", np.full((64, 64, 3), 200, np.uint8))[1].tobytes())
    picture.stream, picture.pts, picture.dts, picture.time_base = cover, 0, 0, cover.time_base
    return picture


def with_cover_art(clip, path):
    """``clip`` remuxed to ``path`` (.mp4) with a 64x64 JPEG cover picture (an attached picture stream)."""
    with av.open(str(clip)) as source, av.open(str(path), "w") as out:
        picture = cover_picture(out)
        streams = {s.index: out.add_stream_from_template(s) for s in source.streams}
        out.mux(picture)
        for packet in source.demux():
            if packet.size:
                packet.stream = streams[packet.stream.index]
                out.mux(packet)
    return path


def test_cover_art_is_not_the_video_and_is_kept_where_the_container_shows_it(tmp_path, model_path,
                                                                             one_torch_thread):
    clip = with_cover_art(make_sample_clip(tmp_path / "clip.mp4", frames=3, width=32, height=24),
                          tmp_path / "song.mp4")
    info = probe_video(clip)
    assert (info.width, info.height) == (32, 24)  # the moving picture, not the larger cover
    upscaler = Upscaler(load_model(model_path), tile=TILE, tile_pad=TILE_PAD, precision="fp32", device="cpu")
    for suffix in (".mp4", ".mkv", ".mov"):
        result = upscale_video(info, tmp_path / f"up{suffix}", upscaler, encode_settings(), progress=False)
        with av.open(str(tmp_path / f"up{suffix}")) as container:
            video = container.streams.video[0]
            covers = [dict(s.metadata) for s in container.streams.video
                      if s.disposition & av.stream.Disposition.attached_pic]
            assert (video.codec_context.width, sum(1 for _ in container.decode(video))) == (128, 3)
        if suffix == ".mp4":
            assert len(covers) == 1 and not result.notes
        elif suffix == ".mkv":  # Matroska keeps a cover as an attachment, read back as a cover
            assert [c.get("filename") for c in covers] == ["cover.jpg"] and not result.notes
        else:  # MOV keeps none: left out, and said so
            assert not covers and re.match(r"cover art stream \d \(mjpeg\) left out: mov", result.notes[0])
    only_cover = tmp_path / "cover_only.mp4"
    with av.open(str(only_cover), "w") as out:
        out.mux(cover_picture(out))
    with pytest.raises(VideoInputError, match="no video stream \\(it holds cover art\\)"):
        probe_video(only_cover)


def combed_clip(path, frames=4, width=32, height=24):
    """H.264 coded as fields, top first: each frame's odd rows from the next moment of a pan (a comb)."""
    moments = panned_frames(frames + 1, width, height)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25, options={"x264-params": "interlaced=1:tff=1", "qp": "0"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            comb = moments[i].copy()
            comb[1::2] = moments[i + 1][1::2]
            frame = av.VideoFrame.from_ndarray(comb, format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def comb_energy(image: np.ndarray) -> float:
    """How far each row is from the mean of its neighbours: high where fields of two moments alternate."""
    rows = image.astype(float)
    return float(np.mean(np.abs(rows[1:-1] - (rows[:-2] + rows[2:]) / 2)))


def test_interlaced_frames_are_deinterlaced_before_the_network(tmp_path, model_path, one_torch_thread):
    info = probe_video(combed_clip(tmp_path / "tv.mkv"))
    assert info.interlaced and info.deinterlace == "auto" and "interlaced (deinterlace auto)" in info.describe()
    with av.open(str(info.path)) as container:
        decoded_frames = list(container.decode(video=0))
        raw = [to_rgb(f) for f in decoded_frames]
        rebuilt = [to_rgb(deinterlace(f)) for f in decoded_frames]
    assert all(comb_energy(r) < 0.6 * comb_energy(c) for r, c in zip(rebuilt, raw, strict=True))
    upscaler = Upscaler(load_model(model_path), tile=TILE, tile_pad=TILE_PAD, precision="fp32", device="cpu")
    for mode, sources in (("auto", rebuilt), ("on", rebuilt), ("off", raw)):
        out = tmp_path / f"{mode}.mkv"
        upscale_video(replace(info, deinterlace=mode), out, upscaler, encode_settings(lossless=True), progress=False)
        for got, source in zip(decoded(out)[0], sources, strict=True):
            np.testing.assert_array_equal(got, upscaler.upscale(source))
    progressive = probe_video(make_sample_clip(tmp_path / "p.mp4", frames=2, width=32, height=24, audio=False))
    on = [f.rgb for f in read_frames(replace(progressive, deinterlace="on"))]  # forced on a progressive stream
    assert not progressive.interlaced and all(f.shape == (24, 32, 3) for f in on)


def test_audio_the_container_cannot_hold_is_re_encoded(tmp_path, model_path, one_torch_thread):
    clip = make_sample_clip(tmp_path / "u8.mkv", frames=2, width=32, height=24, audio_codec="pcm_u8")
    upscaler = Upscaler(load_model(model_path), tile=TILE, tile_pad=TILE_PAD, precision="fp32", device="cpu")
    result = upscale_video(probe_video(clip), tmp_path / "up.mp4", upscaler, encode_settings(), progress=False)
    assert result.notes == ["audio stream 1 (pcm_u8) re-encoded to aac: mp4 does not hold pcm_u8"]
    with av.open(str(tmp_path / "up.mp4")) as container:
        assert container.streams.audio[0].codec_context.name == "aac"
        samples = sum(frame.samples for frame in container.decode(audio=0))
    with av.open(str(clip)) as container:
        assert samples >= sum(frame.samples for frame in container.decode(audio=0))  # AAC pads its last frame
    pcm = make_sample_clip(tmp_path / "s16.mov", frames=2, width=32, height=24, audio_codec="pcm_s16le")
    for suffix, codec in ((".mp4", "aac"), (".mov", "pcm_s16le")):  # MP4 takes PCM, but nothing plays it there
        result = upscale_video(probe_video(pcm), tmp_path / f"pcm{suffix}", upscaler, encode_settings(),
                               progress=False)
        with av.open(str(tmp_path / f"pcm{suffix}")) as container:
            assert container.streams.audio[0].codec_context.name == codec
        assert result.notes == ([] if codec != "aac" else [
            "audio stream 1 (pcm_s16le) re-encoded to aac: browsers and QuickTime play no PCM in MP4 (.mov or "
            ".mkv keep it)"])


def test_a_stream_that_breaks_mid_way_is_an_error_not_a_short_video(tmp_path, model_path, monkeypatch):
    from realesrgan_ext.video import pipeline
    from realesrgan_ext.video.source import VideoInputError

    clip = make_sample_clip(tmp_path / "clip.mp4", frames=4, width=32, height=24, audio=False)
    info = probe_video(clip)

    def breaking(info, start=0):
        frames = read_frames(info, start)
        yield next(frames)
        raise VideoInputError(f"{info.path}: corrupt video stream, decoding failed after 1 frame(s)")

    monkeypatch.setattr(pipeline, "read_frames", breaking)
    upscaler = Upscaler(load_model(model_path), tile=TILE, tile_pad=TILE_PAD, precision="fp32", device="cpu")
    out = tmp_path / "up.mp4"
    with pytest.raises(VideoInputError, match="after 1 frame"):
        upscale_video(info, out, upscaler, encode_settings(), batch=1, progress=False)
    assert not out.exists() and not temporary_output(out).exists()


class Interrupting:
    """An upscaler that raises KeyboardInterrupt (Ctrl-C) on its ``calls``-th batch."""

    def __init__(self, upscaler, calls):
        self.upscaler, self.calls = upscaler, calls

    def __getattr__(self, name):
        return getattr(self.upscaler, name)

    def upscale_batch(self, images, outscale=None):
        self.calls -= 1
        if self.calls == 0:
            raise KeyboardInterrupt
        return self.upscaler.upscale_batch(images, outscale)


def test_resume_after_an_interruption_gives_the_same_output(tmp_path, model_path, one_torch_thread):
    clip = make_sample_clip(tmp_path / "clip.mp4", frames=9, width=32, height=24)
    info = probe_video(clip)
    upscaler = Upscaler(load_model(model_path), tile=TILE, tile_pad=TILE_PAD, precision="fp32", device="cpu")
    options = {"settings": encode_settings(lossless=True), "batch": 2, "segment_frames": 2, "progress": False}
    whole = upscale_video(info, tmp_path / "whole.mkv", upscaler, **options)
    out = tmp_path / "resumed.mkv"
    with pytest.raises(KeyboardInterrupt):
        upscale_video(info, out, Interrupting(upscaler, 4), **options)
    assert not out.exists() and not temporary_output(out).exists()
    assert (work_folder_for(out) / "00000.nut").is_file()
    resumed = upscale_video(info, out, upscaler, resume=True, **options)
    assert whole.frames == resumed.frames == 9 and 2 <= resumed.resumed_frames < 9
    assert "resuming after" in resumed.notes[0]
    for got, want in zip(decoded(out)[0], decoded(tmp_path / "whole.mkv")[0], strict=True):
        np.testing.assert_array_equal(got, want)


def test_bad_inputs_exit_2_naming_the_file(tmp_path, model_path, one_torch_thread, capsys):
    cli = load_cli()
    audio_only = tmp_path / "tone.m4a"
    with av.open(str(audio_only), "w") as container:  # a file with sound but no video stream
        stream = container.add_stream("aac", rate=48000, layout="mono")
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 48000, 0
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    clip = make_sample_clip(tmp_path / "good.mp4", frames=6, width=32, height=24, audio=False)
    raw = clip.read_bytes()
    noise = np.random.default_rng(0).integers(0, 256, len(raw) // 3, dtype=np.uint8).tobytes()
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(raw[: len(raw) // 3] + noise + raw[len(raw) // 3 + len(noise):])
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    cases = {audio_only: "no video stream", corrupt: "corrupt video stream", text: "not a readable video",
             tmp_path / "missing.mp4": "no such file"}
    for path, reason in cases.items():
        argv = ["-i", str(path), "-o", str(tmp_path / "out.mp4"), "-m", str(model_path), "--quiet"]
        assert cli.main(argv) == 2, path
        err = capsys.readouterr().err
        assert f"error: {path}:" in err and reason in err, err
    odd = ["-i", str(clip), "-o", str(tmp_path / "odd.mp4"), "-m", str(model_path), "--backend", "pytorch",
           "--outscale", "1.375", "--quiet"]  # 44x33: yuv420p needs even sizes
    assert cli.main(odd) == 2
    assert f"error: {clip}: the output would be 44x33" in capsys.readouterr().err
    assert not (tmp_path / "odd.mp4").exists()


@pytest.mark.parametrize(("variable", "reason"), [("MAX_IMAGE_PIXELS", "a 32x24 frame is 768 px, more than"),
                                                  ("MAX_OUTPUT_PIXELS", "output of a 32x24 px image")])
def test_frames_over_the_limits_are_refused_before_any_work(tmp_path, model_path, monkeypatch, capsys, variable,
                                                            reason):
    cli = load_cli()
    clip = make_sample_clip(tmp_path / "clip.mp4", frames=2, width=32, height=24, audio=False)
    monkeypatch.setenv(f"REALESRGAN_EXT_{variable}", "700")
    out = tmp_path / "out.mp4"
    assert cli.main(["-i", str(clip), "-o", str(out), "-m", str(model_path), "--backend", "pytorch", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"error: {clip}: " in err and reason in err, err
    assert not out.exists() and not work_folder_for(out).exists()


def test_the_codec_follows_the_container_and_the_frame_rate_is_kept(tmp_path, model_path, one_torch_thread, capsys):
    cli = load_cli()
    clip = make_sample_clip(tmp_path / "clip.mp4", frames=3, width=32, height=24, fps=12)
    for suffix, codec, audio in ((".webm", "vp9", "opus"), (".mkv", "h264", "aac"), (".mp4", "h264", "aac")):
        out = tmp_path / f"up{suffix}"
        argv = ["-i", str(clip), "-o", str(out), "-m", str(model_path), "--backend", "pytorch", "--quiet"]
        assert cli.main(argv) == 0, capsys.readouterr().err
        with av.open(str(out)) as container:
            video = container.streams.video[0]
            assert (video.codec_context.name, container.streams.audio[0].codec_context.name) == (codec, audio)
            assert video.average_rate == 12, suffix  # Matroska / WebM: the default frame duration is written
            assert sum(1 for _ in container.decode(video)) == 3


def test_a_gif_gets_a_palette_chosen_per_frame(tmp_path, model_path, one_torch_thread):
    clip = make_sample_clip(tmp_path / "clip.mp4", frames=2, width=32, height=24, audio=False)
    upscaler = Upscaler(load_model(model_path), tile=TILE, tile_pad=TILE_PAD, precision="fp32", device="cpu")
    gif = encode_settings(default_codec(tmp_path / "up.gif"))
    assert (gif.codec, gif.pix_fmt) == ("gif", "pal8")
    upscale_video(probe_video(clip), tmp_path / "up.gif", upscaler, gif, progress=False)
    expected = image_cli_frames(model_path, clip)

    def psnr(a, b):
        return 10 * np.log10(255**2 / np.mean((a.astype(float) - b) ** 2))

    for got, want in zip(decoded(tmp_path / "up.gif")[0], expected, strict=True):
        cube = av.VideoFrame.from_ndarray(want, format="rgb24").reformat(format="rgb8").to_ndarray(format="rgb24")
        assert psnr(got, want) > psnr(cube, want) + 3  # 30 dB, against 26 dB for the fixed 3-3-2 bit cube


def test_decode_times_rise_and_never_pass_pts():
    pts = np.array([0, 3, 1, 2, 6, 4, 5, 7], np.int64) * 10  # decoding order with B-frames
    dts = decode_times(pts)
    assert np.all(np.diff(dts) > 0) and np.all(dts <= pts)
    assert dts.tolist() == [-10, 0, 10, 20, 30, 40, 50, 60]
    assert decode_times(np.array([5, 9], np.int64)).tolist() == [5, 9]


def test_interrupted_cli_exits_130_with_a_message_not_a_traceback(tmp_path, model_path, monkeypatch, capsys):
    cli = load_cli()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "upscale_video", interrupted)
    clip = make_sample_clip(tmp_path / "clip.mp4", frames=2, width=32, height=24, audio=False)
    argv = ["-i", str(clip), "-o", str(tmp_path / "out.mp4"), "-m", str(model_path), "--backend", "pytorch", "--quiet"]
    assert cli.main(argv) == cli.INTERRUPTED == 130
    err = capsys.readouterr().err
    assert "interrupted: no output written" in err and "--resume" in err and "Traceback" not in err
