#!/usr/bin/env bash
# Backbone inference throughput, images/s at each backbone's native size: cxr-nn on burn's
# flex backend (BatchNorm folded, no autodiff; also without cxr's own CPU kernels, without its
# Winograd kernels, and with BatchNorm unfolded) against PyTorch and Keras/TensorFlow on the
# same machine in the same run (random weights on every side). Installs PyTorch via
# tools/reference/torch/setup.sh and TensorFlow via tools/reference/keras/setup.sh.
# This machine's speed drifts by tens of percent over minutes, so the frameworks run one
# backbone at a time, side by side, and the whole set REPEATS times; each cell is the median
# of its repeats.
# Usage: bench/backbones.sh [BATCH=8] [ROUNDS=10] [REPEATS=2] [BACKBONE...]
set -euo pipefail
cd "$(dirname "$0")/.."

batch=${1:-8}
rounds=${2:-10}
repeats=${3:-2}
shift $(($# < 3 ? $# : 3))
venv=$(tools/reference/torch/setup.sh | tail -n 1)
keras_python=$(tools/reference/keras/setup.sh | sed -n 1p)

cargo build --quiet --release -p cxr-nn --example backbone_throughput
rust=${CARGO_TARGET_DIR:-target}/release/examples/backbone_throughput
backbones=("$@")
if [ ${#backbones[@]} -eq 0 ]; then
  backbones=(mobilenet-v2 efficientnet-lite0 efficientnet-lite1 efficientnet-lite2 inception-v3
    xception alexnet googlenet inception-resnet-v2)
fi

source bench/peer_malloc.sh

results=$(mktemp)
trap 'rm -f "$results"' EXIT
for repeat in $(seq "$repeats"); do
  for backbone in "${backbones[@]}"; do
    # Untimed: the first run after the Python peers still came out up to 27 % slower than the
    # same configuration right after it (MobileNetV2 and EfficientNet-Lite, which have no
    # Winograd layers, ran faster "without Winograd" in every repeat of session 16's bench).
    "$rust" --batch "$batch" --rounds 1 "$backbone" > /dev/null
    "$rust" --batch "$batch" --rounds "$rounds" "$backbone" | tee -a "$results"
    "$rust" --batch "$batch" --rounds "$rounds" --burn-kernels "$backbone" | tee -a "$results"
    "$rust" --batch "$batch" --rounds "$rounds" --no-winograd "$backbone" | tee -a "$results"
    "$rust" --batch "$batch" --rounds "$rounds" --unfolded "$backbone" | tee -a "$results"
    "$venv/bin/python" bench/backbones_torch.py "$batch" "$rounds" "$backbone" | tee -a "$results"
    "$keras_python" bench/backbones_keras.py "$batch" "$rounds" "$backbone" | tee -a "$results"
    # The kernel reclaims the Python runs' memory after they exit; let that finish before the
    # next backbone's first run (that run came out up to 45 % slower without the pause).
    sleep 5
  done
done

python3 - "$results" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
def label(r):
    if r["framework"] != "burn-flex":
        return r["framework"]
    if not r.get("cxr_kernels", True):
        return "burn flex, burn's kernels only"
    if not r.get("winograd", True):
        return "burn flex, without Winograd"
    return "burn flex" + ("" if r["batchnorm_folded"] else ", BatchNorm unfolded")
columns = list(dict.fromkeys(label(r) for r in rows))
backbones = list(dict.fromkeys(r["backbone"] for r in rows))
print()
print("| backbone | input | " + " | ".join(columns) + " |")
print("|---|---|" + "---|" * len(columns))
for b in backbones:
    cells = {}
    for r in rows:
        if r["backbone"] == b:
            cells.setdefault(label(r), []).append(r["images_per_s"])
    size = next(r["input"] for r in rows if r["backbone"] == b)
    values = [f"{statistics.median(cells[c]):.1f}" if c in cells else "-" for c in columns]
    print(f"| {b} | {size} | " + " | ".join(values) + " |")
PY
