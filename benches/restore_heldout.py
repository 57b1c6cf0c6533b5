#!/usr/bin/env python3
"""Blind restoration on photos the estimate was not tuned on: is the blur found, how much is
lost against the true PSF, and is any blind output worse than its blurred input?

Photos (20, none of them in the restoration grid): PHOTOS_DIR/retina.jpg (grey, resized with
Lanczos to 512 on its longer side) and 19 from WANG_DIR/images (the Wang/SIMPLIcity set, JPEGs of
384x256): ids 5, 55, 105, 155, ..., 905 (two per class of 100). Photos at an even place in that
list (retina first) are made grey with PIL `convert("L")`, the others kept in colour. Each is
decoded once and written as PNG to WORK/orig/ (the JPEGs' 8-pixel block grid stays in it).

Cases, each blurred by `lookalike blur ORIG WORK/blurred/CASE.png --psf SPEC --noise N --seed 1`:
- full: every photo x gaussian:1, gaussian:2, gaussian:3, disk:3, motion:15,30 x noise 0.002
  and 0.01 (the restoration grid's 10 cases): 200 cases;
- crops: the first 10 photos centre-cropped to squares of 128, 160 and 256 pixels x disk:5,
  disk:6, gaussian:2, motion:15,30 x noise 0.002 and 0.01: 240 cases.
Each blurred input is restored twice: blind (`lookalike deblur B OUT --json`, the PSF read is
the JSON field `psf`) and with the true PSF (`lookalike deblur B OUT --psf SPEC --json`), both
with the default method. PSNR (data range 1, over every value) of each output, read back from
its 8-bit PNG, against the prepared original. "Found": the right family, size within 15%,
motion angle within 10 degrees (as benches/restore_grid.py counts). "Below input": the blind
output more than 0.05 dB under the blurred input.

Sharp: every prepared original and every crop deblurred blind as it is: reported as not
blurred (`psf` none), and the output the input, pixel for pixel?

Usage: benches/restore_heldout.sh PHOTOS_DIR WANG_DIR WORK [--jobs N]
Environment: LOOKALIKE (default target/release/lookalike). Results: WORK/results.json; the
tables are printed.
"""
import argparse
import datetime
import json
import os
import subprocess
import sys

import numpy as np
from PIL import Image

# the grid's PSFs, noise levels, "found" rule and table format
from restore_grid import NOISES, PSFS, found, mean, run_pool, spec_name, table

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOOKALIKE = os.environ.get("LOOKALIKE", os.path.join(REPO, "target/release/lookalike"))
WANG_IDS = [5 + 50 * k for k in range(19)]
CROP_SIDES = [128, 160, 256]
CROP_PSFS = ["disk:5", "disk:6", "gaussian:2", "motion:15,30"]
CROP_PHOTOS = 10
BELOW = 0.05


def load(path):
    return np.asarray(Image.open(path), dtype=np.float64) / 255


def psnr(ref, x):
    mse = np.mean((ref - x) ** 2)
    return float(10 * np.log10(1 / mse)) if mse > 0 else float("inf")


def run(cmd):
    p = subprocess.run(["nice", "-n", "10"] + cmd, capture_output=True, text=True)
    r = {"cmd": cmd, "rc": p.returncode}
    try:
        r["json"] = json.loads(p.stdout)
    except ValueError:
        r["stdout"] = p.stdout
    if p.returncode:
        r["stderr"] = p.stderr.strip()
    return r


def prepare(photos_dir, wang_dir, work):
    """[(name, path)] of the prepared originals, then of the crops."""
    sources = [("retina", os.path.join(photos_dir, "retina.jpg"))]
    sources += [(f"wang{i}", os.path.join(wang_dir, "images", f"{i}.jpg")) for i in WANG_IDS]
    photos, crops = [], []
    for k, (name, src) in enumerate(sources):
        im = Image.open(src).convert("L" if k % 2 == 0 else "RGB")
        if name == "retina":
            w, h = im.size
            s = 512 / max(w, h)
            im = im.resize((round(w * s), round(h * s)), Image.LANCZOS)
        path = os.path.join(work, "orig", name + ".png")
        im.save(path)
        photos.append((name, path))
        if k < CROP_PHOTOS:
            w, h = im.size
            for side in CROP_SIDES:
                x0, y0 = (w - side) // 2, (h - side) // 2
                c = im.crop((x0, y0, x0 + side, y0 + side))
                cpath = os.path.join(work, "orig", f"{name}_c{side}.png")
                c.save(cpath)
                crops.append((f"{name}_c{side}", cpath))
    return photos, crops


def run_case(work, photo, orig_path, spec, noise, group):
    """One blurred input, restored blind and with the true PSF."""
    name = f"{photo}_{spec_name(spec)}_n{noise}"
    b = os.path.join(work, "blurred", name + ".png")
    r = run([LOOKALIKE, "blur", orig_path, b, "--psf", spec, "--noise", str(noise),
             "--seed", "1"])
    if r["rc"]:
        return {"name": name, "error": r}
    orig = load(orig_path)
    case = {"name": name, "photo": photo, "group": group, "psf": spec, "noise": noise,
            "side": min(orig.shape[:2]), "blurred": psnr(orig, load(b))}
    for run_name, extra in (("blind", []), ("true", ["--psf", spec])):
        out = os.path.join(work, "out", f"{name}.{run_name}.png")
        r = run([LOOKALIKE, "deblur", b, out, "--json"] + extra)
        if r["rc"]:
            case[run_name] = None
            case[run_name + "_error"] = r
            continue
        case[run_name] = psnr(orig, load(out))
        if run_name == "blind":
            case["estimate"] = r.get("json", {}).get("psf")
    est = case.get("estimate")
    case["found"] = bool(est) and est != "none" and found(spec, est)
    return case


