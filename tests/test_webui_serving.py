"""Serving many people from the web page: the memory budget and its estimate, run folders removed by
age and size, upscalers not shared between requests running at once, no server path in the page's
text, and a failing request reported without stopping the next (the load test: test_webui_load.py)."""

from __future__ import annotations

import os
import threading
import time

import pytest

from realesrgan_ext.data.image_header import read_header
from realesrgan_ext.inference.upscaler import Upscaler
from realesrgan_ext.webui import app
from realesrgan_ext.webui.load_test import write_png_bomb
from realesrgan_ext.webui.memory_budget import MemoryBudget, OverBudgetError, request_bytes
from realesrgan_ext.webui.model_choices import UpscalerCache
from realesrgan_ext.webui.redact import hide_paths
from realesrgan_ext.webui.runs import RunFolders, _upscale_one
from realesrgan_ext.webui.settings import WebSettings
from realesrgan_ext.webui.uploads import collect_uploads
from tests.hostile import measure
from tests.test_webui import photo, tiny_checkpoint, write_rgb

MODEL = "experiments/tiny/models/net_g_1.pth"


@pytest.fixture
def settings(tmp_path, monkeypatch) -> WebSettings:
    monkeypatch.setenv("REALESRGAN_EXT_CACHE", str(tmp_path / "cache"))
    tiny_checkpoint(tmp_path / MODEL)
    return WebSettings(output=tmp_path / "out", experiments=tmp_path / "experiments", device="cpu")


def test_budget_refuses_what_never_fits_and_makes_the_rest_wait():
    budget = MemoryBudget(100)
    with pytest.raises(OverBudgetError, match="needs an estimated 0 MiB of memory, more than the 0 MiB"):
        with budget.reserve(101):
            pass
    holding, waited, order = threading.Event(), [], []

    def first() -> None:
        with budget.reserve(70):
            holding.set()
            time.sleep(0.3)
            order.append("first done")

    thread = threading.Thread(target=first)
    thread.start()
    holding.wait()
    with pytest.raises(OverBudgetError, match="the server is busy"):
        with budget.reserve(50, wait=0.05):
            pass
    with budget.reserve(50, on_wait=lambda: waited.append(True)):
        order.append("second runs")
        assert budget.held == 50
    thread.join()
    assert waited == [True] and order == ["first done", "second runs"] and budget.held == 0
    with budget.reserve(30), budget.reserve(70):  # fits together: no wait
        assert budget.held == 100


def test_estimate_covers_the_measured_peak_of_an_image(tmp_path, one_torch_thread):
    upscaler = Upscaler(tiny_checkpoint(tmp_path / "net.pth"), tile=64, precision="fp32", device="cpu")
    path = write_rgb(tmp_path / "up" / "big.png", photo(160, 120))
    (item,), _ = collect_uploads([path])
    upscaler.upscale(photo(8, 8))  # one-time set-up (thread pools, kernels) is no request's cost
    growths, estimates = [], []
    for outscale in (None, 6.0):
        estimate = request_bytes([read_header(path.read_bytes(), path.name)], outscale, upscaler)
        cost = measure(lambda o=outscale: _upscale_one(upscaler, item, 0, tmp_path / "run", o, lambda *_: None, set()))
        assert cost.error is None, cost.error
        print(f"outscale {outscale}: measured {cost.growth / 2**20:.1f} MiB, estimated {estimate / 2**20:.1f} MiB")
        assert cost.growth < estimate, (outscale, cost.growth, estimate)
        growths.append(cost.growth)
        estimates.append(estimate)
    # not absurdly high either; against the largest growth, since a later call may reuse freed memory (RSS +0.1 MiB)
    assert max(estimates) < 40 * max(*growths, 2**20), (growths, estimates)
    assert request_bytes([], None, upscaler) == 0


