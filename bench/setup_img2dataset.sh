#!/usr/bin/env bash
# Install img2dataset (the baseline of bench/ingest_vs_img2dataset.py) in its own venv, so its pins
# (albumentations, opencv, numpy...) can never break the project's environment.
set -euo pipefail
VENV="${IMG2DATASET_VENV:-/root/.venvs/img2dataset}"
PYTHON="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet "img2dataset==1.47.0"
NO_ALBUMENTATIONS_UPDATE=1 "$VENV/bin/python" -c "import img2dataset, importlib.metadata as m; print('img2dataset', m.version('img2dataset'), 'in', '$VENV')"
