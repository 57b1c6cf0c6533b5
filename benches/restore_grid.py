#!/usr/bin/env python3
"""Image restoration: lookalike against scikit-image on a fixed grid of 100 cases.

Grid: 10 photos x 5 PSFs x 2 noise levels.
- Photos: brick, camera, grass, gravel (grey), astronaut, horse, rocket, hubble_deep_field
  (converted to grey with PIL `convert("L")`; RGBA flattened on white first), coffee and chelsea
  (RGB). Any side above 512 is centre-cropped to 512. The prepared originals are written as PNG
  to WORK/orig/.
- PSFs: gaussian:1, gaussian:2, gaussian:3, disk:3, motion:15,30. Noise: 0.002 and 0.01.
- Blurred input: `lookalike blur ORIG WORK/blurred/CASE.png --psf SPEC --noise N --seed 1
  --psf-out WORK/psf/SPECNAME.txt`; both tools read this 8-bit PNG and the kernel in that file.

scikit-image, as a careful user runs it: the blurred PNG as float64 in [0, 1], mirror-padded by
twice the PSF radius (`np.pad(b, 2 * r, mode="symmetric")`, r = the larger half-size of the
kernel), restored, cropped back, clipped to [0, 1]; colour images one channel at a time.
Settings: `wiener(b, psf, balance)` for balance in 0.001, 0.003, 0.01, 0.03, 0.1 and
`richardson_lucy(b, psf, num_iter=n)` for n in 5, 10, 20, 30, 50. Each output is rounded to
8 bits, as a PNG would hold it. Best Wiener, best RL and best overall are per-image oracles (the
setting with the highest PSNR against the original).

lookalike, per case, each with `--json` (the JSON it prints is stored as it is):
- default:           `deblur BLURRED OUT --psf SPEC` (its default method)
- wiener, rl, hyper: `deblur BLURRED OUT --psf SPEC --method M`
- blind:             `deblur BLURRED OUT` (PSF estimated; its spec is the JSON field `psf`)

Metrics, the same for every output, read back from its 8-bit PNG, against the prepared original:
PSNR (data range 1) and SSIM (Gaussian weights, sigma 1.5, population covariance, data range 1,
channel axis last for colour). The blind estimate is "found" when its kind is right and: Gaussian
sigma within 15%; disk radius within 15%; motion length within 15% and angle within 10 degrees
(angles mod 180).

Extra cases: each prepared original deblurred blind as it is (sharp), and two pure-noise images
(256x256 grey, 0.5 plus Gaussian noise of sigma 0.05 and 0.1, seed 1): does lookalike report no
blur (psf `none`), and is its output the input, pixel for pixel?

--quick: camera and coffee x 5 PSFs x noise 0.01. Results: WORK/results.json.

--speed: a 1024x1024 grey image (PHOTOS_DIR/retina.jpg, grey, resized with Lanczos), blurred by
`lookalike blur --psf gaussian:2 --noise 0.005 --seed 1`. Whole commands are timed (wall clock,
median and min of RUNS, after one warm-up run each): `lookalike deblur --psf gaussian:2 --method
rl --iterations 30 --no-early-stop` against a Python script run as its own process (imports, reads the PNG, pads
as above, richardson_lucy num_iter=30, crops, writes the PNG), and `--method wiener` against the
same script with wiener balance 0.01. Results: WORK/speed.json.
"""
import argparse
import concurrent.futures
import datetime
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np
import skimage
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOOKALIKE = os.environ.get("LOOKALIKE", os.path.join(REPO, "target/release/lookalike"))
GREY = ["brick", "camera", "grass", "gravel", "astronaut", "horse", "rocket", "hubble_deep_field"]
COLOUR = ["coffee", "chelsea"]
PSFS = ["gaussian:1", "gaussian:2", "gaussian:3", "disk:3", "motion:15,30"]
NOISES = [0.002, 0.01]
BALANCES = [0.001, 0.003, 0.01, 0.03, 0.1]
ITERATIONS = [5, 10, 20, 30, 50]
RUNS = ["default", "wiener", "rl", "hyper", "blind"]

