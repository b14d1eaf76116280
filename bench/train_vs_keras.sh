#!/usr/bin/env bash
# Training speed and accuracy, cxr against Keras/TF running the paper's two-phase recipe on the
# same data in the same run: ImageNet Xception frozen (the only Keras ImageNet weights that can
# be had offline here), the paper's head, BCE, RMSprop 1e-4, batch 32, fresh augmentation every
# epoch, best validation accuracy kept, LR cut after 3 flat epochs; then block13-14 unfrozen.
# Both read one paper-layout folder (train/val x normal/tb) made from Shenzhen by
# `cxr data split --val 0.2 --seed 42`. cxr starts with an empty preprocessing cache. Whole
# commands are timed (start-up, weight loading and decoding included); peak RSS from
# /usr/bin/time. Installs TensorFlow through tools/reference/keras/setup.sh; Keras runs with
# glibc malloc's thresholds raised (bench/peer_malloc.sh), as in bench/backbones.sh.
# Usage: bench/train_vs_keras.sh [FROZEN_EPOCHS=3] [FINE_TUNE_EPOCHS=1] [CXR_RECIPE_EXTRA]
#   CXR_RECIPE_EXTRA: extra top-level recipe lines for a second cxr run, e.g. "augmented_views = 2"
#   BENCH_RUNS (environment): which runs, of "cxr keras variant" (the default), e.g.
#   BENCH_RUNS="keras variant" to skip cxr's fresh-augmentation run on a long bench.
set -euo pipefail
cd "$(dirname "$0")/.."

frozen_epochs=${1:-3}
fine_epochs=${2:-1}
extra=${3:-}
{ read -r python; read -r package; } < <(tools/reference/keras/setup.sh)
source bench/peer_malloc.sh

cargo build --quiet --release -p cxr
cxr=$(realpath "${CARGO_TARGET_DIR:-target}/release/cxr")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The paper's layout, as symlinks, from one seeded split.
"$cxr" data split ../shared/data/shenzhen --out "$work/split.csv" --val 0.2 --seed 42 > /dev/null
python3 - "$work/split.csv" "$work/data" <<'PY'
import csv, os, sys
manifest, root = sys.argv[1], sys.argv[2]
base = os.path.dirname(os.path.abspath(manifest))
for row in csv.DictReader(open(manifest)):
    folder = os.path.join(root, row["split"], row["label_name"])
    os.makedirs(folder, exist_ok=True)
    source = os.path.join(base, row["path"])
    os.symlink(os.path.realpath(source), os.path.join(folder, os.path.basename(source)))
PY

# cxr reads converted weights from its cache: fetch Xception once, outside the timing, and
# give each timed run a fresh preprocessing cache beside a link to those weights.
"$cxr" weights fetch xception > /dev/null
weights=$("$cxr" --json weights list | python3 -c "
import json, sys
print([r['cached'] for r in map(json.loads, sys.stdin) if r['name'] == 'xception'][0])")

recipe() { # extra-lines
  cat <<TOML
backbone = "xception"
$1
[frozen]
epochs = $frozen_epochs
[fine_tune]
epochs = $fine_epochs
unfreeze_from = "block13"
TOML
}

timed() { # label command...
  local label=$1; shift
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" > "$work/$label.log" 2>&1 ||
    { echo "$label failed; its log:" >&2; tail -n 30 "$work/$label.log" >&2; exit 1; }
  read -r seconds kib < "$work/time"
  echo "{\"run\": \"$label\", \"seconds\": $seconds, \"peak_rss_mib\": $((kib / 1024))}"
}

cxr_run() { # label extra-lines
  local label=$1 cache="$work/cache-$1"
  mkdir -p "$cache"
  ln -s "$weights" "$cache/xception.safetensors"
  recipe "$2" > "$work/$label.toml"
  CXR_CACHE_DIR=$cache timed "$label" "$cxr" train --recipe "$work/$label.toml" "$work/data" --out "$work/run-$label"
  python3 - "$work/run-$label/metrics.csv" <<'PY'
import csv, json, sys
rows = list(csv.DictReader(open(sys.argv[1])))
phase = lambda p: [r for r in rows if r["phase"] == p]
print(json.dumps({
    "frozen_epoch_seconds": [float(r["seconds"]) for r in phase("frozen")],
    "fine_tune_epoch_seconds": [float(r["seconds"]) for r in phase("fine_tune")],
    "val_accuracy": [float(r["val_accuracy"]) for r in rows],
    "val_auc": [float(r["val_auc"]) for r in rows],
    "best_val_accuracy": max(float(r["val_accuracy"]) for r in rows),
}))
PY
}

keras_run() {
  timed keras "$python" bench/keras_train.py \
    "$package/trained_models/pneumonia_xception_model_val-acc_0.861.keras" \
    "$work/data" "$frozen_epochs" "$fine_epochs" "$work/keras"
  tail -n 1 "$work/keras.log"
}

runs=" ${BENCH_RUNS:-cxr keras variant} "
if [[ $runs == *" cxr "* ]]; then cxr_run cxr ""; fi
if [[ $runs == *" keras "* ]]; then keras_run; fi
if [[ $runs == *" variant "* && -n $extra ]]; then cxr_run cxr-variant "$extra"; fi
