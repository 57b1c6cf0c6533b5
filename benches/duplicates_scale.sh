#!/usr/bin/env bash
# `duplicates` on a large existing index (BENCHMARKS.md, "Duplicates"): COLLECTION generated
# 160x120 photos plus any folders given (real photos, so that real copies are among them) are
# indexed once; then `duplicates --json` runs RUNS times on the built index, each timed as a
# whole command (wall seconds and peak RSS), at the default similarity and at `loose`.
# Usage: benches/duplicates_scale.sh [COLLECTION=100000] [RUNS=3] [FOLDER...]
# Needs /usr/bin/time. WORK (default: a folder under TMPDIR) keeps the collection and its
# index between runs.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}; RUNS=${2:-3}; shift 2 || shift $#
WORK=${WORK:-${TMPDIR:-/tmp}/lookalike-duplicates-scale}
TARGET=${CARGO_TARGET_DIR:-target}
cargo build --release -q -p lookalike -p lookalike-tools --bins
BIN=$TARGET/release/lookalike
mkdir -p "$WORK"
"$TARGET/release/make_corpus" "$WORK/collection" "$N" 160 120 90
/usr/bin/time -v "$BIN" -q --index-dir "$WORK/idx" index "$WORK/collection" "$@" --json \
  > "$WORK/index.json" 2> "$WORK/index.time"
python3 -c "import json;s=json.load(open('$WORK/index.json'));print(f\"index: {s['new']+s['updated']} new, {s['unchanged']} unchanged, {s['elapsed_secs']:.1f} s\")"
for similarity in default loose; do
  for run in $(seq "$RUNS"); do
    /usr/bin/time -v "$BIN" -q --index-dir "$WORK/idx" duplicates --similarity "$similarity" \
      --json > "$WORK/dups.json" 2> "$WORK/dups.time"
    python3 - "$WORK/dups.json" "$WORK/dups.time" "$similarity" "$run" <<'EOF'
import json, re, sys
listing = json.load(open(sys.argv[1]))
timing = open(sys.argv[2]).read()
wall = re.search(r"Elapsed \(wall clock\) time .*: (?:(\d+):)?(\d+):([\d.]+)", timing)
seconds = int(wall.group(1) or 0) * 3600 + int(wall.group(2)) * 60 + float(wall.group(3))
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", timing).group(1)) / 1024
print(f"duplicates --similarity {sys.argv[3]} run {sys.argv[4]}: {listing['images']} images, "
      f"{len(listing['groups'])} groups, {listing['copies']} copies, {seconds:.2f} s, "
      f"peak RSS {rss:.0f} MB")
EOF
  done
done
