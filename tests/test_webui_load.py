"""The page under load: concurrent clients on 127.0.0.1 upload small photos and one PNG bomb to the real
``scripts/webui.py`` (``realesrgan_ext.webui.load_test``); every photo comes back equal to the library's
upscale, the bomb is refused with its reason, none is lost, and the server's memory stays bounded.
The bigger run, with figures: ``scripts/benchmark_webui.py`` (benchmarks/webui_load.txt)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from realesrgan_ext.inference.upscaler import Upscaler
from realesrgan_ext.webui.load_test import load_jobs, load_page, write_tiny_model

REPO = Path(__file__).resolve().parents[1]
CLIENTS, UPLOADS = 4, 3
MODEL = "experiments/tiny/models/net_g_1.pth"  # as the page's dropdown names it
MEMORY_BUDGET_MB = 256
# The server's resident memory may rise at most this much over its size after start-up: the requests'
# budget, plus the tiny model's upscalers and Gradio's per-request buffers.
RSS_GROWTH_BOUND = (MEMORY_BUDGET_MB + 256) * 2**20


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("gradio_client") is None, reason="gradio_client is not installed "
                    "(bash scripts/install.sh --web)")
def test_concurrent_clients_are_all_served_correctly_and_the_bomb_refused(tmp_path, one_torch_thread):
    checkpoint = write_tiny_model(tmp_path / MODEL)
    plan = load_jobs(tmp_path / "uploads", Upscaler(checkpoint, precision="fp32", device="cpu"), CLIENTS, UPLOADS)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "REALESRGAN_EXT_CACHE": str(tmp_path / "c")}
    options = ["--concurrency", "2", "--queue-size", str(2 * CLIENTS), "--memory-budget-mb", str(MEMORY_BUDGET_MB)]
    report = load_page(REPO / "scripts" / "webui.py", tmp_path, tmp_path / "experiments", plan, MODEL, options, env)
    print("\n".join(report.lines()))
    assert report.count("lost") == 0 and report.count("wrong") == 0, "\n".join(report.lines())
    assert report.count("served") == CLIENTS * UPLOADS - 1 and report.count("refused") == 1
    assert 0 < report.rss_peak - report.rss_start < RSS_GROWTH_BOUND, "\n".join(report.lines())
    log = (tmp_path / "server.log").read_text()
    assert "Traceback" not in log, log[-3000:]
    runs = [p for p in (tmp_path / "out").iterdir() if p.name != ".gradio"]
    assert len(runs) == CLIENTS * UPLOADS - 1  # the bomb was refused before a run folder was made