# The scikit-image restoration: used in process by the grid, and written out as the script the
# speed test times as its own process.
SKIMAGE_RESTORE = '''\
import sys

import numpy as np
from PIL import Image
from skimage.restoration import richardson_lucy, wiener


def restore(b, psf, method, param):
    """Mirror-pad by twice the PSF radius, restore each channel, crop back, clip to [0, 1]."""
    p = 2 * (max(psf.shape) // 2)
    out = []
    for c in [b] if b.ndim == 2 else np.moveaxis(b, -1, 0):
        x = np.pad(c, p, mode="symmetric")
        if method == "wiener":
            x = wiener(x, psf, param)
        else:
            x = richardson_lucy(x, psf, num_iter=int(param))
        out.append(x[p:p + c.shape[0], p:p + c.shape[1]])
    return np.clip(out[0] if b.ndim == 2 else np.stack(out, -1), 0, 1)


if __name__ == "__main__":
    src, dst, psf_path, method, param = sys.argv[1:]
    b = np.asarray(Image.open(src), dtype=np.float64) / 255
    x = restore(b, np.loadtxt(psf_path, ndmin=2), method, float(param))
    Image.fromarray(np.round(x * 255).astype(np.uint8)).save(dst)
'''
_ns = {"__name__": "skimage_restore"}
exec(SKIMAGE_RESTORE, _ns)
restore = _ns["restore"]


def load(path, mode):
    return np.asarray(Image.open(path).convert(mode), dtype=np.float64) / 255


def metrics(ref, x):
    ssim = structural_similarity(ref, x, data_range=1, gaussian_weights=True, sigma=1.5,
                                 use_sample_covariance=False,
                                 channel_axis=-1 if ref.ndim == 3 else None)
    return {"psnr": float(peak_signal_noise_ratio(ref, x, data_range=1)), "ssim": float(ssim)}


def run(cmd):
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    r = {"cmd": cmd, "rc": p.returncode, "seconds": round(time.perf_counter() - t, 3)}
    try:
        r["json"] = json.loads(p.stdout)
    except ValueError:
        r["stdout"] = p.stdout
    if p.returncode:
        r["stderr"] = p.stderr.strip()
    return r


def spec_name(spec):
    return spec.replace(":", "").replace(",", "_")


def case_name(photo, spec, noise):
    return f"{photo}_{spec_name(spec)}_n{noise}"


def parse_spec(spec):
    kind, _, args = spec.partition(":")
    return kind, [float(v) for v in args.split(",") if v]


def found(true, est):
    (k, t), (ke, e) = parse_spec(true), parse_spec(est)
    if k != ke:
        return False
    if abs(e[0] - t[0]) > 0.15 * t[0]:
        return False
    return k != "motion" or abs((e[1] - t[1] + 90) % 180 - 90) <= 10


