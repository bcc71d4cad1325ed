"""The web page's Video tab: one click upscales a clip like scripts/inference_video.py; the page has both tabs."""

from __future__ import annotations

import importlib.util

import av
import numpy as np
import pytest
import torch

from realesrgan_ext.inference import Upscaler, load_model
from realesrgan_ext.limits import Limits
from realesrgan_ext.video import probe_video, read_frames
from realesrgan_ext.video.sample_clip import make_sample_clip
from realesrgan_ext.webui import video_tab
from realesrgan_ext.webui.memory_budget import MemoryBudget, video_request_bytes
from realesrgan_ext.webui.model_choices import UpscalerCache
from realesrgan_ext.webui.settings import WebSettings
from realesrgan_ext.webui.video_tab import fitting_plan, plays_in_browsers, run_video_request
from tests.helpers import tiny_rrdb
from tests.hostile import measure
from tests.test_video import write_10_bit_ramp


@pytest.fixture
def settings(tmp_path, monkeypatch) -> WebSettings:
    monkeypatch.setenv("REALESRGAN_EXT_CACHE", str(tmp_path / "cache"))
    model = tmp_path / "experiments" / "tiny" / "models" / "net_g_1.pth"
    model.parent.mkdir(parents=True)
    torch.save({"params_ema": tiny_rrdb(4).state_dict()}, model)
    return WebSettings(output=tmp_path / "out", experiments=tmp_path / "experiments", device="cpu")


def test_video_request_lossless_matches_the_image_path_and_reports_errors(tmp_path, settings, one_torch_thread):
    clip = make_sample_clip(tmp_path / "clip.mp4", frames=3, width=32, height=24)
    checkpoint = settings.experiments / "tiny" / "models" / "net_g_1.pth"
    seen = []
    status, output = run_video_request(settings, UpscalerCache("cpu"), str(clip), None, str(checkpoint), 0, 16,
                                       "fp32", "pytorch", lossless=True, progress=lambda f, text: seen.append(f))
    assert output is not None and output.suffix == ".mkv", status
    assert output.parent.parent == settings.output and "upscaled 3 frames" in status and seen[-1] == 1.0
    upscaler = Upscaler(load_model(checkpoint), tile=16, precision="fp32", device="cpu")
    with av.open(str(output)) as container:
        assert sorted(s.type for s in container.streams) == ["audio", "video"]
        got = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    for frame, image in zip(read_frames(probe_video(clip)), got, strict=True):
        np.testing.assert_array_equal(image, upscaler.upscale(frame.rgb))
    not_video = tmp_path / "notes.mp4"
    not_video.write_text("text")
    status, output = run_video_request(settings, UpscalerCache("cpu"), str(not_video), None, str(checkpoint), 0, 0,
                                       "fp32", "pytorch")
    assert output is None and "**Error:** notes.mp4: not a readable video" in status and str(tmp_path) not in status
    status, _ = run_video_request(settings, UpscalerCache("cpu"), None, None, None, 0, 0, "auto")
    assert status == "Upload a video first."


def test_the_page_plays_8_bit_mp4_and_offers_the_rest_for_download(tmp_path, settings, one_torch_thread):
    checkpoint = str(settings.experiments / "tiny" / "models" / "net_g_1.pth")
    clip = make_sample_clip(tmp_path / "clip.mp4", frames=2, width=32, height=24)
    deep = write_10_bit_ramp(tmp_path / "deep.mkv", width=32, height=24)
    for source, lossless, plays in ((clip, False, True), (clip, True, False), (deep, False, False)):
        status, output = run_video_request(settings, UpscalerCache("cpu"), str(source), None, checkpoint, 0, 16,
                                           "fp32", "pytorch", lossless=lossless)
        assert output is not None and plays_in_browsers(output) == plays, (source, lossless, status)
    status, output = run_video_request(settings, UpscalerCache("cpu"), str(clip), None, checkpoint, 0, 16, "fp32",
                                       "pytorch", deinterlace="sometimes")
    assert output is None and "deinterlace must be one of ('auto', 'on', 'off')" in status