def run_sharp(work, name, path):
    out = os.path.join(work, "out", name + ".sharp.png")
    r = run([LOOKALIKE, "deblur", path, out, "--json"])
    res = {"image": name, "rc": r["rc"], "psf": r.get("json", {}).get("psf")}
    if r["rc"] == 0:
        res["max_diff"] = int(np.abs(np.asarray(Image.open(path), dtype=np.int16)
                                     - np.asarray(Image.open(out), dtype=np.int16)).max())
    return res


def cell_row(label, cs):
    loss = [c["true"] - c["blind"] for c in cs if None not in (c["true"], c["blind"])]
    below = [c for c in cs if c["blind"] is not None and c["blind"] < c["blurred"] - BELOW]
    worst = min((c["blind"] - c["blurred"] for c in cs if c["blind"] is not None),
                default=float("nan"))
    return label + [f"{mean([c['blurred'] for c in cs]):.2f}",
                    f"{mean([c['true'] for c in cs]):.2f}",
                    f"{mean([c['blind'] for c in cs]):.2f}",
                    f"{sum(c['found'] for c in cs)}/{len(cs)}",
                    f"{mean(loss):.2f} / {max(loss, default=float('nan')):.2f}",
                    str(len(below)), f"{worst:+.2f}"]


HEAD = ["blurred", "true PSF", "blind", "found", "loss to true PSF (mean / worst)",
        "blind < input - 0.05 dB", "worst blind - input"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("photos_dir")
    ap.add_argument("wang_dir")
    ap.add_argument("work")
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    work = os.path.abspath(args.work)
    for d in ("orig", "blurred", "out"):
        os.makedirs(os.path.join(work, d), exist_ok=True)
    photos, crops = prepare(args.photos_dir, args.wang_dir, work)
    commit = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    res = {"commit": commit, "lookalike": LOOKALIKE,
           "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
    print(f"lookalike {commit} ({LOOKALIKE}), {res['date']}, {args.jobs} jobs\n")
    jobs = [(work, p, path, s, n, "full") for s in PSFS for n in NOISES for p, path in photos]
    jobs += [(work, p, path, s, n, "crop") for s in CROP_PSFS for n in NOISES
             for p, path in crops]
    cases, res["sharp"] = run_pool(args.jobs, run_case, jobs, run_sharp,
                                   [(work, n, p) for n, p in photos + crops])
    res["cases"] = cases
    with open(os.path.join(work, "results.json"), "w") as f:
        json.dump(res, f, indent=1)
    errors = [c for c in cases if "error" in c or "blind_error" in c or "true_error" in c]
    for c in errors:
        print("FAILED:", json.dumps(c)[:400])
    cases = [c for c in cases if "error" not in c]

    full = [c for c in cases if c["group"] == "full"]
    print(f"Full photos ({len(photos)}), PSNR in dB, mean over the photos:\n")
    rows = [cell_row([s, str(n)], [c for c in full if c["psf"] == s and c["noise"] == n])
            for s in PSFS for n in NOISES]
    print(table(["PSF", "noise"] + HEAD, rows + [cell_row(["all", ""], full)]))
    crop = [c for c in cases if c["group"] == "crop"]
    print(f"\nCentre crops of the first {CROP_PHOTOS} photos:\n")
    rows = [cell_row([str(side), s, str(n)], [c for c in crop if c["side"] == side
                                               and c["psf"] == s and c["noise"] == n])
            for side in CROP_SIDES for s in CROP_PSFS for n in NOISES]
    print(table(["side", "PSF", "noise"] + HEAD, rows + [cell_row(["all", "", ""], crop)]))
    below = [c for c in cases if c["blind"] is not None and c["blind"] < c["blurred"] - BELOW]
    print(f"\nBlind outputs more than {BELOW} dB under their input: {len(below)}\n")
    for c in sorted(below, key=lambda c: c["blind"] - c["blurred"]):
        print(f"  {c['name']}: read {c['estimate']}, blurred {c['blurred']:.2f}, blind "
              f"{c['blind']:.2f} ({c['blind'] - c['blurred']:+.2f}), true PSF {c['true']:.2f}")
    missed = [c for c in full if not c["found"]]
    print(f"\nFull photos, blur not found: {len(missed)}\n")
    for c in missed:
        print(f"  {c['name']}: read {c['estimate']}, blind - true {c['blind'] - c['true']:+.2f}")
    bad = [s for s in res["sharp"] if s["psf"] != "none" or s.get("max_diff") != 0]
    print(f"\nSharp images ({len(res['sharp'])}): {len(res['sharp']) - len(bad)} read as not "
          "blurred and left unchanged")
    for s in bad:
        print(f"  {s['image']}: read {s['psf']}, max diff {s.get('max_diff')}")
    print(f"\nAll figures: {work}/results.json")


if __name__ == "__main__":
    main()
