#!/usr/bin/env bash
# Preprocessing throughput, file -> 3 x 299 x 299 f32 tensor: cxr (rayon over images) against
# Pillow + NumPy on the same files in the same run, on the Shenzhen 512 px PNGs and on 16-bit
# 3000 px PNGs made from them. Installs its own Python peer into bench/.venv.
# Usage: bench/preprocess.sh [SMALL_IMAGES=562] [LARGE_IMAGES=8] [ROUNDS=3]
set -euo pipefail
cd "$(dirname "$0")/.."

small_count=${1:-562}
large_count=${2:-8}
rounds=${3:-3}
data=${CXR_DATA:-../shared/data}/shenzhen/images
work=bench/.work
venv=bench/.venv

if [ ! -d "$data" ]; then
    echo "no images at $data (set CXR_DATA to the folder holding shenzhen/)" >&2
    exit 1
fi
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check pillow numpy

cargo build --quiet --release -p cxr-core --example preprocess_throughput
rust=target/release/examples/preprocess_throughput

mkdir -p "$work"
find "$data" -name '*.png' | sort | head -n "$small_count" > "$work/small.txt"
head -n "$large_count" "$work/small.txt" | xargs "$venv/bin/python" bench/make_large_png.py "$work/large" > /dev/null
head -n "$large_count" "$work/small.txt" | xargs -n1 basename | sed "s|\.png$|_3000_16bit.png|; s|^|$work/large/|" > "$work/large.txt"
# Read every file once so neither side pays for a cold page cache.
cat $(cat "$work/small.txt" "$work/large.txt") > /dev/null

"$venv/bin/python" bench/preprocess_compare.py "$rust" "$rounds" \
    "Shenzhen 512 px 8-bit PNG:$work/small.txt" \
    "3000 px 16-bit PNG:$work/large.txt"
