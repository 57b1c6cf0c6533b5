"""Blind restoration of motion blur of 16-18 px, of a 30 px line shrunk to 60%, and of lines of
50-60 px: is the line read at its length and angle (not as a multiple of it, nor at another
angle), and is the output never worse than its input?

Cases: six photos (camera, coffee, horse, astronaut, chelsea, brick, as they are in the photos
folder) blurred by lines of 16, 17 and 18 px at 0, 30, 60 and 90 degrees, noise 0.002 (72); and
coffee, astronaut and camera blurred by a 30 px line at 30 degrees, then photo and blurred copy
shrunk to 60% by Lanczos, bilinear and box filters (9). Each blurred by `lookalike blur` (seeds
1-3) and restored blind by `lookalike deblur --json`; PSNR against the sharp photo (or its shrunk
copy); and the six photos blurred by lines of 50, 55 and 60 px at 0, 10, 90 and 170 degrees,
noise 0.002 (72). "Worse": the output more than 0.05 dB under its input.

Usage: python3 benches/restore_short_lines.py PHOTOS_DIR WORK_DIR
Environment: LOOKALIKE (default target/release/lookalike). Needs numpy, pillow, scikit-image.
"""
import json
import os
import subprocess
import sys

import numpy as np
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio as psnr

HERE = os.path.dirname(os.path.abspath(__file__))
LOOKALIKE = os.environ.get("LOOKALIKE", os.path.join(HERE, "..", "target", "release", "lookalike"))
PHOTOS = ["camera", "coffee", "horse", "astronaut", "chelsea", "brick"]
FILTERS = [("lanczos", Image.LANCZOS), ("bilinear", Image.BILINEAR), ("box", Image.BOX)]


def load(path):
    return np.asarray(Image.open(path)).astype(np.float64) / 255


def lookalike(*args):
    return subprocess.run([LOOKALIKE, *args], capture_output=True, text=True, check=True)


def restore(sharp, blurred, restored):
    doc = json.loads(lookalike("deblur", blurred, restored, "--json").stdout)
    before = psnr(load(sharp), load(blurred), data_range=1)
    after = psnr(load(sharp), load(restored), data_range=1)
    return doc["psf"], before, after


def line_cases(group, photos, work, lengths, angles):
    """Rows of `group`: each photo blurred by a line of each length and angle (noise 0.002,
    seeds 1-3 in turn) and restored blind."""
    rows = []
    for i, (photo, length, angle) in enumerate(
        (p, l, a) for p in PHOTOS for l in lengths for a in angles
    ):
        sharp = os.path.join(photos, f"{photo}.png")
        blurred = os.path.join(work, f"b_{photo}_{length}_{angle}.png")
        if not os.path.exists(blurred):
            lookalike("-q", "blur", sharp, blurred, "--psf", f"motion:{length},{angle}",
                      "--noise", "0.002", "--seed", str(1 + i % 3))
        psf, before, after = restore(sharp, blurred, os.path.join(work, f"r_{photo}_{length}_{angle}.png"))
        rows.append((group, f"{photo} motion:{length},{angle}", length, angle, psf, before, after))
    return rows


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    photos, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    rows = line_cases("lines", photos, work, (16, 17, 18), (0, 30, 60, 90))
    for photo in ["coffee", "astronaut", "camera"]:
        blurred = os.path.join(work, f"m30_{photo}.png")
        if not os.path.exists(blurred):
            lookalike("-q", "blur", os.path.join(photos, f"{photo}.png"), blurred, "--psf",
                      "motion:30,30", "--noise", "0.002", "--seed", "1")
        for name, resample in FILTERS:
            pair = []
            for src, tag in [(os.path.join(photos, f"{photo}.png"), "s"), (blurred, "b")]:
                image = Image.open(src)
                out = os.path.join(work, f"{tag}_{photo}_{name}.png")
                image.resize((int(image.width * 0.6), int(image.height * 0.6)), resample).save(out)
                pair.append(out)
            psf, before, after = restore(*pair, os.path.join(work, f"r_{photo}_{name}.png"))
            rows.append(("shrunk", f"{photo} 60% {name}", 18, 30, psf, before, after))
    rows += line_cases("long", photos, work, (50, 55, 60), (0, 10, 90, 170))
    for group in ["lines", "shrunk", "long"]:
        cases = [r for r in rows if r[0] == group]
        right = sum(1 for r in cases if is_right(r[4], r[2], r[3]))
        worse = [r for r in cases if r[6] < r[5] - 0.05]
        gain = np.mean([r[6] - r[5] for r in cases])
        print(f"{group}: {len(cases)} cases, line right {right}, worse than input {len(worse)}, "
              f"mean gain {gain:+.2f} dB")
        for r in worse:
            print(f"  worse: {r[1]} read {r[4]}: {r[5]:.2f} -> {r[6]:.2f} dB")


def is_right(psf, length, angle):
    """A line within 15% of `length` and 10 degrees of `angle`."""
    if not psf.startswith("motion:"):
        return False
    got_length, got_angle = (float(v) for v in psf.split(":")[1].split(","))
    off = (got_angle - angle) % 180
    return abs(got_length - length) <= 0.15 * length and min(off, 180 - off) <= 10


if __name__ == "__main__":
    main()
