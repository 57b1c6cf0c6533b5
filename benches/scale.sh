#!/usr/bin/env bash
# Speed and scale, end to end, with generated inputs (issue 6). Reports index throughput,
# peak RSS, re-index time, query latency, ANN recall and ANN-at-scale figures, and, in the same
# run, czkawka_cli on the same JPEGs so that the comparison is a ratio from one invocation.
# Usage: benches/scale.sh [CAMERA_JPEGS=40] [SMALL_IMAGES=5000] [ANN_VECTORS=100000]
# Needs: /usr/bin/time; optional czkawka_cli on PATH (cargo install czkawka_cli).
set -euo pipefail
cd "$(dirname "$0")/.."
NCAM=${1:-40}; NSMALL=${2:-5000}; NANN=${3:-100000}
WORK=${SCALE_WORK:-/tmp/lookalike-scale}
mkdir -p "$WORK"
cargo build --release -q --examples --bin lookalike
BIN=target/release/lookalike; EX=target/release/examples
rss() { grep "Maximum resident" "$1" | awk '{printf "%.0f MB", $6/1024}'; }

echo "== corpus: $NCAM camera JPEGs 4000x3000 q92 with grain, $NSMALL small 384x256"
$EX/make_corpus "$WORK/camera" "$NCAM" 4000 3000 92
$EX/make_corpus "$WORK/small" "$NSMALL" 384 256 90

echo "== camera JPEGs: lookalike index"
rm -rf "$WORK/idx-cam"
/usr/bin/time -v $BIN -q --index-dir "$WORK/idx-cam" index "$WORK/camera" --json > "$WORK/cam.json" 2> "$WORK/cam.time"
python3 -c "import json;s=json.load(open('$WORK/cam.json'));print(f\"lookalike: {s['new']} images in {s['elapsed_secs']:.2f} s = {s['new']/s['elapsed_secs']:.1f} images/s\")"
echo "peak RSS $(rss "$WORK/cam.time")"
if command -v czkawka_cli >/dev/null; then
  echo "== camera JPEGs: czkawka_cli image (same files, cache off)"
  start=$(date +%s.%N)
  /usr/bin/time -v czkawka_cli image -d "$WORK/camera" -H > /dev/null 2> "$WORK/czk.time" || true
  end=$(date +%s.%N)
  python3 -c "t=$end-$start; print(f'czkawka_cli: $NCAM images in {t:.2f} s = {$NCAM/t:.1f} images/s')"
  echo "peak RSS $(rss "$WORK/czk.time")"
else
  echo "czkawka_cli not on PATH: no ratio (cargo install czkawka_cli)"
fi

echo "== small images: index, re-index"
rm -rf "$WORK/idx-small"
/usr/bin/time -v $BIN -q --index-dir "$WORK/idx-small" index "$WORK/small" --json > "$WORK/small.json" 2> "$WORK/small.time"
python3 -c "import json;s=json.load(open('$WORK/small.json'));print(f\"index: {s['new']} images in {s['elapsed_secs']:.2f} s = {s['new']/s['elapsed_secs']:.1f} images/s\")"
echo "peak RSS $(rss "$WORK/small.time")"
$BIN -q --index-dir "$WORK/idx-small" index "$WORK/small" --json > "$WORK/small2.json"
python3 -c "import json;s=json.load(open('$WORK/small2.json'));print(f\"re-index, nothing changed: {s['unchanged']} unchanged in {s['elapsed_secs']:.3f} s\")"

echo "== query latency (in process)"
$EX/query_latency "$WORK/idx-small" 200

echo "== ANN alone: $NANN vectors"
/usr/bin/time -v $EX/ann_scale "$NANN" 1594 500 2> "$WORK/ann.time"
echo "process peak RSS $(rss "$WORK/ann.time")"