def prepare(photos_dir, work, photo):
    src = next(os.path.join(photos_dir, f) for f in sorted(os.listdir(photos_dir))
               if os.path.splitext(f)[0] == photo)
    im = Image.open(src)
    if im.mode in ("RGBA", "LA", "P"):
        im = im.convert("RGBA")
        bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
        bg.alpha_composite(im)
        im = bg
    im = im.convert("RGB" if photo in COLOUR else "L")
    w, h = im.size
    cw, ch = min(w, 512), min(h, 512)
    im = im.crop(((w - cw) // 2, (h - ch) // 2, (w - cw) // 2 + cw, (h - ch) // 2 + ch))
    path = os.path.join(work, "orig", photo + ".png")
    im.save(path)
    return path


def deblur_cmd(blurred, out, psf=None, method=None):
    cmd = [LOOKALIKE, "deblur", blurred, out, "--json"]
    if psf:
        cmd += ["--psf", psf]
    if method:
        cmd += ["--method", method]
    return cmd


def run_case(work, photo, spec, noise):
    name = case_name(photo, spec, noise)
    mode = "RGB" if photo in COLOUR else "L"
    orig = load(os.path.join(work, "orig", photo + ".png"), mode)
    blurred_path = os.path.join(work, "blurred", name + ".png")
    b = load(blurred_path, mode)
    psf = np.loadtxt(os.path.join(work, "psf", spec_name(spec) + ".txt"), ndmin=2)
    case = {"name": name, "photo": photo, "colour": photo in COLOUR, "psf": spec, "noise": noise,
            "blurred": metrics(orig, b)}

    sk = {"wiener": [], "rl": []}
    best = {}
    for method, key, values in (("wiener", "balance", BALANCES), ("rl", "num_iter", ITERATIONS)):
        for v in values:
            x = np.round(restore(b, psf, method, v) * 255) / 255
            m = {"method": method, key: v, **metrics(orig, x)}
            sk[method].append(m)
            if method not in best or m["psnr"] > best[method][0]["psnr"]:
                best[method] = (m, x)
    overall = max(best.values(), key=lambda mx: mx[0]["psnr"])
    Image.fromarray(np.round(overall[1] * 255).astype(np.uint8)).save(
        os.path.join(work, "out", name + ".skimage.png"))
    sk.update(best_wiener=best["wiener"][0], best_rl=best["rl"][0], best=overall[0])
    case["skimage"] = sk

    lk = {}
    for r in RUNS:
        out = os.path.join(work, "out", f"{name}.{r}.png")
        cmd = deblur_cmd(blurred_path, out, None if r == "blind" else spec,
                         None if r in ("default", "blind") else r)
        lk[r] = run(cmd)
        if lk[r]["rc"] == 0:
            lk[r].update(metrics(orig, load(out, mode)))
    est = lk["blind"].get("json", {}).get("psf")
    lk["blind"]["estimated_psf"] = est
    lk["blind"]["found"] = bool(est) and found(spec, est)
    case["lookalike"] = lk
    return case


def run_plain(work, name, path):
    """Blind deblur of an image that has no blur: is it left as it is?"""
    out = os.path.join(work, "out", name + ".blind.png")
    r = run(deblur_cmd(path, out))
    r.update(image=name, psf_reported=r.get("json", {}).get("psf"))
    r["no_blur"] = r["psf_reported"] == "none"
    if r["rc"] == 0:
        a = np.asarray(Image.open(path), dtype=np.int16)
        o = np.asarray(Image.open(out).convert(Image.open(path).mode), dtype=np.int16)
        r["max_diff"] = int(np.abs(a - o).max())
        r["identical"] = r["max_diff"] == 0
    return r


def commit():
    c = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                       capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", REPO, "diff", "--quiet", "HEAD", "--", "src"]).returncode
    return c + (" (src modified)" if dirty else "")


def header():
    return {"commit": commit(),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "lookalike": LOOKALIKE,
            "lookalike_version": subprocess.run([LOOKALIKE, "--version"], capture_output=True,
                                                text=True).stdout.strip(),
            "scikit_image": skimage.__version__, "cores": os.cpu_count()}


def run_pool(workers, case_fn, case_jobs, side_fn, side_jobs):
    """`case_fn` over `case_jobs` and `side_fn` over `side_jobs` in `workers` processes, the
    cases counted on stderr; both result lists in job order."""
    with concurrent.futures.ProcessPoolExecutor(workers) as pool:
        futs = [pool.submit(case_fn, *j) for j in case_jobs]
        side_futs = [pool.submit(side_fn, *j) for j in side_jobs]
        cases = []
        for i, f in enumerate(futs):
            cases.append(f.result())
            print(f"\r{i + 1}/{len(futs)} cases", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
        return cases, [f.result() for f in side_futs]


def mean(xs):
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else float("nan")


def row(label, cases):
    def ps(r):
        return [c["lookalike"][r].get("psnr") for c in cases]
    blurred = [c["blurred"]["psnr"] for c in cases]
    skb = [c["skimage"]["best"]["psnr"] for c in cases]
    margin = [d - s for d, s in zip(ps("default"), skb) if d is not None]
    gap = [b - d for b, d in zip(ps("blind"), ps("default")) if None not in (b, d)]
    below = {r: sum(p is not None and p < q for p, q in zip(ps(r), blurred)) for r in RUNS}
    below_s = str(below["default"])
    others = ", ".join(f"{r} {n}" for r, n in below.items() if n and r != "default")
    if others:
        below_s += f" ({others})"
    n_found = sum(c["lookalike"]["blind"]["found"] for c in cases)
    cells = [mean(blurred)] + [mean([c["skimage"][k]["psnr"] for c in cases])
                               for k in ("best_wiener", "best_rl", "best")]
    cells += [mean(ps(r)) for r in RUNS]
    return (label + [f"{v:.2f}" for v in cells]
            + [f"{mean(margin):+.2f} / {min(margin, default=float('nan')):+.2f}", below_s,
               f"{n_found}/{len(cases)}",
               f"{mean(gap):+.2f} / {min(gap, default=float('nan')):+.2f}"])


def ssim_row(label, cases):
    cells = [mean([c["blurred"]["ssim"] for c in cases]),
             mean([c["skimage"]["best"]["ssim"] for c in cases])]
    cells += [mean([c["lookalike"][r].get("ssim") for c in cases]) for r in RUNS]
    return label + [f"{v:.4f}" for v in cells]


def table(head, rows):
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def grid(args, photos_dir, work):
    photos = ["camera", "coffee"] if args.quick else GREY + COLOUR
    noises = [0.01] if args.quick else NOISES
    for d in ("orig", "blurred", "psf", "out", "noise"):
        os.makedirs(os.path.join(work, d), exist_ok=True)
    res = header()
    res["commands"] = [
        f"{LOOKALIKE} blur {work}/orig/PHOTO.png {work}/blurred/CASE.png --psf SPEC --noise N "
        f"--seed 1 --psf-out {work}/psf/SPECNAME.txt",
        f"{LOOKALIKE} deblur {work}/blurred/CASE.png {work}/out/CASE.default.png --json --psf SPEC",
        f"{LOOKALIKE} deblur {work}/blurred/CASE.png {work}/out/CASE.M.png --json --psf SPEC "
        "--method M   (M = wiener, rl, hyper)",
        f"{LOOKALIKE} deblur {work}/blurred/CASE.png {work}/out/CASE.blind.png --json",
        f"{LOOKALIKE} deblur {work}/orig/PHOTO.png {work}/out/PHOTO.blind.png --json   (sharp)",
        "scikit-image: np.pad(b, 2r, 'symmetric'); wiener(b, psf, balance) for balance in "
        f"{BALANCES}; richardson_lucy(b, psf, num_iter=n) for n in {ITERATIONS}; crop; clip",
    ]
    print(f"lookalike {res['commit']} ({res['lookalike_version']}), scikit-image "
          f"{res['scikit_image']}, {res['date']}, {res['cores']} cores, {args.jobs} jobs\n")
    print("\n".join("    " + c for c in res["commands"]) + "\n", flush=True)

    origs = {p: prepare(photos_dir, work, p) for p in photos}
    res["blur"] = []
    for spec in PSFS:
        for noise in noises:
            for p in photos:
                r = run([LOOKALIKE, "blur", origs[p],
                         os.path.join(work, "blurred", case_name(p, spec, noise) + ".png"),
                         "--psf", spec, "--noise", str(noise), "--seed", "1",
                         "--psf-out", os.path.join(work, "psf", spec_name(spec) + ".txt")])
                if r["rc"]:
                    sys.exit(f"lookalike blur failed: {' '.join(r['cmd'])}\n{r['stderr']}")
                res["blur"].append(r)

    plain = [(p + "_sharp", origs[p]) for p in photos]
    for sigma in (0.05, 0.1):
        rng = np.random.default_rng(1)
        x = np.clip(0.5 + rng.normal(0, sigma, (256, 256)), 0, 1)
        path = os.path.join(work, "noise", f"noise_{sigma}.png")
        Image.fromarray(np.round(x * 255).astype(np.uint8)).save(path)
        plain.append((f"noise_{sigma}", path))

    jobs = [(work, p, s, n) for s in PSFS for n in noises for p in photos]
    cases, res["plain"] = run_pool(args.jobs, run_case, jobs, run_plain,
                                   [(work, n, p) for n, p in plain])
    res["cases"] = cases
    with open(os.path.join(work, "results.json"), "w") as f:
        json.dump(res, f, indent=1)

    cells = [(s, n, [c for c in cases if c["psf"] == s and c["noise"] == n])
             for s in PSFS for n in noises]
    print("PSNR in dB, mean over the photos of each row; scikit-image padded, best setting per "
          "image; margin and gap per image: mean / worst.\n")
    print(table(["PSF", "noise", "blurred", "sk Wiener", "sk RL", "sk best", "lookalike default",
                 "wiener", "rl", "hyper", "blind", "default - sk best", "default < blurred",
                 "blind found", "blind - default"],
                [row([s, str(n)], cs) for s, n, cs in cells] + [row(["all", ""], cases)]))
    print("\nSSIM, mean (scikit-image: its best setting by PSNR)\n")
    print(table(["PSF", "noise", "blurred", "sk best", "default", "wiener", "rl", "hyper",
                 "blind"],
                [ssim_row([s, str(n)], cs) for s, n, cs in cells] + [ssim_row(["all", ""], cases)]))
    wins = {}
    for c in cases:
        b = c["skimage"]["best"]
        k = f"{b['method']} {b.get('balance', b.get('num_iter'))}"
        wins[k] = wins.get(k, 0) + 1
    print("\nscikit-image best setting, cases: "
          + ", ".join(f"{k}: {v}" for k, v in sorted(wins.items())))
    print("\nBlind deblur of images without blur:\n")
    print(table(["image", "psf reported", "no blur", "JSON `blurred`", "output = input",
                 "max diff (levels)"],
                [[r["image"], str(r["psf_reported"]), str(r["no_blur"]),
                  str(r.get("json", {}).get("blurred", "-")), str(r.get("identical")),
                  str(r.get("max_diff"))] for r in res["plain"]]))
    failed = [r for c in cases for r in c["lookalike"].values() if r["rc"]]
    failed += [r for r in res["plain"] if r["rc"]]
    for r in failed:
        print(f"\nFAILED (exit {r['rc']}): {' '.join(r['cmd'])}\n{r.get('stderr', '')}")
    print(f"\nAll figures: {work}/results.json")


def speed(args, photos_dir, work):
    work = os.path.join(work, "speed")
    os.makedirs(work, exist_ok=True)
    sharp, blurred, psf = (os.path.join(work, f) for f in ("sharp.png", "blurred.png", "psf.txt"))
    im = Image.open(os.path.join(photos_dir, "retina.jpg")).convert("L")
    im.resize((1024, 1024), Image.LANCZOS).save(sharp)
    blur = run([LOOKALIKE, "blur", sharp, blurred, "--psf", "gaussian:2", "--noise", "0.005",
                "--seed", "1", "--psf-out", psf])
    if blur["rc"]:
        sys.exit(f"lookalike blur failed: {' '.join(blur['cmd'])}\n{blur['stderr']}")
    script = os.path.join(work, "skimage_restore.py")
    with open(script, "w") as f:
        f.write(SKIMAGE_RESTORE)
    python = os.environ.get("PYTHON", sys.executable)
    pairs = {
        "rl": ([LOOKALIKE, "deblur", blurred, os.path.join(work, "lookalike_rl.png"),
                "--psf", "gaussian:2", "--method", "rl", "--iterations", "30", "--no-early-stop", "--json"],
               [python, script, blurred, os.path.join(work, "skimage_rl.png"), psf, "rl", "30"]),
        "wiener": ([LOOKALIKE, "deblur", blurred, os.path.join(work, "lookalike_wiener.png"),
                    "--psf", "gaussian:2", "--method", "wiener", "--json"],
                   [python, script, blurred, os.path.join(work, "skimage_wiener.png"), psf,
                    "wiener", "0.01"]),
    }
    res = header()
    res.update(image="PHOTOS_DIR/retina.jpg, grey, resized to 1024x1024 (Lanczos)",
               blur=blur, runs=args.runs, methods={})
    print(f"lookalike {res['commit']} ({res['lookalike_version']}), scikit-image "
          f"{res['scikit_image']}, {res['date']}, {res['cores']} cores\n")
    print(f"    {' '.join(blur['cmd'])}")
    for lk_cmd, sk_cmd in pairs.values():
        print(f"    {' '.join(lk_cmd)}\n    {' '.join(sk_cmd)}")
    print(f"\nImage: {res['image']}. Wall clock of whole commands, {args.runs} runs each "
          "(after one warm-up), alternating.\n")
    ref = load(sharp, "L")
    rows = []
    for method, cmds in pairs.items():
        times = [[], []]
        last = [None, None]
        for i in range(args.runs + 1):
            for k, cmd in enumerate(cmds):
                r = run(cmd)
                if r["rc"]:
                    sys.exit(f"failed: {' '.join(cmd)}\n{r['stderr']}")
                if i:
                    times[k].append(r["seconds"])
                last[k] = r
        q = [metrics(ref, load(c[3], "L")) for c in cmds]
        m = {"lookalike": {"cmd": cmds[0], "seconds": times[0], "json": last[0].get("json"),
                           **q[0]},
             "skimage": {"cmd": cmds[1], "seconds": times[1], **q[1]}}
        for t in m.values():
            t.update(median=statistics.median(t["seconds"]), min=min(t["seconds"]))
        m["ratio_median"] = m["skimage"]["median"] / m["lookalike"]["median"]
        m["ratio_min"] = m["skimage"]["min"] / m["lookalike"]["min"]
        j = m["lookalike"]["json"] or {}
        iters = j.get("iterations")
        if any(c.get("stopped_early") for c in j.get("channels", [])):
            iters = f"{iters} (stopped early)"
        res["methods"][method] = m
        rows.append([method, f"{m['lookalike']['median']:.3f} / {m['lookalike']['min']:.3f}",
                     f"{m['skimage']['median']:.3f} / {m['skimage']['min']:.3f}",
                     f"{m['ratio_median']:.2f} / {m['ratio_min']:.2f}",
                     f"{m['lookalike']['psnr']:.2f} / {m['skimage']['psnr']:.2f}",
                     "-" if method == "wiener" else str(iters or "not reported")])
    print(table(["method", "lookalike s (median / min)", "scikit-image s (median / min)",
                 "scikit-image / lookalike (median / min)", "PSNR lookalike / scikit-image",
                 "lookalike RL iterations run (of 30)"], rows))
    with open(os.path.join(work, "..", "speed.json"), "w") as f:
        json.dump(res, f, indent=1)
    print(f"\nAll figures: {os.path.normpath(os.path.join(work, '..', 'speed.json'))}")


def main():
    ap = argparse.ArgumentParser(
        description="lookalike's image restoration against scikit-image",
        usage="%(prog)s PHOTOS_DIR WORK_DIR [--quick] [--jobs N]\n"
              "       %(prog)s --speed [PHOTOS_DIR] WORK_DIR [--runs N]")
    ap.add_argument("dirs", nargs="+", metavar="DIR")
    ap.add_argument("--quick", action="store_true", help="camera and coffee, noise 0.01 only")
    ap.add_argument("--jobs", type=int, default=2, help="cases run in parallel (default 2)")
    ap.add_argument("--speed", action="store_true", help="time whole commands instead")
    ap.add_argument("--runs", type=int, default=5, help="timed runs per command (default 5)")
    args = ap.parse_args()
    if args.speed and len(args.dirs) == 1:
        args.dirs.insert(0, os.path.join(REPO, "..", "shared", "photos"))
    if len(args.dirs) != 2:
        ap.error("give PHOTOS_DIR and WORK_DIR")
    photos_dir, work = (os.path.abspath(d) for d in args.dirs)
    os.makedirs(work, exist_ok=True)
    (speed if args.speed else grid)(args, photos_dir, work)


if __name__ == "__main__":
    main()
