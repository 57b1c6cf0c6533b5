#!/usr/bin/env bash
# Blind restoration on 20 photos the estimate was not tuned on (retina and 19 Wang photos),
# whole and as small crops: blur found, loss against the true PSF, outputs under their input,
# sharp images left unchanged. The method is in restore_heldout.py.
# Usage: benches/restore_heldout.sh PHOTOS_DIR WANG_DIR WORK_DIR [--jobs N]
# Environment: LOOKALIKE (default target/release/lookalike), PYTHON (default python3).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
export LOOKALIKE=${LOOKALIKE:-$HERE/../target/release/lookalike}
PYTHON=${PYTHON:-python3}
[ -x "$LOOKALIKE" ] || {
  echo "lookalike not found at $LOOKALIKE: run cargo build --release, or set LOOKALIKE" >&2
  exit 1
}
"$PYTHON" -c 'import numpy, scipy, PIL, skimage' 2>/dev/null || {
  echo "$PYTHON cannot import numpy, scipy, pillow and scikit-image (restore_grid.py, whose rules" >&2
  echo "this shares, needs them); install them with" >&2
  echo "  python3 -m venv VENV && VENV/bin/pip install numpy scipy pillow scikit-image" >&2
  echo "and run with PYTHON=VENV/bin/python" >&2
  exit 1
}
exec "$PYTHON" "$HERE/restore_heldout.py" "$@"
