#!/usr/bin/env bash
# `duplicates` on a fresh folder, index included, against czkawka_cli on the same files in the
# same run (BENCHMARKS.md, "Duplicates"): for each folder and round, lookalike with a new index
# folder, then czkawka_cli without its cache at its default setting and at its best one for
# edited copies (-s 40, its maximum, with mirror, flip and quarter-turn invariance). Wall seconds, peak RSS.
# Each folder is read once by both tools before the timed rounds, so that none of them pays
# for a cold page cache.
# Usage: benches/duplicates_fresh.sh FOLDER... (ROUNDS=2)
# Needs: a release build (cargo build --release), czkawka_cli on PATH, /usr/bin/time.
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: benches/duplicates_fresh.sh FOLDER..." >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
bin=${LOOKALIKE:-$here/../target/release/lookalike}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
timed() { # LABEL COMMAND...: runs it, prints the label, wall seconds and peak RSS
  local label=$1; shift
  /usr/bin/time -f "$label: %e s, peak RSS %M KB" "$@" > /dev/null 2> "$work/time" || true
  tail -1 "$work/time"
}
for folder in "$@"; do
  rm -rf "$work/index"
  "$bin" -q --index-dir "$work/index" duplicates "$folder" --json > /dev/null || true
  czkawka_cli image -d "$folder" -m 1 -H -W -N -M -C "$work/czk.json" > /dev/null 2>&1 || true
  for round in $(seq "${ROUNDS:-2}"); do
    rm -rf "$work/index"
    timed "lookalike duplicates $folder (round $round)" \
      "$bin" -q --index-dir "$work/index" duplicates "$folder" --json
    timed "czkawka_cli default $folder (round $round)" \
      czkawka_cli image -d "$folder" -m 1 -H -W -N -M -C "$work/czk.json"
    timed "czkawka_cli -s 40 mirror-flip-rotate90 $folder (round $round)" \
      czkawka_cli image -d "$folder" -m 1 -H -W -N -M -C "$work/czk.json" -s 40 \
      --geometric-invariance mirror-flip-rotate90
  done
done
