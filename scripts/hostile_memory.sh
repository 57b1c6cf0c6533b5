#!/usr/bin/env bash
# Peak memory of `lookalike index` on hostile inputs: a 42-byte GIF whose logical screen is
# 14000x14000 (four copies), a small JPEG claiming 14000x14000, a sparse 1.5 GB file named .jpg,
# a FIFO named .jpg, and a symbolic link to /dev/zero named .jpg. Each must be refused (or
# skipped) while the peak resident set stays under the decode budget (512 MiB) per worker.
# Usage: scripts/hostile_memory.sh [THREADS]   (default 4)
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=${1:-4}
[ -x /usr/bin/time ] || { echo "installing /usr/bin/time (package time)"; apt-get install -y -q time >/dev/null; }
cargo build --release -q
BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/lookalike
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
DIR=$WORK/hostile
mkdir -p "$DIR"
python3 - "$DIR" <<'PY'
import struct, sys, io, os
d = sys.argv[1]
side = struct.pack('<HH', 14000, 14000)
gif = (b'GIF89a' + side + bytes([0x80, 0, 0, 0, 0, 0, 255, 255, 255])
       + bytes([0x2C, 0, 0, 0, 0, 1, 0, 1, 0, 0]) + bytes([2, 2, 0x4C, 0x01, 0, 0x3B]))
for i in range(4):
    open(os.path.join(d, f'screen{i}.gif'), 'wb').write(gif)
# A baseline JPEG of 64x64 grey blocks, its frame header rewritten to 14000x14000: the
# smallest valid file (SOI, DQT, SOF0, DHT, SOS, data, EOI), built without any library.
def seg(marker, body): return bytes([0xFF, marker]) + struct.pack('>H', len(body) + 2) + body
dqt = seg(0xDB, b'\x00' + bytes([1] * 64))
sof = seg(0xC0, b'\x08' + struct.pack('>HH', 14000, 14000) + b'\x01\x01\x11\x00')
# DC table: one code (length 1) for category 0; AC table: one code (length 1) for EOB.
dht = seg(0xC4, b'\x00' + bytes([1] + [0] * 15) + b'\x00') + seg(0xC4, b'\x10' + bytes([1] + [0] * 15) + b'\x00')
sos = seg(0xDA, b'\x01\x01\x00\x00\x3f\x00')
data = bytes([0x00] * 29000)  # 2 bits a block: covers 116000 of 3062500 blocks
open(os.path.join(d, 'liar.jpg'), 'wb').write(b'\xff\xd8' + dqt + sof + dht + sos + data + b'\xff\xd9')
PY
truncate -s 1500M "$DIR/big1.jpg"
truncate -s 1500M "$DIR/big2.jpg"
mkfifo "$DIR/pipe.jpg"
ln -s /dev/zero "$DIR/zero.jpg"
ls -l "$DIR"
echo "== index --follow-symlinks --threads $THREADS"
set +e
/usr/bin/time -v "$BIN" --index-dir "$WORK/idx" index "$DIR" --follow-symlinks --threads "$THREADS" 2> "$WORK/err"
code=$?
set -e
grep -v -E '^\s+(Average|Exit|Socket|Signals|Swaps|File system|Page size|Voluntary|Involuntary|Minor|Major|Percent|Elapsed|User time|System time|Command)' "$WORK/err"
echo "exit status $code (3: some files failed, as expected)"
rss_kb=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$WORK/err")
echo "peak RSS: $((rss_kb / 1024)) MiB with $THREADS threads (budget 512 MiB per worker)"
