"""scripts/inference_video.py --ray: segments made by Ray actors give the frames of a plain run."""

import importlib.util
import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from realesrgan_ext.video import probe_video, read_frames, work_folder_for
from realesrgan_ext.video.ray_segments import (
    PlannedSegment,
    SegmentRecorder,
    SegmentsFailedError,
    frame_times,
    plan_segments,
    read_segment,
)
from realesrgan_ext.video.sample_clip import make_sample_clip, panned_frames
from realesrgan_ext.video.segments import open_work_folder
from tests.helpers import load_script, tiny_rrdb

REPO = Path(__file__).resolve().parents[1]
needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray not installed "
                               "(bash scripts/install.sh --ray)")


def load_cli():
    return load_script("inference_video")


def tiny_model(tmp_path, key: str = "params_ema"):
    """A tiny x2 RRDB checkpoint at ``tmp_path/tiny.pth``."""
    path = tmp_path / "tiny.pth"
    torch.save({key: tiny_rrdb(2).state_dict()}, path)
    return path


def segmented_run_args(tmp_path) -> list[str]:
    """The video CLI's arguments (no -o) for a 7-frame clip and the tiny model, in segments of 3 frames."""
    clip = make_sample_clip(tmp_path / "clip.mp4", frames=7, width=32, height=24, fps=12)
    return ["-i", str(clip), "-m", str(tiny_model(tmp_path)), "--backend", "pytorch", "--precision", "fp32",
            "--device", "cpu", "--tile", "16", "--tile-pad", "4", "--lossless", "--batch", "2",
            "--segment-frames", "3", "--quiet"]


