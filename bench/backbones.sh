#!/usr/bin/env bash
# Backbone inference throughput, images/s at each backbone's native size: cxr-nn on burn's
# flex backend (BatchNorm folded, no autodiff; also without cxr's own CPU kernels, and with
# BatchNorm unfolded) against PyTorch and Keras/TensorFlow on the same machine in the same run
# (random weights on every side). Installs PyTorch via tools/reference/torch/setup.sh and
# TensorFlow via tools/reference/keras/setup.sh.
# Usage: bench/backbones.sh [BATCH=8] [ROUNDS=10]
set -euo pipefail
cd "$(dirname "$0")/.."

batch=${1:-8}
rounds=${2:-10}
venv=$(tools/reference/torch/setup.sh | tail -n 1)
keras_python=$(tools/reference/keras/setup.sh | sed -n 1p)

cargo build --quiet --release -p cxr-nn --example backbone_throughput
rust=${CARGO_TARGET_DIR:-target}/release/examples/backbone_throughput

results=$(mktemp)
trap 'rm -f "$results"' EXIT
"$rust" --batch "$batch" --rounds "$rounds" | tee -a "$results"
"$rust" --batch "$batch" --rounds "$rounds" --burn-kernels | tee -a "$results"
"$rust" --batch "$batch" --rounds "$rounds" --unfolded | tee -a "$results"
"$venv/bin/python" bench/backbones_torch.py "$batch" "$rounds" | tee -a "$results"
"$keras_python" bench/backbones_keras.py "$batch" "$rounds" | tee -a "$results"

python3 - "$results" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
def label(r):
    if r["framework"] != "burn-flex":
        return r["framework"]
    if not r.get("cxr_kernels", True):
        return "burn flex, burn's kernels only"
    return "burn flex" + ("" if r["batchnorm_folded"] else ", BatchNorm unfolded")
columns = list(dict.fromkeys(label(r) for r in rows))
backbones = list(dict.fromkeys(r["backbone"] for r in rows))
print()
print("| backbone | input | " + " | ".join(columns) + " |")
print("|---|---|" + "---|" * len(columns))
for b in backbones:
    cells = {label(r): r for r in rows if r["backbone"] == b}
    size = next(iter(cells.values()))["input"]
    values = [f'{cells[c]["images_per_s"]:.1f}' if c in cells else "-" for c in columns]
    print(f"| {b} | {size} | " + " | ".join(values) + " |")
PY
