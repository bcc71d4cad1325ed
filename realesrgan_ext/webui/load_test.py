"""A load test of the web page: concurrent clients on 127.0.0.1 against the real server.

``serve(argv, port)`` starts ``scripts/webui.py`` (the caller's command line) and waits for it;
``load_jobs`` writes small photos (crops of scikit-image's samples) and one PNG bomb (a valid header
declaring 30000 x 30000 px), each with what the page must answer: the library's ``Upscaler`` result of
the same image in the same format, or a refusal naming the limit; ``run_load`` sends them from one
thread per client through Gradio's API (``gradio_client``, what the page itself calls), while the
server's resident memory is sampled from ``/proc``, and checks every answer pixel for pixel. A
request that raises or never answers is *lost*. ``tests/test_webui_load.py`` runs it small,
``scripts/benchmark_webui.py`` bigger.
"""

from __future__ import annotations

import os
import re
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from realesrgan_ext.inference import load_image
from realesrgan_ext.inference.image_io import choose_extension, save_image
from realesrgan_ext.inference.upscaler import Upscaler

BOMB_SIDE = 30000  # the PNG bomb's declared width and height (900 MP; decoded, 2.7 GB)
BOMB_REFUSAL = "max_image_pixels"  # what the page's answer to it must name
SAMPLE_EVERY = 0.02  # seconds between two readings of the server's resident memory
CLIENT_TIMEOUT = 600  # seconds a client waits on one HTTP call (gradio_client's 20 s fail on a busy machine)


@dataclass
class Job:
    """One upload and what the page must answer: ``expected`` pixels, or (None) a refusal naming ``refusal``."""

    path: Path
    expected: np.ndarray | None
    refusal: str = ""


@dataclass
class Outcome:
    """What one request got: ``served`` (correct pixels), ``refused`` (as expected), ``wrong`` or ``lost``."""

    name: str
    kind: str
    seconds: float
    detail: str = ""


@dataclass
class LoadReport:
    """Every request's outcome, the wall time and the server's resident memory before and at its peak."""

    outcomes: list[Outcome] = field(default_factory=list)
    wall: float = 0.0
    rss_start: int = 0
    rss_peak: int = 0

    def count(self, kind: str) -> int:
        return sum(o.kind == kind for o in self.outcomes)

    def latencies(self) -> np.ndarray:
        return np.array([o.seconds for o in self.outcomes if o.kind == "served"])

    def lines(self) -> list[str]:
        """The figures, one per line."""
        seconds = self.latencies()
        quantiles = np.percentile(seconds, [50, 95, 100]) if seconds.size else [float("nan")] * 3
        problems = [f"  {o.kind}: {o.name}: {o.detail}" for o in self.outcomes if o.kind in ("wrong", "lost")]
        return [f"requests: {len(self.outcomes)}; served correctly: {self.count('served')}; refused as expected: "
                f"{self.count('refused')}; wrong: {self.count('wrong')}; lost: {self.count('lost')}",
                f"wall: {self.wall:.1f} s; throughput: {self.count('served') / max(self.wall, 1e-9):.2f} images/s",
                "latency of a served request (s): p50 {:.2f}, p95 {:.2f}, max {:.2f}".format(*quantiles),
                f"server RSS: {self.rss_start / 2**20:.0f} MiB at start, peak {self.rss_peak / 2**20:.0f} MiB "
                f"(+{(self.rss_peak - self.rss_start) / 2**20:.0f} MiB)", *problems]


def write_png_bomb(path: Path, side: int = BOMB_SIDE) -> Path:
    """A small PNG whose header declares ``side`` x ``side`` RGB pixels (the page must refuse it unread)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\0" * (3 * side + 1) * 16)  # a few rows of the declared size, the rest missing
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b""))
    return path


def load_jobs(folder: Path, upscaler: Upscaler, clients: int, uploads: int, sides: tuple[int, int] = (16, 48),
              seed: int = 0) -> list[list[Job]]:
    """``clients`` lists of ``uploads`` photos each (random crops, sides in ``sides``, PNG or JPEG), the
    expected pixels from ``upscaler``; the middle client's middle upload is replaced by the PNG bomb."""
    from skimage import data

    rng = np.random.default_rng(seed)
    sources = [data.astronaut(), data.coffee(), data.chelsea()]
    folder.mkdir(parents=True, exist_ok=True)
    plan: list[list[Job]] = []
    for client in range(clients):
        jobs = []
        for upload in range(uploads):
            if (client, upload) == (clients // 2, uploads // 2):
                jobs.append(Job(write_png_bomb(folder / "bomb.png"), None, BOMB_REFUSAL))
                continue
            source = sources[rng.integers(len(sources))]
            height, width = (int(v) for v in rng.integers(sides[0], sides[1] + 1, 2))
            top, left = rng.integers(0, source.shape[0] - height), rng.integers(0, source.shape[1] - width)
            path = folder / f"c{client}-u{upload}.{'png' if upload % 2 else 'jpg'}"
            cv2.imwrite(str(path), np.ascontiguousarray(source[top:top + height, left:left + width, ::-1]))
            jobs.append(Job(path, expected_result(path, upscaler, folder / "expected")))
        plan.append(jobs)
    return plan


def expected_result(path: Path, upscaler: Upscaler, folder: Path) -> np.ndarray:
    """What the page must send back for the image at ``path``: the library's upscale, written in the
    image's format as the page writes it (a JPEG is encoded again), and read back."""
    image = load_image(path)
    written = save_image(folder / f"{path.stem}_out.{choose_extension(image)}", upscaler.upscale(image.pixels))
    return load_image(written).pixels


def write_tiny_model(path: Path) -> Path:
    """A tiny RRDB x4 checkpoint (8 features, one block, a bicubic global skip: its output is a picture)."""
    import torch

    from realesrgan_ext.archs.rrdb_arch import RRDBGenerator

    torch.manual_seed(0)
    arch = {"scale": 4, "num_feat": 8, "num_block": 1, "num_grow_ch": 8, "global_skip": "bicubic"}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"params_ema": RRDBGenerator(**arch).state_dict(), "arch": {"type": "RRDBGenerator", **arch}}, path)
    return path


