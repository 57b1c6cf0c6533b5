#!/usr/bin/env bash
# The model-based mirror test at length: random file operations on a temp tree, `index`
# between them (sometimes killed), the database checked against a model of the disk.
# Usage: benches/mirror_model.sh [OPS_PER_SEED] [SEEDS]   (default: 2500 ops x seeds 11,12,13,14)
# Prints each seed's result; on a divergence, the seed and the last steps, and exits non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."
ops="${1:-2500}"
seeds="${2:-11,12,13,14}"
start=$(date +%s)
set +e
LOOKALIKE_MODEL_OPS="$ops" LOOKALIKE_MODEL_SEEDS="$seeds" \
  cargo test --release --locked --test mirror_model -- --nocapture 2>&1 |
  grep -E "^seed|panicked|test result|last steps|^  "
status=${PIPESTATUS[0]}
set -e
n=$(( ops * $(echo "$seeds" | tr ',' '\n' | wc -l) ))
echo "mirror model: $n operations over seeds $seeds at commit $(git rev-parse --short HEAD) in $(( $(date +%s) - start )) s"
exit "$status"
