"""scripts/install.sh stops on a failed pip install and shows pip's message."""

import os
import stat
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# A stand-in interpreter: every check passes, every pip install succeeds except the requirements
FAKE_PYTHON = """#!/usr/bin/env bash
if [ "$1 $2 $3" = "-m pip install" ] && [[ " $* " == *" -r "* ]]; then
  echo "ERROR: No matching distribution found for nosuchpackage==9.9" >&2
  exit 1
fi
echo "ran: $*" >> "$(dirname "$0")/calls.txt"
exit 0
"""


@pytest.mark.skipif(not Path("/bin/bash").exists(), reason="needs bash")
def test_failed_pip_install_stops_the_script(tmp_path):
    fake = tmp_path / "python"
    fake.write_text(FAKE_PYTHON)
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    proc = subprocess.run(["bash", str(REPO / "scripts" / "install.sh")], capture_output=True, text=True,
                          env={**os.environ, "PYTHON": str(fake), "TORCH_SPEC": ""}, timeout=60)
    assert proc.returncode != 0
    assert "No matching distribution found for nosuchpackage==9.9" in proc.stderr
    assert "-e ." not in (tmp_path / "calls.txt").read_text()  # stopped before installing the package
