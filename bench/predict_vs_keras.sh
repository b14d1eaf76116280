#!/usr/bin/env bash
# End-to-end screening speed, cxr against Keras doing the same work in the same run:
# `cxr predict` (decode PNG, preprocess, score in batches of 8) on the Shenzhen PNGs, and
# `cxr explain --no-lungs` (Grad-CAM from the last stage, overlay PNG written) on the first 32,
# against bench/keras_screen.py (PIL decode, resize, model.predict / tf.GradientTape Grad-CAM,
# overlay PNG). Both sides run MobileNetV2 at 224 px with the paper's head; cxr's model is
# trained for one epoch here (its weights do not change the speed), Keras' has random weights.
# Runs alternate, ROUNDS each. tools/reference/keras/setup.sh installs TensorFlow; Keras runs
# with glibc malloc's thresholds raised (bench/peer_malloc.sh).
# Usage: bench/predict_vs_keras.sh [ROUNDS=2] [EXPLAIN_COUNT=32]
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=${1:-2}
explain_count=${2:-32}
images=../shared/data/shenzhen/images
python=$(tools/reference/keras/setup.sh | sed -n 1p)
source bench/peer_malloc.sh

cargo build --quiet --release -p cxr
cxr=${CARGO_TARGET_DIR:-target}/release/cxr
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

model=target/bench/mobilenet-v2-bench/model.safetensors
if [ ! -f "$model" ]; then
  cat > "$work/recipe.toml" <<'TOML'
backbone = "mobilenet-v2"
augmented_views = 1
[frozen]
epochs = 1
[fine_tune]
epochs = 0
TOML
  rm -rf target/bench/mobilenet-v2-bench
  "$cxr" train --recipe "$work/recipe.toml" ../shared/data/shenzhen --out target/bench/mobilenet-v2-bench > /dev/null 2>&1
fi
count=$(find "$images" -name '*.png' | wc -l)
mkdir -p "$work/first"
find "$images" -name '*.png' | sort | head -n "$explain_count" | xargs -I{} ln -s "$(realpath {})" "$work/first/"

timed() { # label images command...
  local label=$1 n=$2; shift 2
  local start end
  start=$(date +%s.%N)
  "$@" > /dev/null 2>&1
  end=$(date +%s.%N)
  python3 -c "import json,sys; s=float(sys.argv[3])-float(sys.argv[2]); print(json.dumps({'run': sys.argv[1], 'images': int(sys.argv[4]), 'seconds': round(s, 2), 'images_per_s': round(int(sys.argv[4]) / s, 2)}))" "$label" "$start" "$end" "$n"
}

results="$work/results.jsonl"
for _ in $(seq "$rounds"); do
  timed "cxr predict" "$count" "$cxr" predict "$model" "$images" | tee -a "$results"
  timed "keras predict" "$count" "$python" bench/keras_screen.py predict "$images" "$count" "$work/k" | tee -a "$results"
  timed "cxr explain" "$explain_count" "$cxr" explain "$model" "$work/first" --no-lungs --out "$work/e" | tee -a "$results"
  timed "keras explain" "$explain_count" "$python" bench/keras_screen.py explain "$images" "$explain_count" "$work/k" | tee -a "$results"
done

python3 - "$results" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
best = {}
for r in rows:
    best.setdefault(r["run"], []).append(r["images_per_s"])
print()
print("| work | cxr images/s | Keras images/s | cxr / Keras |")
print("|---|---|---|---|")
for work in ["predict", "explain"]:
    c, k = best[f"cxr {work}"], best[f"keras {work}"]
    cm, km = sorted(c)[len(c) // 2], sorted(k)[len(k) // 2]
    print(f"| {work} | {', '.join(f'{v:.1f}' for v in c)} | {', '.join(f'{v:.1f}' for v in k)} | {cm / km:.2f} |")
PY
