#!/usr/bin/env bash
# Duplicates benchmark with its peers in one run: plants edited copies of photos from a folder
# (`lookalike eval --duplicates`), then scores lookalike, czkawka_cli (default and best
# setting) and pHash (best threshold) on the same files with benches/duplicates_score.py.
# Usage: benches/duplicates.sh SOURCE_FOLDER [ORIGINALS] [EDITS] [SEED]
# Needs: a release build (cargo build --release), czkawka_cli on PATH, and a Python with
# imagehash and pillow ($PYTHON, default python3).
set -euo pipefail
src=${1:?usage: benches/duplicates.sh SOURCE_FOLDER [ORIGINALS] [EDITS] [SEED]}
originals=${2:-150}
edits=${3:-4}
seed=${4:-1}
here=$(cd "$(dirname "$0")" && pwd)
bin=${LOOKALIKE:-$here/../target/release/lookalike}
py=${PYTHON:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
files=$work/files

echo "== lookalike (index + duplicates, default similarity)"
"$bin" --index-dir "$work/index" eval --duplicates "$src" --sample "$originals" --edits "$edits" \
  --seed "$seed" --work "$files"
echo "== lookalike duplicates alone on the built index"
start=$(date +%s.%N)
"$bin" --index-dir "$work/index" duplicates --json > "$work/lookalike.json"
echo "seconds: $(echo "$(date +%s.%N) - $start" | bc)"
"$py" "$here/duplicates_score.py" "$files" --lookalike "$work/lookalike.json" --brief

run_czkawka() {
  local label=$1; shift
  echo "== czkawka_cli $label"
  local start; start=$(date +%s.%N)
  czkawka_cli image -d "$files" -m 1 -H -W -N -M -C "$work/czk.json" "$@" > /dev/null 2>&1 || true
  echo "seconds: $(echo "$(date +%s.%N) - $start" | bc)"
  "$py" "$here/duplicates_score.py" "$files" --czkawka "$work/czk.json" --brief
}
run_czkawka "default (-s 5)"
for s in 10 15 20 25 30 35 40; do
  run_czkawka "-s $s, mirror-flip-rotate90" -s "$s" --geometric-invariance mirror-flip-rotate90
done

echo "== pHash (imagehash), best Hamming threshold"
"$py" "$here/phash_groups.py" "$files"
