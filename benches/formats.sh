#!/usr/bin/env bash
# Decoding speed per format on camera-sized files (4032x3024, 12 MP): synthetic photo-like JPEGs
# and their HEIC, AVIF, JPEG XL (cjxl's default for JPEG input: lossless transcoding) and DNG
# copies (with a full-size preview, and four without), and four JPEG XL files encoded from
# pixels (VarDCT, quality 85), each decoded to the working image.
# Usage: benches/formats.sh [WORK_DIR] [COUNT]   (needs heif-enc, avifenc and cjxl:
# apt install libheif-examples libavif-bin libjxl-tools)
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${1:-target/formats-bench}
COUNT=${2:-8}
for tool in heif-enc avifenc cjxl; do
  command -v "$tool" >/dev/null || { echo "$tool not found: apt install libheif-examples libavif-bin libjxl-tools"; exit 1; }
done
cargo build --release --locked -q -p lookalike-tools --bin make_corpus --bin make_dng --bin decode_speed
BIN=${CARGO_TARGET_DIR:-target}/release
mkdir -p "$WORK"/{jpeg,heic,avif,jxl,jxl-pixels,dng,dng-sensor}
"$BIN/make_corpus" "$WORK/corpus" "$COUNT" 4032 3024 90
i=0
for f in $(find "$WORK/corpus" -name '*.jpg' | sort); do
  n=$(printf 'img%03d' "$i"); i=$((i + 1))
  cp "$f" "$WORK/jpeg/$n.jpg"
  [ -f "$WORK/heic/$n.heic" ] || heif-enc -q 80 -o "$WORK/heic/$n.heic" "$f" >/dev/null
  [ -f "$WORK/avif/$n.avif" ] || avifenc -s 8 -j all --min 20 --max 30 "$f" "$WORK/avif/$n.avif" >/dev/null
  [ -f "$WORK/jxl/$n.jxl" ] || cjxl --quiet "$f" "$WORK/jxl/$n.jxl"
  [ -f "$WORK/dng/$n.dng" ] || "$BIN/make_dng" "$f" "$WORK/dng/$n.dng"
  [ "$i" -gt 4 ] || [ -f "$WORK/dng-sensor/$n.dng" ] || "$BIN/make_dng" "$f" "$WORK/dng-sensor/$n.dng" --no-preview
  [ "$i" -gt 4 ] || [ -f "$WORK/jxl-pixels/$n.jxl" ] || cjxl --lossless_jpeg=0 -q 85 --quiet "$f" "$WORK/jxl-pixels/$n.jxl"
done
echo "commit $(git rev-parse --short HEAD), $(date -u +%Y-%m-%d), $(nproc) cores"
for d in jpeg heic avif jxl jxl-pixels dng dng-sensor; do
  echo "== $d"
  # Sensor data at 12 MP needs more than the default 512 MiB budget.
  "$BIN/decode_speed" "$WORK/$d" 1000 3 1024 | tail -n +2
done
