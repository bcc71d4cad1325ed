"""The web page: uploads and zips handled safely, formats kept, broken files reported, and the
real page driven in headless Chromium (skipped, with the reason, where Gradio, Playwright or
Chromium is missing). Tiny RRDB checkpoints and a crop of a photo that ships with scikit-image."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from skimage import data

from realesrgan_ext.archs.rrdb_arch import RRDBGenerator
from realesrgan_ext.inference import load_image
from realesrgan_ext.webui.app import run_request
from realesrgan_ext.webui.model_choices import UpscalerCache, experiment_choices, list_models, resolve_choice
from realesrgan_ext.webui.settings import WebSettings, is_loopback
from realesrgan_ext.webui.uploads import UnsafeUploadError, collect_uploads, safe_member_path
from tests.helpers import load_script

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
# Flags that let headless Chromium run as root in a container with no network (without the
# background-networking ones its own connections are refused and page loads stall).
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def photo(width: int = 24, height: int = 16) -> np.ndarray:
    """A small RGB crop of scikit-image's astronaut photo."""
    return cv2.resize(data.astronaut(), (width, height), interpolation=cv2.INTER_AREA)


def write_rgb(path: Path, rgb: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1]))
    return path


def tiny_checkpoint(path: Path) -> Path:
    """A tiny RRDB x4 on a bicubic global skip, so its output is a real picture (not near-black)."""
    torch.manual_seed(0)
    arch = {"type": "RRDBGenerator", "scale": 4, "num_feat": 8, "num_block": 1, "num_grow_ch": 8,
            "global_skip": "bicubic"}
    net = RRDBGenerator(**{k: v for k, v in arch.items() if k != "type"})
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"params_ema": net.state_dict(), "arch": arch}, path)
    return path


@pytest.fixture
def settings(tmp_path, monkeypatch) -> WebSettings:
    monkeypatch.setenv("REALESRGAN_EXT_CACHE", str(tmp_path / "cache"))  # engines' ONNX exports (the server's too)
    tiny_checkpoint(tmp_path / "experiments" / "tiny" / "models" / "net_g_1.pth")
    return WebSettings(output=tmp_path / "out", experiments=tmp_path / "experiments", device="cpu")


def test_blend_slider_blends_the_model_with_another(tmp_path, settings, one_torch_thread):
    first = settings.experiments / "tiny" / "models" / "net_g_1.pth"
    second = settings.experiments / "tiny" / "models" / "net_g_2.pth"
    checkpoint = torch.load(first, weights_only=True)
    nudged = {k: v + 0.01 * torch.randn_like(v) for k, v in checkpoint["params_ema"].items()}
    torch.save({**checkpoint, "params_ema": nudged}, second)
    files = [str(write_rgb(tmp_path / "up" / "a.png", photo(8, 6)))]
    cache, out = UpscalerCache("cpu"), {}
    offered = {Path(c.value).name: c.value for c in experiment_choices(settings.experiments)}
    first_name, second_name = offered["net_g_1.pth"], offered["net_g_2.pth"]
    assert first_name == "experiments/tiny/models/net_g_1.pth"  # relative: the page shows no server path
    for label, model, alpha in (("A", first_name, 0.0), ("B", second_name, 0.0), ("half", first_name, 0.5),
                                ("one", first_name, 1.0)):
        status, report = run_request(settings, cache, files, model, None, 0, 0, "fp32", "pytorch",
                                     blend_model=second_name, blend_alpha=alpha)
        assert report is not None, status
        out[label] = load_image(report.written[0]).pixels.astype(int)
        assert ("blended with" in status) == (label == "half"), status
    assert np.abs(out["one"] - out["B"]).max() <= 1  # alpha 1: the other model
    parents = np.abs(out["A"] - out["B"]).mean()
    assert parents > 1 and 0 < np.abs(out["half"] - out["A"]).mean() < parents
    status, _ = run_request(settings, cache, files, first_name, None, 0, 0, "fp32", "pytorch",
                            blend_model="/etc/passwd", blend_alpha=0.5)
    assert "not one of the offered models" in status


