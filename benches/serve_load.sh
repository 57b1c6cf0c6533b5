#!/usr/bin/env bash
# `lookalike serve` under load (BENCHMARKS.md, "Web app"): an index of COLLECTION generated
# 160x120 photos (full profile, thumbnails included), the server on a free loopback port, then
# benches/serve_load.py: query-page latency one at a time, 200 concurrent mixed requests, then
# pages requested while `index` adds 1% more images.
# Usage: benches/serve_load.sh [COLLECTION=100000]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}; shift || true
WORK=${SERVE_WORK:-${TMPDIR:-/tmp}/lookalike-serve-load}
TARGET=${CARGO_TARGET_DIR:-target}
cargo build --release -q -p lookalike -p lookalike-tools --bins
BIN=$TARGET/release/lookalike
mkdir -p "$WORK"
"$TARGET/release/make_corpus" "$WORK/collection" "$N" 160 120 90
start=$(date +%s.%N)
$BIN -q --index-dir "$WORK/idx" index "$WORK/collection" --json > "$WORK/index.json"
python3 -c "import json;s=json.load(open('$WORK/index.json'));print(f\"indexed {s['new']+s['updated']} new images in {s['elapsed_secs']:.1f} s\")"
$BIN -q --index-dir "$WORK/idx" serve --port 0 > "$WORK/url" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -s "$WORK/url" ] && break; sleep 0.1; done
URL=$(head -1 "$WORK/url")
python3 benches/serve_load.py "$URL" sample_data/camera/blur.jpg "$@"
# Then 1% more images, indexed while the server answers.
EXTRA=$((N + N / 100))
"$TARGET/release/make_corpus" "$WORK/collection" "$EXTRA" 160 120 90
$BIN -q --index-dir "$WORK/idx" index "$WORK/collection" > /dev/null &
INDEXER=$!
python3 benches/serve_load.py "$URL" sample_data/camera/blur.jpg --queries 0 --concurrency 0 --poll-while "$INDEXER"
wait "$INDEXER"
