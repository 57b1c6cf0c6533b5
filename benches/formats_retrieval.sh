#!/usr/bin/env bash
# HEIC, AVIF, JPEG XL (transcoded and from pixels) and DNG copies of a folder of photos: index
# the copies (expect no failures), then query each copy against an index of the JPEG originals
# and count how often the first hit is its own original.
# Usage: benches/formats_retrieval.sh PHOTOS_DIR [WORK_DIR]   (needs heif-enc, avifenc, cjxl)
set -euo pipefail
cd "$(dirname "$0")/.."
PHOTOS=${1:?usage: benches/formats_retrieval.sh PHOTOS_DIR [WORK_DIR]}
WORK=${2:-target/formats-retrieval}
cargo build --release --locked -q -p lookalike -p lookalike-tools
BIN=${CARGO_TARGET_DIR:-target}/release
rm -rf "$WORK"; mkdir -p "$WORK"/{originals,copies}
for f in "$PHOTOS"/*.jpg "$PHOTOS"/*.jpeg "$PHOTOS"/*.png; do
  [ -f "$f" ] || continue
  n=$(basename "${f%.*}")
  o="$WORK/originals/$n.jpg"
  "$BIN/to_jpeg" "$f" "$o"
  heif-enc -q 80 -o "$WORK/copies/$n.heic" "$o" >/dev/null
  avifenc -s 8 --min 20 --max 30 "$o" "$WORK/copies/$n.avif" >/dev/null
  cjxl --quiet "$o" "$WORK/copies/$n.jxl"
  cjxl --quiet --lossless_jpeg=0 -q 85 "$o" "$WORK/copies/$n-pixels.jxl"
  "$BIN/make_dng" "$o" "$WORK/copies/$n.dng"
  "$BIN/make_dng" "$o" "$WORK/copies/$n-sensor.dng" --no-preview
done
echo "commit $(git rev-parse --short HEAD), $(date -u +%Y-%m-%d)"
"$BIN/lookalike" --index-dir "$WORK/copies-index" index "$WORK/copies" 2>&1 | tail -n 2
"$BIN/lookalike" --index-dir "$WORK/originals-index" -q index "$WORK/originals"
total=0; first=0
for c in "$WORK"/copies/*; do
  name=$(basename "$c"); stem=${name%%.*}; stem=${stem%-pixels}; stem=${stem%-sensor}
  hit=$("$BIN/lookalike" --index-dir "$WORK/originals-index" query "$c" -k 1 --json \
    | grep -m1 '"path"' | sed 's/.*"path": "\(.*\)".*/\1/')
  total=$((total + 1))
  if [ "$(basename "$hit")" = "$stem.jpg" ]; then first=$((first + 1)); else echo "missed: $name -> $hit"; fi
done
echo "first hit is the original: $first of $total copies"
