#!/usr/bin/env bash
# The README's first command: install, then run the whole demo (scripts/demo.py) on the bundled sample set.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
python3 scripts/demo.py "$@"
