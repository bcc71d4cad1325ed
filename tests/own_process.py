"""Tests that must run in a process of their own, started from the main test process.

OpenVINO 2026.4.1, once it has run in a process that also runs torch, leaves that process to
crash later with SIGSEGV in unrelated Python code (see ``inference/engines.py`` ``AUTO_ORDER``).
Tests that run it are marked ``@in_own_process``: the main pytest process skips them, and one
test per module re-runs them in a fresh ``python -m pytest`` (a fork would deadlock in OpenMP).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ENV = "REALESRGAN_EXT_OWN_PROCESS"
REPO = Path(__file__).resolve().parents[1]

in_own_process = pytest.mark.skipif(os.environ.get(ENV) != "1",
                                    reason="runs in its own process, from the module's *_in_own_process test")


def run_in_own_process(*pytest_args: str) -> None:
    """Run the selected tests in a fresh interpreter with ``ENV`` set; fail with its output."""
    env = {**os.environ, ENV: "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *pytest_args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout and " skipped" not in proc.stdout.splitlines()[-1], proc.stdout[-2000:]
