#!/usr/bin/env python
"""Load test of the web page, bigger than CI's: concurrent clients upload small photos and one PNG bomb.

    python scripts/benchmark_webui.py                          # 8 clients x 10 uploads, x4plus, concurrency 2
    python scripts/benchmark_webui.py --model tiny --clients 4 --uploads 3 --concurrency 2

For each ``--concurrency`` value, starts a fresh ``scripts/webui.py`` on 127.0.0.1 (with
``--memory-budget-mb``), and from one thread per client sends that client's uploads one after
another through Gradio's API (``realesrgan_ext.webui.load_test``): crops of scikit-image's photos,
``--sides`` px, PNG and JPEG, and one PNG whose header declares 30000 x 30000 px. Each answer is
checked pixel for pixel against the library's ``Upscaler`` (PyTorch fp32, as the page is asked to
run), the bomb must be refused naming ``max_image_pixels``, and the server's resident memory is
sampled from /proc. Prints the counts (served, refused, wrong, lost), wall time and throughput,
latencies, and the server's RSS at start and peak against the stated bound: start + the memory
budget + ``MODEL_ALLOWANCE_MB`` (the upscalers kept, Gradio's buffers). Exit status 1 if a request
was wrong or lost or the bound was exceeded.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a checkout without installing

from realesrgan_ext.data.image_header import read_header  # noqa: E402
from realesrgan_ext.inference.upscaler import Upscaler  # noqa: E402
from realesrgan_ext.webui.load_test import load_jobs, load_page, write_tiny_model  # noqa: E402
from realesrgan_ext.webui.memory_budget import request_bytes  # noqa: E402

TINY = "experiments/tiny/models/net_g_1.pth"  # --model tiny: written into the work folder, named as the page does
MODEL_ALLOWANCE_MB = 768


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--uploads", type=int, default=10, help="per client, one after another (one is the bomb)")
    p.add_argument("--concurrency", type=int, nargs="+", default=[2],
                   help="the page's --concurrency, one run each")
    p.add_argument("--model", default="realesrgan-x4plus", help="a bundled model name, or 'tiny' (a tiny RRDB x4)")
    p.add_argument("--sides", type=int, nargs=2, default=[16, 32], metavar=("MIN", "MAX"), help="photo sides in px")
    p.add_argument("--memory-budget-mb", type=float, default=2048)
    p.add_argument("--work", type=Path, default=None, help="folder for uploads and outputs (default: a temporary one)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="benchmark-webui-") as temporary:
        return run(args, args.work or Path(temporary))


def run(args: argparse.Namespace, work: Path) -> int:
    if args.model == "tiny":
        checkpoint, model = write_tiny_model(work / TINY), TINY
    else:
        from realesrgan_ext.inference.bundled_models import official_model_path

        checkpoint, model = official_model_path(args.model), args.model
    upscaler = Upscaler(checkpoint, precision="fp32", device="cpu")
    plan = load_jobs(work / "uploads", upscaler, args.clients, args.uploads, tuple(args.sides))
    photos = [job.path for jobs in plan for job in jobs if job.expected is not None]
    headers = [read_header(path.read_bytes(), path.name) for path in photos]
    estimate = request_bytes(headers, None, upscaler)
    print(f"# command: python scripts/benchmark_webui.py {' '.join(sys.argv[1:])}".rstrip())
    print(f"# machine: {len(os.sched_getaffinity(0))} CPU cores, no GPU; commit {commit()}; "
          f"{time.strftime('%Y-%m-%d')}; load average {os.getloadavg()[0]:.1f} at start")
    print(f"model {args.model} (PyTorch fp32 on the page and in the library); {args.clients} clients x "
          f"{args.uploads} uploads ({args.clients * args.uploads - 1} photos of {args.sides[0]}..{args.sides[1]} px "
          f"and 1 PNG bomb); memory budget {args.memory_budget_mb:.0f} MiB; largest request estimated "
          f"{estimate / 2**20:.0f} MiB")
    bound = (args.memory_budget_mb + MODEL_ALLOWANCE_MB) * 2**20
    failed = False
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for concurrency in args.concurrency:
        options = ["--concurrency", str(concurrency), "--queue-size", str(2 * args.clients),
                   "--memory-budget-mb", str(args.memory_budget_mb)]
        report = load_page(REPO / "scripts" / "webui.py", work / f"c{concurrency}", work / "experiments", plan,
                           model, options, env)
        held = report.rss_peak - report.rss_start <= bound
        print(f"\n--concurrency {concurrency}")
        print("\n".join(f"  {line}" for line in report.lines()))
        print(f"  RSS bound: start + {args.memory_budget_mb:.0f} MiB budget + {MODEL_ALLOWANCE_MB} MiB models: "
              f"{'held' if held else 'EXCEEDED'}")
        failed |= report.count("wrong") > 0 or report.count("lost") > 0 or not held
    return 1 if failed else 0


def commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())
