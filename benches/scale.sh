#!/usr/bin/env bash
# Speed and scale, end to end, with generated inputs (BENCHMARKS.md, "Speed and scale"). In one run:
#  1. camera-sized JPEGs (4000x3000 q92 with grain): lookalike, czkawka_cli before and after it
#     (ratio against their mean), and peer_baseline.py's Python pipelines where a venv is given;
#  2. small 384x256 JPEGs: index throughput (graph build included, and extraction alone) and
#     peak RSS, with the full profile then the fast one (ratio from the same run);
#  3. a collection of COLLECTION generated 160x120 variants: index, re-index with nothing
#     changed, index load, query latency with and without decoding the example, HNSW recall@10;
#     then 1% more images: re-index with the graph updated in place, and rebuilt in full;
#  4. the ANN alone on ANN_VECTORS clustered vectors at the graph's dimension (128: the index
#     stores PCA projections of the fused vectors; several beam widths from one build), and
#     on 100,000 vectors of 2149 floats (the full profile's fused dimension) projected by the
#     same PCA path as the index.
# Usage: benches/scale.sh [CAMERA_JPEGS=30] [SMALL=3000] [COLLECTION=100000] [ANN_VECTORS=1000000]
# Needs /usr/bin/time; optional: czkawka_cli on PATH (cargo install czkawka_cli), and
# PEER_PY=/path/to/python with numpy, opencv-python-headless, hnswlib, imagehash, pillow.
set -euo pipefail
cd "$(dirname "$0")/.."
NCAM=${1:-30}; NSMALL=${2:-3000}; NCOLL=${3:-100000}; NANN=${4:-1000000}
WORK=${SCALE_WORK:-${TMPDIR:-/tmp}/lookalike-scale}
mkdir -p "$WORK"
# The CLI and the measuring tools (make_corpus, query_latency, ann_scale) share one release
# folder ($CARGO_TARGET_DIR/release, or target/release).
cargo build --release -q -p lookalike -p lookalike-tools --bins
EX=${CARGO_TARGET_DIR:-target}/release; BIN=$EX/lookalike
rss() { grep "Maximum resident" "$1" | awk '{printf "%.0f MB", $6/1024}'; }
rate() { python3 -c "import json,sys;s=json.load(open('$1'));n=s['new']+s['updated'];print(f\"{n} images in {s['elapsed_secs']:.2f} s = {n/s['elapsed_secs']:.1f} images/s\")"; }
extraction_rate() { python3 -c "import json;print(f\"{json.load(open('$1'))['images_per_sec']:.1f} images/s\")"; }
czkawka() {
  local start end
  start=$(date +%s.%N)
  /usr/bin/time -v czkawka_cli image -d "$WORK/camera" -H -N -M -W > /dev/null 2> "$WORK/czk.time" || true
  end=$(date +%s.%N)
  python3 -c "print(f'{$NCAM/($end-$start):.2f}')"
}

echo "== corpus: $NCAM camera JPEGs 4000x3000 q92 with grain, $NSMALL small 384x256, $NCOLL at 160x120"
$EX/make_corpus "$WORK/camera" "$NCAM" 4000 3000 92
$EX/make_corpus "$WORK/small" "$NSMALL" 384 256 90
$EX/make_corpus "$WORK/collection" "$NCOLL" 160 120 90

echo "== 1. camera JPEGs"
if command -v czkawka_cli >/dev/null; then
  CZ1=$(czkawka); echo "czkawka_cli image (2 threads, cache off), before: $CZ1 images/s, peak RSS $(rss "$WORK/czk.time")"
fi
rm -rf "$WORK/idx-cam"
/usr/bin/time -v $BIN -q --index-dir "$WORK/idx-cam" index "$WORK/camera" --json > "$WORK/cam.json" 2> "$WORK/cam.time"
echo "lookalike index: $(rate "$WORK/cam.json"), peak RSS $(rss "$WORK/cam.time")"
if command -v czkawka_cli >/dev/null; then
  CZ2=$(czkawka); echo "czkawka_cli image, after: $CZ2 images/s"
  python3 -c "import json;s=json.load(open('$WORK/cam.json'));r=(s['new'])/s['elapsed_secs'];print(f'ratio lookalike / czkawka_cli (mean of both runs): {r/(($CZ1+$CZ2)/2):.2f}x')"
else
  echo "czkawka_cli not on PATH: no ratio (cargo install czkawka_cli)"
