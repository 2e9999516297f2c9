#!/usr/bin/env bash
# Creates .venv and installs the pinned requirements; a second run reuses it
# (it reinstalls only when a requirements file changed).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
stamp=.venv/.tfclf-requirements.sha256
wanted=$(cat requirements.txt requirements-offline.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  echo "setup: installing requirements into .venv (first run: a few minutes)" >&2
  .venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v '^WARNING: Location' >&2 || true
  .venv/bin/python -m pip install -q -r requirements.txt
  .venv/bin/python -m pip install -q --no-deps -r requirements-offline.txt
  echo "$wanted" > "$stamp"
fi