def load_page(webui: Path, work: Path, experiments: Path, plan: list[list[Job]], model: str, options: list[str],
              env: dict[str, str] | None = None) -> LoadReport:
    """Start ``webui`` (``scripts/webui.py``) on a free port with ``--output work/out``, ``--experiments``
    and the flags ``options``, run ``plan`` against it with ``model`` (a dropdown value), stop it; its
    console goes to ``work/server.log``."""
    work.mkdir(parents=True, exist_ok=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    argv = [sys.executable, str(webui), "--port", str(port), "--device", "cpu", "--output", str(work / "out"),
            "--experiments", str(experiments), *options]
    with serve(argv, port, work / "server.log", env) as server:
        return run_load(f"http://127.0.0.1:{port}/", server.pid, plan, model)


@contextmanager
def serve(argv: list[str], port: int, log: Path, env: dict[str, str] | None = None,
          timeout: float = 180) -> Iterator[subprocess.Popen]:
    """Run the server ``argv`` (listening on 127.0.0.1:``port``) until the block ends; its output to ``log``."""
    with open(log, "w") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).close()
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"the server did not start: {log.read_text()[-3000:]}") from None
                    time.sleep(0.3)
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def resident_bytes(pid: int) -> int:
    """A process's resident set size from ``/proc/<pid>/status`` (0 once it has gone)."""
    try:
        match = re.search(r"^VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.M)
    except OSError:
        return 0
    return int(match.group(1)) * 1024 if match else 0


def run_load(url: str, pid: int, plan: list[list[Job]], model: str, backend: str = "pytorch",
             precision: str = "fp32") -> LoadReport:
    """Each list of ``plan`` uploaded in turn by its own client thread, all at once; every answer checked."""
    report = LoadReport(rss_start=resident_bytes(pid))
    report.rss_peak = report.rss_start
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(SAMPLE_EVERY):
            report.rss_peak = max(report.rss_peak, resident_bytes(pid))

    results: list[list[Outcome]] = [[] for _ in plan]
    threads = [threading.Thread(target=_client, args=(url, jobs, model, backend, precision, results[i]))
               for i, jobs in enumerate(plan)]
    sampler = threading.Thread(target=sample, daemon=True)
    start = time.perf_counter()
    sampler.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report.wall = time.perf_counter() - start
    stop.set()
    sampler.join()
    report.outcomes = [o for outcomes in results for o in outcomes]
    report.outcomes += [Outcome(j.path.name, "lost", 0.0, "no answer") for jobs, got in zip(plan, results, strict=True)
                        for j in jobs[len(got):]]
    return report


def _client(url: str, jobs: list[Job], model: str, backend: str, precision: str, outcomes: list[Outcome]) -> None:
    from gradio_client import Client, handle_file

    with tempfile.TemporaryDirectory(prefix="webui-load-") as downloads:
        try:
            client = Client(url, verbose=False, download_files=downloads, httpx_kwargs={"timeout": CLIENT_TIMEOUT})
        except Exception as err:  # noqa: BLE001  (every job of this client is lost; the report says why)
            outcomes += [Outcome(j.path.name, "lost", 0.0, f"cannot connect: {err}") for j in jobs]
            return
        for job in jobs:
            start = time.perf_counter()
            try:
                status, _, _, files = client.predict([handle_file(str(job.path))], model, None, 0, 0, precision,
                                                     backend, None, 0, api_name="/on_upscale")
            except Exception as err:  # noqa: BLE001  (a request the server dropped or failed)
                outcomes.append(Outcome(job.path.name, "lost", time.perf_counter() - start, repr(err)))
                continue
            seconds = time.perf_counter() - start
            kind, detail = check_answer(job, status, files or [])
            outcomes.append(Outcome(job.path.name, kind, seconds, detail))
            for path in files or []:
                os.unlink(path)  # keep the client's temporary folder small


def check_answer(job: Job, status: str, files: list[str]) -> tuple[str, str]:
    """(``served`` | ``refused`` | ``wrong``, why) for the page's answer to ``job``."""
    if job.expected is None:
        refused = not files and job.path.name in status and job.refusal in status
        return ("refused", "") if refused else ("wrong", f"not refused: {status[:300]!r}")
    if len(files) != 1:
        return "wrong", f"{len(files)} file(s) back: {status[:300]!r}"
    got = load_image(files[0]).pixels
    if got.shape != job.expected.shape or not np.array_equal(got, job.expected):
        return "wrong", f"pixels differ from the library's upscale ({got.shape} vs {job.expected.shape})"
    return "served", ""
