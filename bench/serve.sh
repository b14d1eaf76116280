#!/usr/bin/env bash
# The service under load, against `cxr predict` on the same images in the same run: 8 clients
# POST the Shenzhen 512 px PNGs to /v1/screen for 60 s (lung model off, so both do the same
# work; then once more with it on), reporting throughput, p50/p99 latency, every status seen
# and the server's peak RSS.
# Usage: bench/serve.sh [SECONDS=60] [CLIENTS=8]
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
clients=${2:-8}
data=${CXR_DATA:-../shared/data}/shenzhen/images
port=${CXR_BENCH_PORT:-18080}
out=bench/results
mkdir -p "$out"

cargo build --quiet --release -p cxr
cargo build --quiet --release -p cxr-server --example load
cxr=${CARGO_TARGET_DIR:-target}/release/cxr
load=${CARGO_TARGET_DIR:-target}/release/examples/load
cat "$data"/*.png > /dev/null

started=$(date +%s.%N)
"$cxr" predict "$data" > /dev/null
finished=$(date +%s.%N)
count=$(ls "$data"/*.png | wc -l)
predict_rate=$(python3 -c "print(f'{$count / ($finished - $started):.2f}')")
echo "cxr predict: $count images in $(python3 -c "print(f'{$finished - $started:.1f}')") s = $predict_rate images/s"

run_server() {
    local label=$1 query=$2
    local dir
    dir=$(mktemp -d)
    "$cxr" serve --bind "127.0.0.1:$port" --data-dir "$dir" 2> "$dir/server.log" &
    local pid=$!
    for _ in $(seq 1 300); do
        curl -fsS "http://127.0.0.1:$port/health" > /dev/null 2>&1 && break
        sleep 0.2
    done
    local idle_rss
    idle_rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
    local result
    result=$("$load" "http://127.0.0.1:$port" "$data" --clients "$clients" --seconds "$seconds" --query "$query")
    local rss
    rss=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
    kill -INT "$pid"
    wait "$pid"
    rm -rf "$dir"
    echo "cxr serve ($label): $result rss_at_start_mib=$((idle_rss / 1024)) peak_rss_mib=$((rss / 1024))"
    python3 -c "import json,sys; r=json.loads(sys.argv[1]); print(f'  throughput / predict = {r[\"images_per_second\"] / $predict_rate:.2f}')" "$result"
}

run_server "lung model off" "lungs=false"
run_server "lung model on" ""
