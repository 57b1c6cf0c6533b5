"""Blind blur estimation on PNG and JPEG inputs: is the blur found, and does the blind
restoration gain over its input?

Cases (from the photos folder, prepared as restore_grid.py prepares them: grey but for coffee
and chelsea, centre-cropped to at most 512x512):
  L   lines of 20-45 px at five angles, noise 0.002 and 0.01, on five photos, PNG (50)
  J   Gaussians of sigma 1-3 and disks of radius 3 and 5 at noise 0.002, on six photos, saved as
      JPEG at quality 75, 90 and 95 by Pillow (90): no line may be read there
  JM  lines of 25-45 px at noise 0.002 on five photos, saved as JPEG at quality 75 and 90 (40)
  S   the sharp photos as PNG and as JPEG at quality 85 (20): read as not blurred
Each is blurred by `lookalike blur --seed 1` and restored blind by `lookalike deblur --json`;
"found" means the right family, the size within 15% and a line's angle within 10 degrees.

Usage: python3 benches/restore_blind.py PHOTOS_DIR WORK_DIR [--jobs N]
Environment: LOOKALIKE (default target/release/lookalike). Needs what restore_grid.py needs.
"""
import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
# the grid's photos, prepared as the grid prepares them, and its rule for a right estimate
from restore_grid import COLOUR, GREY, LOOKALIKE, prepare  # noqa: E402
from restore_grid import found as grid_found  # noqa: E402

LINES = ["25,60", "45,120", "30,10", "20,80", "35,150"]


def blur(src, out, psf, noise):
    if not os.path.exists(out):
        subprocess.run([LOOKALIKE, "blur", src, out, "--psf", psf, "--noise", str(noise),
                        "--seed", "1"], check=True, capture_output=True)
    return out


def jpeg(src, out, quality):
    if not os.path.exists(out):
        Image.open(src).save(out, quality=quality)
    return out


def cases(photos, work):
    for d in ("orig", "in", "out"):
        os.makedirs(os.path.join(work, d), exist_ok=True)
    orig = {p: prepare(photos, work, p) for p in GREY + COLOUR}
    inp = lambda name: os.path.join(work, "in", name)
    out = []
    for p in ["camera", "astronaut", "grass", "horse", "rocket"]:
        for line in LINES:
            for n in (0.002, 0.01):
                f = blur(orig[p], inp(f"L_{p}_{line.replace(',', '_')}_{n}.png"), "motion:" + line, n)
                out.append(("L png", f, "motion:" + line, orig[p]))
    for p in ["camera", "astronaut", "horse", "rocket", "coffee", "brick"]:
        for psf in ["gaussian:1", "gaussian:2", "gaussian:3", "disk:3", "disk:5"]:
            b = blur(orig[p], inp(f"J_{p}_{psf.replace(':', '')}.png"), psf, 0.002)
            for q in (75, 90, 95):
                f = jpeg(b, inp(f"J_{p}_{psf.replace(':', '')}_q{q}.jpg"), q)
                out.append((f"J q{q}", f, psf, orig[p]))
    for p in ["camera", "astronaut", "horse", "rocket", "coffee"]:
        for line in ["25,60", "35,150", "30,10", "45,120"]:
            b = blur(orig[p], inp(f"M_{p}_{line.replace(',', '_')}.png"), "motion:" + line, 0.002)
            for q in (75, 90):
                f = jpeg(b, inp(f"M_{p}_{line.replace(',', '_')}_q{q}.jpg"), q)
                out.append((f"JM q{q}", f, "motion:" + line, orig[p]))
    for p in GREY + COLOUR:
        out.append(("S png", orig[p], "none", orig[p]))
        out.append(("S jpeg", jpeg(orig[p], inp(f"S_{p}_q85.jpg"), 85), "none", orig[p]))
    return out


def spec(e):
    k = e["kind"]
    if k == "gaussian":
        return f"gaussian:{e['sigma']:.2f}"
    if k == "disk":
        return f"disk:{e['radius']:.2f}"
    if k == "motion":
        return f"motion:{e['length']:.2f},{e['angle_deg']:.2f}"
    return "none"


def found(true, est):
    if true == "none" or est == "none":
        return true == est
    return grid_found(true, est)


def psnr(ref, x):
    mse = np.mean((ref.astype(np.float64) - x.astype(np.float64)) ** 2)
    return 10 * np.log10(255.0 ** 2 / max(mse, 1e-12))


def run(work, case):
    group, path, truth, orig = case
    out = os.path.join(work, "out", os.path.basename(path) + ".png")
    r = subprocess.run([LOOKALIKE, "deblur", path, out, "--json"], capture_output=True, text=True)
    if r.returncode != 0:
        return dict(group=group, path=path, truth=truth, est="error: " + r.stderr.strip(), found=False)
    est = spec(json.loads(r.stdout)["estimate"])
    mode = "RGB" if any(c in path for c in COLOUR) else "L"
    ref = np.asarray(Image.open(orig).convert(mode))
    gain = psnr(ref, np.asarray(Image.open(out).convert(mode))) - psnr(
        ref, np.asarray(Image.open(path).convert(mode)))
    return dict(group=group, path=path, truth=truth, est=est, found=found(truth, est), gain=gain)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("photos")
    ap.add_argument("work")
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    if not os.access(LOOKALIKE, os.X_OK):
        sys.exit(f"lookalike not found at {LOOKALIKE}: run cargo build --release, or set LOOKALIKE")
    todo = cases(args.photos, args.work)
    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda c: run(args.work, c), todo))
    with open(os.path.join(args.work, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    print("| inputs | cases | found | read as a line | mean gain over input (dB) | worst | under input by > 0.05 dB |")
    print("|---|---|---|---|---|---|---|")
    groups = {}
    for r in results:
        groups.setdefault(r["group"], []).append(r)
    for g, rs in groups.items():
        gains = [r["gain"] for r in rs if "gain" in r]
        lines = sum(r["est"].startswith("motion") for r in rs)
        under = sum(x < -0.05 for x in gains)
        print(f"| {g} | {len(rs)} | {sum(r['found'] for r in rs)} | {lines} | "
              f"{np.mean(gains):.2f} | {min(gains):.2f} | {under} |")
    for r in results:
        if not r["found"]:
            print(f"miss: {os.path.basename(r['path'])} {r['truth']} -> {r['est']}"
                  + (f" ({r['gain']:+.2f} dB)" if "gain" in r else ""))


if __name__ == "__main__":
    main()