def test_zip_members_stay_inside_and_expansion_is_bounded(tmp_path):
    archive = tmp_path / "pack.zip"
    png = cv2.imencode(".png", photo(8, 8))[1].tobytes()
    with zipfile.ZipFile(archive, "w") as zf:
        for name in ("a.png", "sub/b.png", "../evil.png", "/abs.png", "__MACOSX/._a.png", "notes.txt"):
            zf.writestr(name, png)
    images, failed = collect_uploads([archive, write_rgb(tmp_path / "c.png", photo(8, 8)), tmp_path / "x.psd"])
    assert [(i.name, str(i.folder), i.stem) for i in images] == [
        ("pack.zip/a.png", "pack", "a"), ("pack.zip/sub/b.png", "pack/sub", "b"), ("c.png", ".", "c")]
    assert images[1].read().pixels.shape == (8, 8, 3)
    reasons = dict(failed)
    assert "unsafe path" in reasons["pack.zip/../evil.png"] and "unsafe path" in reasons["pack.zip//abs.png"]
    assert "not an image or a .zip" in reasons["x.psd"]
    _, failed = collect_uploads([archive], max_bytes=len(png) // 4)  # 10x that < the zip's 4 images
    assert failed and failed[0][0] == "pack.zip" and "more than" in failed[0][1]
    (tmp_path / "bad.zip").write_bytes(b"PK not a zip")
    assert collect_uploads([tmp_path / "bad.zip"])[1][0][0] == "bad.zip"
    for bad in ("..", "a/../../b.png", "C:/x.png", "./"):
        with pytest.raises(UnsafeUploadError):
            safe_member_path(bad)


def test_request_keeps_formats_reports_broken_files_and_writes_only_its_folder(tmp_path, settings):
    up = tmp_path / "uploads"
    rgba = np.dstack([photo(8, 6), np.full((6, 8), 128, np.uint8)])
    rgba[0, 0, 3] = 0
    up.mkdir()
    cv2.imwrite(str(up / "alpha.png"), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    gray16 = (cv2.cvtColor(photo(6, 6), cv2.COLOR_RGB2GRAY).astype(np.uint16) * 257)
    cv2.imwrite(str(up / "gray16.png"), gray16)
    write_rgb(up / "photo.jpg", photo(10, 6))
    (up / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with zipfile.ZipFile(up / "more.zip", "w") as zf:
        zf.writestr("photo.jpg", cv2.imencode(".jpg", photo(4, 4))[1].tobytes())
    files = [str(up / n) for n in ("alpha.png", "gray16.png", "photo.jpg", "broken.png", "more.zip")]
    model = experiment_choices(settings.experiments)[0].value
    calls = []
    status, report = run_request(settings, UpscalerCache("cpu"), files, model, None, 0, 8, "auto",
                                 progress=lambda fraction, text: calls.append((fraction, text)))
    fractions = [f for f, _ in calls]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert "photo.jpg (3/4): tile 2/2" in [t for _, t in calls]  # 10 px wide, 8 px tiles; broken.png refused first
    assert "Upscaled **4 of 5**" in status and "`broken.png`: not a readable PNG" in status
    assert str(up) not in status  # the uploads' temporary paths are not shown
    rel = sorted(p.relative_to(report.folder).as_posix() for p in report.written)
    assert rel == ["alpha_out.png", "gray16_out.png", "more/photo_out.jpg", "photo_out.jpg"]
    alpha = load_image(report.folder / "alpha_out.png").pixels
    assert alpha.shape == (24, 32, 4) and alpha[:4, :4, 3].mean() < 110 and alpha[-4:, -4:, 3].min() > 120
    gray = load_image(report.folder / "gray16_out.png").pixels
    assert gray.shape == (24, 24) and gray.dtype == np.uint16
    assert load_image(report.folder / "more" / "photo_out.jpg").pixels.shape == (16, 16, 3)
    with zipfile.ZipFile(report.archive) as zf:
        assert sorted(zf.namelist()) == rel
    previews = [(load_image(c.before).pixels, load_image(c.after).pixels) for c in report.comparisons]
    assert [before.shape for before, _ in previews][:2] == [(24, 32, 4), (24, 24, 3)]
    assert all(before.shape == after.shape and after.dtype == np.uint8 for before, after in previews)
    np.testing.assert_array_equal(previews[0][1], alpha)  # small: the result itself, as 8-bit
    made = {p for p in settings.output.rglob("*") if ".gradio" not in p.parts}
    preview_files = {p for c in report.comparisons for p in (c.before, c.after)}
    assert made == {report.folder, report.folder / "more", report.folder / "results.zip", report.folder / ".previews",
                    *preview_files, *(report.folder / r for r in rel)}
    assert str(settings.output) not in status and report.folder.name in status


def test_models_offered_and_nothing_else_accepted(tmp_path, settings):
    (settings.experiments / "tiny" / "models" / "notes.txt").write_text("not a checkpoint")
    values = [c.value for c in list_models(settings.experiments)]
    assert values[0] == "realesrgan-x4plus" and values[-1].endswith("tiny/models/net_g_1.pth")
    assert not any(v.endswith("notes.txt") for v in values)
    with pytest.raises(ValueError, match="not one of the offered models"):
        resolve_choice("/etc/passwd", settings.experiments)
    write_rgb(tmp_path / "a.png", photo(8, 8))

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    evil = tmp_path / "evil.pth"
    torch.save({"params": Evil()}, evil)
    status, report = run_request(settings, UpscalerCache("cpu"), [str(tmp_path / "a.png")], None, str(evil), 0, 0,
                                 "auto")
    assert report is None and "cannot use the model" in status and "evil.pth" in status
    status, _ = run_request(settings, UpscalerCache("cpu"), [str(tmp_path / "a.png")], "/etc/passwd", None, 0, 0,
                            "auto")
    assert "not one of the offered models" in status
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.2")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _browser_missing() -> str | None:
    """Why the browser test cannot run here, or None."""
    for module, how in (("gradio", "bash scripts/install.sh --web"), ("playwright", "bash scripts/install.sh --dev")):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed ({how})"
    if not Path(CHROMIUM).is_file():
        return f"{CHROMIUM} not found (apt-get install chromium; .ci/run does it where apt-get works as root)"
    return None


@pytest.fixture
def server(tmp_path, settings):
    """scripts/webui.py on a free localhost port; yields its URL."""
    port = _free_port()
    log = open(tmp_path / "server.log", "w")  # noqa: SIM115  (closed below)
    proc = subprocess.Popen([sys.executable, str(REPO / "scripts" / "webui.py"), "--port", str(port), "--device", "cpu",
                             "--output", str(settings.output), "--experiments", str(settings.experiments),
                             "--max-upload-mb", "1"],
                            stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"})
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(url, timeout=2).close()
                break
            except OSError:
                assert proc.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "server did not start in 120 s"
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


@pytest.mark.slow
@pytest.mark.skipif(_browser_missing() is not None, reason=str(_browser_missing()))
def test_page_upscales_a_photo_in_headless_chromium(tmp_path, settings, server, one_torch_thread):
    from playwright.sync_api import sync_playwright

    sample = write_rgb(tmp_path / "astronaut.png", photo(24, 16))
    too_big = write_rgb(tmp_path / "noise.png", np.random.default_rng(0).integers(0, 256, (640, 640, 3), np.uint8))
    assert too_big.stat().st_size > 2**20
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff truncated")
    checkpoint = settings.experiments / "tiny" / "models" / "net_g_1.pth"
    cli = load_script("inference")
    assert cli.main(["-i", str(sample), "-o", str(tmp_path / "cli"), "-m", str(checkpoint), "--quiet"]) == 0
    expected = load_image(tmp_path / "cli" / "astronaut_out.png").pixels

    with sync_playwright() as pw:  # launch() gives Chromium a fresh temporary profile
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(server)
            page.locator("#inputs input[type=file]").set_input_files([str(too_big)])
            page.wait_for_selector('text=exceed the maximum allowed size of 1.0 Mb: "noise.png"')
            page.locator("#inputs input[type=file]").set_input_files([str(sample), str(broken)])
            page.locator("#model input").click()
            page.get_by_role("option", name="experiments/tiny/models/net_g_1.pth").click()
            page.click("#upscale")
            page.wait_for_selector("#status >> text=Upscaled", timeout=60_000)
            status = page.inner_text("#status")
            assert "1 of 2" in status and "broken.jpg" in status and "not a readable JPEG" in status
            assert "engine: " in status  # chosen as the CLI chooses (--backend auto)
            with page.expect_download() as download:
                page.locator("#downloads tr", has_text="astronaut_out").locator("a[download]").click()
            download.value.save_as(tmp_path / "downloaded.png")
            page.screenshot(path=str(tmp_path / "webui.png"), full_page=True)
        finally:
            browser.close()
    got = load_image(tmp_path / "downloaded.png").pixels
    assert got.shape == (64, 96, 3) == expected.shape
    np.testing.assert_array_equal(got, expected)
    bicubic = cv2.resize(photo(24, 16), (96, 64), interpolation=cv2.INTER_CUBIC).astype(np.float64)
    assert np.abs(got - bicubic).mean() < 20 and got.std() > 30  # the photo, upscaled: not a flat image
    assert cv2.imread(str(tmp_path / "webui.png")).shape[1] == 1280
    print(f"screenshot: {tmp_path / 'webui.png'}")