def test_old_runs_go_by_age_then_oldest_first_by_size_never_a_busy_one(tmp_path):
    output = tmp_path / "out"
    runs = RunFolders(output, max_age=24 * 3600, max_bytes=3500)
    made = []
    for age_hours in (30, 5, 4, 3):  # oldest first
        with runs.new() as folder:
            (folder / "result.png").write_bytes(b"x" * 1000)
        os.utime(folder, (time.time() - age_hours * 3600,) * 2)
        made.append(folder)
    (output / ".gradio").mkdir()
    (output / "notes").mkdir()  # not a run folder: never removed
    with runs.new() as busy:
        (busy / "result.png").write_bytes(b"x" * 1000)
        os.utime(busy, (time.time() - 99 * 3600,) * 2)  # old, but its request still runs
        assert not made[0].exists()  # past the age
        assert runs.remove_old() == [made[1]]  # then the oldest while over 3500 bytes (4000 held)
        assert busy.exists() and made[2].exists() and made[3].exists()
    assert runs.remove_old() == [busy]  # its request ended
    assert {p.name for p in output.iterdir()} == {made[2].name, made[3].name, ".gradio", "notes"}


def test_requests_running_at_once_get_their_own_upscaler(settings):
    cache = UpscalerCache("cpu", keep=2)
    path = settings.experiments.parent / MODEL
    with cache.use(path, 0, "fp32", "pytorch") as first, cache.use(path, 0, "fp32", "pytorch") as second:
        assert first is not second and first.net is not second.net
    with cache.use(path, 0, "fp32", "pytorch") as again:
        assert again is second  # the most recently given back is reused
    with cache.use(path, 32, "fp32", "pytorch") as other:  # other settings: built, and the oldest idle dropped
        assert other.tile == 32
    with cache.use(path, 0, "fp32", "pytorch") as kept:
        assert kept is second


def test_page_text_names_no_server_path(tmp_path, settings):
    assert hide_paths("cannot use the model: /srv/web/.gradio/ab12/evil.pth: a pickle") == \
        "cannot use the model: evil.pth: a pickle"
    assert hide_paths("see `/srv/out/20261205-1/a.png` (/a/b), not experiments/*/models/ nor http://h/x/y") == \
        "see `a.png` (b), not experiments/*/models/ nor http://h/x/y"
    files = [str(write_rgb(tmp_path / "up" / "a.png", photo(8, 8)))]
    status, report = app.run_request(settings, UpscalerCache("cpu"), files, MODEL, None, 0, 0, "fp32", "pytorch")
    assert report is not None and str(tmp_path) not in status and report.folder.name in status
    status, _ = app.run_request(settings, UpscalerCache("cpu"), files, "/etc/passwd", None, 0, 0, "fp32")
    assert "not one of the offered models" in status and str(tmp_path) not in status


def test_a_failing_or_too_costly_request_says_why_and_the_next_is_served(tmp_path, settings, monkeypatch, capsys):
    files = [str(write_rgb(tmp_path / "up" / "a.png", photo(8, 8)))]
    cache, serving = UpscalerCache("cpu"), app.Serving(settings)
    real = app.upscale_uploads

    def crash(*args, **kwargs):
        raise RuntimeError(f"boom in {tmp_path}/secret/module.py")

    monkeypatch.setattr(app, "upscale_uploads", crash)
    status, report = app.run_request(settings, cache, files, MODEL, None, 0, 0, "fp32", "pytorch", serving=serving)
    assert report is None and status == "**Error:** the request failed: RuntimeError: boom in module.py"
    assert "Traceback" in capsys.readouterr().err  # on the server's console, not the page
    assert serving.budget.held == 0  # given back
    monkeypatch.setattr(app, "upscale_uploads", real)
    status, report = app.run_request(settings, cache, files, MODEL, None, 0, 0, "fp32", "pytorch", serving=serving)
    assert report is not None and "Upscaled **1 of 1**" in status
    small = WebSettings(settings.output, settings.experiments, "cpu", memory_budget_mb=1)
    status, report = app.run_request(small, cache, files, MODEL, None, 16, 0, "fp32", "pytorch")
    assert report is None and "more than the 1 MiB this page allows for all requests together" in status
    bomb = write_png_bomb(tmp_path / "up" / "bomb.png")
    status, report = app.run_request(settings, cache, [str(bomb)], MODEL, None, 0, 0, "fp32", "pytorch")
    assert report is None and status.startswith("**None of the 1 file(s) can be upscaled:**")
    assert "`bomb.png`: " in status and "900.0 MP, more than the 134.2 MP allowed (max_image_pixels" in status