fi
if [ -n "${PEER_PY:-}" ]; then
  mkdir -p "$WORK/camera-ds/images"
  printf 'filename\tlabel\n' > "$WORK/camera-ds/groundtruth.tsv"
  i=0
  for f in $(find "$WORK/camera" -name '*.jpg' | sort); do
    ln -sf "$f" "$WORK/camera-ds/images/$(basename "$f")"
    printf '%s\t%d\n' "$(basename "$f")" "$i" >> "$WORK/camera-ds/groundtruth.tsv"; i=$((i+1))
  done
  echo "peer_baseline.py on the same JPEGs (its own throughput lines):"
  "$PEER_PY" ../shared/tools/peer_baseline.py "$WORK/camera-ds" 2>&1 | sed 's/^/  /'
fi

echo "== 2. small 384x256 JPEGs"
for profile in full fast; do
  rm -rf "$WORK/idx-small-$profile"
  /usr/bin/time -v $BIN -q --index-dir "$WORK/idx-small-$profile" index "$WORK/small" --profile $profile --json > "$WORK/small-$profile.json" 2> "$WORK/small-$profile.time"
  echo "index --profile $profile: $(rate "$WORK/small-$profile.json") ($(extraction_rate "$WORK/small-$profile.json") while extracting), peak RSS $(rss "$WORK/small-$profile.time")"
done
python3 -c "import json;r=[(lambda s:(s['new'])/s['elapsed_secs'])(json.load(open(f'$WORK/small-{p}.json'))) for p in ('full','fast')];print(f'ratio fast / full: {r[1]/r[0]:.2f}x')"

echo "== 3. collection of $NCOLL images"
rm -rf "$WORK/idx-coll"
/usr/bin/time -v $BIN -q --index-dir "$WORK/idx-coll" index "$WORK/collection" --json > "$WORK/coll.json" 2> "$WORK/coll.time"
echo "index: $(rate "$WORK/coll.json"), peak RSS $(rss "$WORK/coll.time")"
/usr/bin/time -v $BIN -q --index-dir "$WORK/idx-coll" index "$WORK/collection" --json > "$WORK/coll2.json" 2> "$WORK/coll2.time"
python3 -c "import json;s=json.load(open('$WORK/coll2.json'));print(f\"re-index, nothing changed: {s['unchanged']} unchanged in {s['elapsed_secs']:.2f} s (HNSW rebuilt: {s['ann_rebuilt']})\")"
echo "re-index peak RSS $(rss "$WORK/coll2.time")"
$BIN --index-dir "$WORK/idx-coll" status | grep hnsw
$EX/query_latency "$WORK/idx-coll" 300
# 1% more images: the graph is updated in place; then the same graph rebuilt in full, for the ratio.
NADD=$((NCOLL / 100))
$EX/make_corpus "$WORK/collection" $((NCOLL + NADD)) 160 120 90
/usr/bin/time -v $BIN -q --index-dir "$WORK/idx-coll" index "$WORK/collection" --json > "$WORK/coll3.json" 2> "$WORK/coll3.time"
/usr/bin/time -v $BIN -q --index-dir "$WORK/idx-coll" index "$WORK/collection" --rebuild-graph --json > "$WORK/coll4.json" 2> "$WORK/coll4.time"
python3 - "$WORK" <<'PY'
import json, sys
w = sys.argv[1]
up, rb = (json.load(open(f"{w}/coll{i}.json")) for i in (3, 4))
print(f"re-index after adding {up['new']} images: {up['elapsed_secs']:.2f} s, graph updated in place: {up['ann_updated']}")
print(f"same index, graph rebuilt in full (--rebuild-graph): {rb['elapsed_secs']:.2f} s; ratio {rb['elapsed_secs'] / up['elapsed_secs']:.1f}x")
PY
echo "peak RSS: update $(rss "$WORK/coll3.time"), rebuild $(rss "$WORK/coll4.time")"
$BIN --index-dir "$WORK/idx-coll" status | grep hnsw

echo "== 4. ANN alone"
# Vectors are generated from their id and streamed into the graph: the RSS is the graph's.
# After the index's own beam width, a few others show the recall / latency trade-off.
/usr/bin/time -v $EX/ann_scale "$NANN" 128 500 64 256 2> "$WORK/ann.time"
echo "process peak RSS $(rss "$WORK/ann.time")"
/usr/bin/time -v $EX/ann_scale 100000 2149 500 2> "$WORK/ann2.time"
echo "process peak RSS $(rss "$WORK/ann2.time")"
