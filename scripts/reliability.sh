#!/usr/bin/env bash
# Reliability checks that are too slow or too timing-dependent for `cargo test`:
#   1. kill -9 at random moments during `index`, repeated; then a normal run must leave a sound
#      database with every image indexed exactly once;
#   2. Ctrl-C (SIGINT) stops cleanly, says how to resume, keeps what was extracted;
#   3. `query` keeps answering while `index` runs on the same collection;
#   4. a second concurrent `index` on the same collection is refused with a clear message.
# Usage: scripts/reliability.sh [IMAGE_DIR] [ROUNDS]   (default: ../shared/datasets/wang/images, 20)
set -uo pipefail
cd "$(dirname "$0")/.."
SRC=${1:-../shared/datasets/wang/images}
ROUNDS=${2:-20}
[ -d "$SRC" ] || SRC=sample_data
cargo build --release -q || exit 1
BIN=$PWD/target/release/lookalike
WORK=$(mktemp -d)
IDX=$WORK/idx
fail=0
expected=$(find "$SRC" -type f \( -iname '*.jpg' -o -iname '*.jpeg' -o -iname '*.png' \) | wc -l)
echo "corpus: $SRC ($expected images); work dir $WORK"

echo "== 1. kill -9 loop ($ROUNDS rounds)"
for i in $(seq "$ROUNDS"); do
  "$BIN" --index-dir "$IDX" -q index "$SRC" >/dev/null 2>&1 &
  pid=$!
  sleep "$(python3 -c "import random; print(round(random.uniform(0.05, 3.0), 3))")"
  kill -9 "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
done
"$BIN" --index-dir "$IDX" index "$SRC" --json > "$WORK/final.json" 2> "$WORK/final.err"
python3 - "$IDX/lookalike.db" "$expected" "$WORK/final.json" <<'PY' || fail=1
import json, sqlite3, sys
db, expected, summary = sys.argv[1], int(sys.argv[2]), json.load(open(sys.argv[3]))
c = sqlite3.connect(db)
ok = c.execute("PRAGMA integrity_check").fetchone()[0]
images = c.execute("SELECT COUNT(*) FROM images").fetchone()[0]
distinct = c.execute("SELECT COUNT(DISTINCT root_id || '/' || hex(rel_path)) FROM images").fetchone()[0]
nofeat = c.execute("SELECT COUNT(*) FROM images WHERE id NOT IN (SELECT image_id FROM features)").fetchone()[0]
print(f"integrity_check={ok} images={images} distinct_paths={distinct} expected={expected} "
      f"images_without_features={nofeat} final_run: new={summary['new']} unchanged={summary['unchanged']} failed={len(summary['failed'])}")
sys.exit(0 if ok == "ok" and images == distinct == expected and nofeat == 0 else 1)
PY
"$BIN" --index-dir "$IDX" status --check | grep -E "integrity|hnsw" || fail=1

echo "== 2. Ctrl-C"
rm -rf "$IDX"
"$BIN" --index-dir "$IDX" index "$SRC" > /dev/null 2> "$WORK/int.err" &
pid=$!
sleep 1.0
kill -INT "$pid"
wait "$pid"; code=$?
kept=$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from images').fetchone()[0])" "$IDX/lookalike.db")
echo "exit=$code kept=$kept; stderr: $(grep -o 'interrupted.*' "$WORK/int.err")"
[ "$code" = 130 ] && grep -q "run the same command again" "$WORK/int.err" || fail=1
"$BIN" --index-dir "$IDX" -q index "$SRC" --json | python3 -c "import json,sys; s=json.load(sys.stdin); print(f\"resume: new={s['new']} unchanged={s['unchanged']} total={s['total_images']}\"); sys.exit(0 if s['total_images']==$expected else 1)" || fail=1

echo "== 3. queries during indexing, 4. second writer"
rm -rf "$IDX"
"$BIN" --index-dir "$IDX" -q index sample_data >/dev/null 2>&1
"$BIN" --index-dir "$IDX" -q index "$SRC" >/dev/null 2>&1 &
pid=$!
sleep 0.3
qok=0; qfail=0
second=$("$BIN" --index-dir "$IDX" index "$SRC" 2>&1 >/dev/null); second_code=$?
while kill -0 "$pid" 2>/dev/null; do
  if "$BIN" --index-dir "$IDX" query sample_data/coffee/original.jpg -k 3 >/dev/null 2>"$WORK/q.err"; then
    qok=$((qok+1)); else qfail=$((qfail+1)); cat "$WORK/q.err"; fi
done
wait "$pid"
echo "queries while indexing: $qok ok, $qfail failed"
echo "second index: exit=$second_code: $second"
[ "$qfail" = 0 ] && [ "$qok" -gt 0 ] || fail=1
[ "$second_code" != 0 ] && echo "$second" | grep -q "another" || fail=1

rm -rf "$WORK"
[ "$fail" = 0 ] && echo "ALL RELIABILITY CHECKS PASSED" || { echo "SOME CHECKS FAILED"; exit 1; }