def b_frame_clip(path, times, interlaced=False):
    """H.264 with B-frames, a key frame every 4 frames and a variable frame rate (``times`` in seconds);
    ``interlaced``: coded as fields, top first (its frames are flagged interlaced)."""
    options = {"bf": "2", "g": "4", "keyint_min": "4", "sc_threshold": "0"}
    if interlaced:
        options["x264-params"] = "interlaced=1:tff=1"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=24, options=options)
        stream.width, stream.height, stream.pix_fmt = 32, 24, "yuv420p"
        stream.time_base = stream.codec_context.time_base = Fraction(1, 1000)
        for image, seconds in zip(panned_frames(len(times), 32, 24), times, strict=True):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = round(seconds * 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


@pytest.mark.parametrize(("suffix", "interlaced"), [(".mp4", False), (".mkv", False), (".mkv", True)])
def test_segments_decode_to_the_frames_of_a_whole_read(tmp_path, suffix, interlaced):
    times = [0.0, 0.04, 0.1, 0.12, 0.2, 0.25, 0.33, 0.4, 0.41, 0.5, 0.62]
    info = probe_video(b_frame_clip(tmp_path / f"b{suffix}", times, interlaced))
    assert info.interlaced == interlaced  # and so deinterlaced, frame by frame, in both reads
    whole = list(read_frames(info))
    with av.open(str(info.path)) as container:  # packets really come out of presentation order
        packets = [p.pts for p in container.demux(container.streams.video[0]) if p.size]
    assert packets != sorted(packets)
    pts = frame_times(info)
    assert pts == [f.pts for f in whole] and len(pts) == len(times)
    for segment in plan_segments(pts, 1, 3, 0):  # from frame 1: starts on and between key frames
        got = list(read_segment(info, segment))
        assert [f.index for f in got] == list(range(segment.first, segment.first + len(segment.pts)))
        for frame in got:
            assert frame.pts == whole[frame.index].pts
            np.testing.assert_array_equal(frame.rgb, whole[frame.index].rgb)


def test_segments_are_recorded_in_order_and_failures_reported(tmp_path):
    work, _ = open_work_folder(tmp_path / "work", {"run": 1}, resume=False)
    planned = plan_segments(list(range(0, 70, 10)), 0, 2, 0)  # 7 frames: 2 + 2 + 2 + 1
    assert [(s.index, s.first, len(s.pts)) for s in planned] == [(0, 0, 2), (1, 2, 2), (2, 4, 2), (3, 6, 1)]
    for segment in planned:
        work.partial_path(segment.index).write_bytes(b"segment")
    recorder = SegmentRecorder(work, planned)
    assert recorder.finished(1, [(20, 20), (30, 30)], "") == 2
    assert work.segments == []  # segment 0 is not finished yet: nothing to record
    assert recorder.finished(0, [(0, 0), (10, 10)], "") == 2
    assert recorder.finished(2, [], "VideoInputError: broken") == 0
    assert recorder.finished(3, [(60, 60)], "") == 1
    assert [s.file for s in work.segments] == ["00000.nut", "00001.nut"] and work.next_frame == 4
    manifest = json.loads((work.path / "manifest.json").read_text())
    assert [s["first"] for s in manifest["segments"]] == [0, 2]
    with pytest.raises(SegmentsFailedError, match=r"1 of 4 segment\(s\) failed:\n  segment 2 \(frames 4-5\): "
                                                  r"VideoInputError: broken"):
        recorder.raise_failures()
    assert PlannedSegment(2, 4, (40, 50)).describe() == "segment 2 (frames 4-5)"
    stopped = SegmentRecorder(work, plan_segments(list(range(0, 110, 10)), 4, 2, 2))  # frames 4-10 again
    stopped.finished(3, [(60, 60), (70, 70)], "")
    stopped.unfinished("the Ray run stopped: node lost")  # segments 2, 4 and 5 were never reported
    assert [s.index for s, _ in stopped.failures] == [2, 4, 5]
    assert {reason for _, reason in stopped.failures} == {"the Ray run stopped: node lost"}


@needs_ray
def test_unreachable_cluster_exits_2(tmp_path, capsys):
    tiny_model(tmp_path, key="params")
    clip = make_sample_clip(tmp_path / "clip.mp4", frames=2, width=32, height=24, audio=False)
    argv = ["-i", str(clip), "-o", str(tmp_path / "up.mkv"), "-m", str(tmp_path / "tiny.pth"), "--lossless",
            "--quiet", "--ray", "127.0.0.1:1"]
    assert load_cli().main(argv) == 2
    assert "could not start or reach the Ray cluster 127.0.0.1:1" in capsys.readouterr().err
    assert not (tmp_path / "up.mkv").exists()


@needs_ray
@pytest.mark.slow
def test_ray_segments_give_the_frames_of_a_plain_run(tmp_path, one_torch_thread):
    ray = pytest.importorskip("ray")
    torch.manual_seed(0)
    common = segmented_run_args(tmp_path)
    cli = load_cli()
    assert cli.main([*common, "-o", str(tmp_path / "plain.mkv")]) == 0
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        assert cli.main([*common, "-o", str(tmp_path / "ray.mkv"), "--ray", "--ray-actors", "2"]) == 0
    finally:
        ray.shutdown()
    assert not work_folder_for(tmp_path / "ray.mkv").exists()
    outputs = []
    for name in ("plain.mkv", "ray.mkv"):
        with av.open(str(tmp_path / name)) as container:
            video = container.streams.video[0]
            frames = [(f.pts, f.to_ndarray(format="rgb24")) for f in container.decode(video)]
            outputs.append((frames, video.average_rate, sorted(s.type for s in container.streams)))
    (plain, plain_rate, plain_types), (on_ray, ray_rate, ray_types) = outputs
    assert len(plain) == len(on_ray) == 7 and plain_rate == ray_rate == 12
    assert plain_types == ray_types == ["audio", "video"]
    for (pts, want), (ray_pts, got) in zip(plain, on_ray, strict=True):
        assert ray_pts == pts
        np.testing.assert_array_equal(got, want)


def test_a_seek_past_the_segment_decodes_from_the_start(tmp_path, monkeypatch):
    from realesrgan_ext.video import ray_segments

    info = probe_video(b_frame_clip(tmp_path / "b.mkv", [i / 10 for i in range(9)]))
    whole = list(read_frames(info))
    decoded, seeks = ray_segments._decoded, []

    def overshooting(video, seek_pts):  # a demuxer that lands on the next key frame (pts 400 ms)
        seeks.append(seek_pts)
        return decoded(video, None if seek_pts is None else 400)

    monkeypatch.setattr(ray_segments, "_decoded", overshooting)
    got = list(read_segment(info, plan_segments(frame_times(info), 2, 3, 0)[0]))
    assert seeks == [200, None] and [f.index for f in got] == [2, 3, 4]
    for frame in got:
        np.testing.assert_array_equal(frame.rgb, whole[frame.index].rgb)


def test_actor_reports_a_failed_segment_and_makes_the_others(tmp_path, one_torch_thread):
    from realesrgan_ext.inference.ray_batch import UpscaleSettings
    from realesrgan_ext.video import encode_settings
    from realesrgan_ext.video.ray_segments import SegmentActor

    tiny_model(tmp_path)
    info = probe_video(make_sample_clip(tmp_path / "clip.mp4", frames=4, width=32, height=24, audio=False))
    work, _ = open_work_folder(tmp_path / "work", {}, resume=False)
    work.partial_path(1).mkdir()  # segment 1 cannot be written
    settings = UpscaleSettings(str(tmp_path / "tiny.pth"), "pytorch", "fp32", "cpu", tile=16, tile_pad=4)
    actor = SegmentActor(settings.__dict__, info, encode_settings(lossless=True), str(work.path), batch=2)
    planned = plan_segments(frame_times(info), 0, 2, 0)
    result = actor({"index": np.array([0, 1]), "first": np.array([0, 2]),
                    "pts": np.array([json.dumps(s.pts) for s in planned], dtype=object)})
    assert len(json.loads(result["stamps"][0])) == 2 and result["error"][0] == ""
    assert work.partial_path(0).stat().st_size > 0
    assert result["stamps"][1] == "[]" and result["error"][1].startswith("IsADirectoryError")


def test_a_failed_segment_exits_1_and_resume_finishes_the_same_video(tmp_path, monkeypatch, capsys,
                                                                      one_torch_thread):
    """The --ray driver end to end, with the actors run in this process instead of on Ray."""
    from realesrgan_ext.video import ray_segments

    def in_process(planned, constructor, *_ray_options):
        actor = ray_segments.SegmentActor(**constructor)
        for s in reversed(planned):  # finishing out of order, as on a cluster
            row = {"index": np.array([s.index]), "first": np.array([s.first]),
                   "pts": np.array([json.dumps(s.pts)], dtype=object)}
            yield {name: value[0] for name, value in actor(row).items()}

    def blocking_segment_1(planned, constructor, *ray_options):
        (Path(constructor["work"]) / "00001.partial").mkdir()
        return in_process(planned, constructor, *ray_options)

    common = segmented_run_args(tmp_path)
    cli, out = load_cli(), tmp_path / "ray.mkv"
    assert cli.main([*common, "-o", str(tmp_path / "plain.mkv")]) == 0
    monkeypatch.setattr(ray_segments, "_made_on_ray", blocking_segment_1)
    assert cli.main([*common, "-o", str(out), "--ray"]) == 1
    err = capsys.readouterr().err
    assert "1 of 3 segment(s) failed:\n  segment 1 (frames 3-5): IsADirectoryError" in err and "--resume" in err
    assert not out.exists()
    manifest = json.loads((work_folder_for(out) / "manifest.json").read_text())
    assert [(s["first"], s["frames"]) for s in manifest["segments"]] == [(0, 3)]  # segment 2 waits for 1
    (work_folder_for(out) / "00001.partial").rmdir()
    monkeypatch.setattr(ray_segments, "_made_on_ray", in_process)
    assert cli.main([*common, "-o", str(out), "--ray", "--resume"]) == 0
    assert "resuming after 1 finished segment(s) (3 frames)" in capsys.readouterr().err
    with av.open(str(tmp_path / "plain.mkv")) as plain, av.open(str(out)) as resumed:
        want = [f.to_ndarray(format="rgb24") for f in plain.decode(video=0)]
        got = [f.to_ndarray(format="rgb24") for f in resumed.decode(video=0)]
        assert len(got) == len(want) == 7 and len(resumed.streams.audio) == 1
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)
