#!/usr/bin/env bash
# Image restoration against scikit-image (padded input, best setting per image) on a fixed grid
# of 100 cases: 10 photos x 5 PSFs x 2 noise levels, plus sharp and pure-noise images; or, with
# --speed, whole-command times on a 1024x1024 image. The method is in restore_grid.py.
# Usage: benches/restore_grid.sh PHOTOS_DIR WORK_DIR [--quick] [--jobs N]
#        benches/restore_grid.sh --speed [PHOTOS_DIR] WORK_DIR [--runs N]
# Environment: LOOKALIKE (default target/release/lookalike), PYTHON (default python3).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
export LOOKALIKE=${LOOKALIKE:-$HERE/../target/release/lookalike}
export PYTHON=${PYTHON:-python3}
[ -x "$LOOKALIKE" ] || {
  echo "lookalike not found at $LOOKALIKE: run cargo build --release, or set LOOKALIKE" >&2
  exit 1
}
"$PYTHON" -c 'import numpy, scipy, PIL, skimage' 2>/dev/null || {
  echo "$PYTHON cannot import numpy, scipy, pillow and scikit-image; install them with" >&2
  echo "  python3 -m venv VENV && VENV/bin/pip install numpy scipy pillow scikit-image" >&2
  echo "and run with PYTHON=VENV/bin/python" >&2
  exit 1
}
exec "$PYTHON" "$HERE/restore_grid.py" "$@"
