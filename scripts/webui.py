#!/usr/bin/env python
"""Upscale images in your browser: a local web page over the project's inference engine.

    python scripts/webui.py                       # http://127.0.0.1:7860
    python scripts/webui.py --port 8000 --output results/web
    python scripts/webui.py --concurrency 4 --memory-budget-mb 8000    # a shared server (docs/serving.md)

Needs Gradio (``bash scripts/install.sh --web``). Listens on localhost only unless ``--host``
says otherwise; results go to a new folder under ``--output`` for each request.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from realesrgan_ext.limits import add_limit_arguments, limits_from_args  # noqa: E402
from realesrgan_ext.webui.settings import (  # noqa: E402
    DEFAULT_CONCURRENCY,
    DEFAULT_KEEP_RUNS_HOURS,
    DEFAULT_KEEP_RUNS_MB,
    DEFAULT_MAX_UPLOAD_MB,
    DEFAULT_PORT,
    DEFAULT_QUEUE_SIZE,
    LOCALHOST,
    MEMORY_BUDGET_SHARE,
    WebSettings,
)

REPO = Path(__file__).resolve().parents[1]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--port", type=int, default=DEFAULT_PORT)
    p.add_argument("--host", default=LOCALHOST,
                   help="address to listen on; anything but localhost exposes the page to your network")
    p.add_argument("--output", type=Path, default=REPO / "results" / "webui",
                   help="results (one folder per request) and Gradio's uploads go here, nowhere else")
    p.add_argument("--experiments", type=Path, default=REPO / "experiments",
                   help="checkpoints under EXPERIMENTS/*/models/ are offered in the model list")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--max-upload-mb", type=float, default=DEFAULT_MAX_UPLOAD_MB,
                   help="largest file accepted; a zip's images may expand to 10x this")
    serving = p.add_argument_group("serving many people (docs/serving.md)")
    serving.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY,
                         help="requests upscaled at once (on a CPU each gets its share of the cores)")
    serving.add_argument("--queue-size", type=int, default=DEFAULT_QUEUE_SIZE,
                         help="requests waiting beyond those; more are refused with 'queue is full'")
    serving.add_argument("--memory-budget-mb", type=float, default=None,
                         help="estimated peak memory of all running requests together; a request over it is "
                              f"refused, others wait (default: %(default)s, {MEMORY_BUDGET_SHARE * 100:.0f}%% of "
                              "physical memory)")
    serving.add_argument("--keep-runs-hours", type=float, default=DEFAULT_KEEP_RUNS_HOURS,
                         help="result folders older than this are removed")
    serving.add_argument("--keep-runs-mb", type=float, default=DEFAULT_KEEP_RUNS_MB,
                         help="and the oldest ones while all results together are larger")
    add_limit_arguments(p, page=True)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = WebSettings(args.output, args.experiments, args.device, args.max_upload_mb, limits_from_args(args),
                               args.concurrency, args.queue_size, args.memory_budget_mb, args.keep_runs_hours,
                               args.keep_runs_mb)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if importlib.util.find_spec("gradio") is None:  # not imported yet: launch sets its folders first
        print("error: the web page needs Gradio; install it with `bash scripts/install.sh --web`", file=sys.stderr)
        return 2
    from realesrgan_ext.webui.app import launch  # torch and Gradio load only now

    launch(settings, args.host, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