def test_the_estimate_covers_the_measured_peak_of_a_video_request(tmp_path, settings, one_torch_thread):
    clip = make_sample_clip(tmp_path / "clip.mp4", frames=8, width=160, height=120)
    checkpoint = settings.experiments / "tiny" / "models" / "net_g_1.pth"
    budget = MemoryBudget(2**40)

    def run(source):
        return run_video_request(settings, UpscalerCache("cpu"), str(source), None, str(checkpoint), 0, 0, "fp32",
                                 "pytorch", budget=budget)

    run(make_sample_clip(tmp_path / "warm.mp4", frames=2, width=16, height=16))  # one-time set-up is no request's
    upscaler = Upscaler(load_model(checkpoint), tile=0, precision="fp32", device="cpu")
    estimate = video_request_bytes(160, 120, None, upscaler, 1)
    cost = measure(lambda: run(clip))
    assert cost.error is None and cost.result[1] is not None, (cost.error, cost.result)
    print(f"measured {cost.growth / 2**20:.1f} MiB, estimated {estimate / 2**20:.1f} MiB")
    assert cost.growth < estimate < 40 * max(cost.growth, 2**20)


def test_a_video_takes_the_plan_that_fits_the_budget_or_is_refused_saying_why(tmp_path, settings, one_torch_thread):
    clip = make_sample_clip(tmp_path / "clip.mp4", frames=2, width=64, height=48)
    info = probe_video(clip)
    upscaler = Upscaler(load_model(settings.experiments / "tiny" / "models" / "net_g_1.pth"), tile=16,
                        precision="fp32", device="cpu")
    whole, tiled = (video_request_bytes(64, 48, None, upscaler, 1, tile) for tile in (64, 16))
    assert tiled < whole
    assert fitting_plan(info, None, upscaler, 64, whole) == (64, 1, whole)  # one frame at a time on a CPU
    assert fitting_plan(info, None, upscaler, 64, whole - 1) == (16, 1, tiled)  # tiles when whole frames do not fit
    assert fitting_plan(info, None, upscaler, 0, tiled - 1) == (16, 1, tiled)  # the smallest: the budget refuses it
    checkpoint = str(settings.experiments / "tiny" / "models" / "net_g_1.pth")
    status, output = run_video_request(settings, UpscalerCache("cpu"), str(clip), None, checkpoint, 0, 16, "fp32",
                                       "pytorch", budget=MemoryBudget(tiled - 1))
    assert output is None and "**Error:** this request needs an estimated" in status, status
    assert not list(settings.output.glob("*/*"))  # no run folder was made


def test_a_video_over_the_frame_limit_is_refused_before_or_while_decoding(tmp_path, settings, monkeypatch,
                                                                           one_torch_thread):
    clip = make_sample_clip(tmp_path / "clip.mp4", frames=3, width=32, height=24)
    checkpoint = str(settings.experiments / "tiny" / "models" / "net_g_1.pth")
    settings.limits = Limits(max_video_frames=2)
    status, output = run_video_request(settings, UpscalerCache("cpu"), str(clip), None, checkpoint, 0, 16, "fp32",
                                       "pytorch")
    assert output is None and "clip.mp4: its frame count is 3, more than the 2 allowed (max_video_frames" in status
    monkeypatch.setattr(video_tab, "check_frame_count", lambda info, limits: None)  # a container that understates
    status, output = run_video_request(settings, UpscalerCache("cpu"), str(clip), None, checkpoint, 0, 16, "fp32",
                                       "pytorch")
    assert output is None and "clip.mp4: its frame count is 3, more than the 2 allowed" in status, status


@pytest.mark.slow  # importing Gradio and building the page: about 10 s
@pytest.mark.skipif(importlib.util.find_spec("gradio") is None, reason="gradio is not installed")
def test_page_has_an_images_tab_and_a_video_tab(settings):
    from realesrgan_ext.webui.app import build_app, prepare_environment

    prepare_environment(settings)
    page = build_app(settings)
    labels = [block.label for block in page.blocks.values() if type(block).__name__ == "Tab"]
    assert labels == ["Images", "Video"]
    ids = {getattr(block, "elem_id", None) for block in page.blocks.values()}
    assert {"upscale", "video-upscale", "video-codec", "video-crf", "video-lossless", "video-blend"} <= ids
    upscaling = {f.name: (f.concurrency_id, f.concurrency_limit) for f in page.fns.values()
                 if f.name in ("on_upscale", "on_run")}
    assert upscaling == {"on_upscale": ("upscale", 2), "on_run": ("upscale", 2)}  # one limit for both tabs
