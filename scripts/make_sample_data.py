#!/usr/bin/env python3
"""Builds sample_data/ from the CC0 / public-domain photos in ../shared/photos.

Usage: scripts/make_sample_data.py [PHOTOS_DIR] [OUT_DIR]   (needs pillow)

Each photo becomes a folder holding a downscaled original plus five variants (crop, half
scale, Gaussian blur, colour shift, JPEG quality 30); images in one folder belong together.
groundtruth.tsv lists every file with the integer label of its group. Deterministic.
"""
import os, sys, shutil
from PIL import Image, ImageFilter, ImageEnhance

src = sys.argv[1] if len(sys.argv) > 1 else "../shared/photos"
out = sys.argv[2] if len(sys.argv) > 2 else "sample_data"
MAX_SIDE = 320
os.makedirs(out, exist_ok=True)
names = sorted(f for f in os.listdir(src) if f.lower().endswith((".png", ".jpg")))
rows = []
for label, name in enumerate(names):
    stem = os.path.splitext(name)[0]
    img = Image.open(os.path.join(src, name))
    if img.mode in ("RGBA", "LA", "P"):
        bg = Image.new("RGB", img.size, (255, 255, 255))
        bg.paste(img.convert("RGBA"), mask=img.convert("RGBA").split()[3])
        img = bg
    img = img.convert("RGB") if img.mode not in ("L",) else img
    img.thumbnail((MAX_SIDE, MAX_SIDE), Image.LANCZOS)
    d = os.path.join(out, stem)
    os.makedirs(d, exist_ok=True)
    w, h = img.size
    variants = {
        "original.jpg": img,
        "crop.jpg": img.crop((w // 10, h // 10, w - w // 10, h - h // 10)),
        "half.jpg": img.resize((w // 2, h // 2), Image.LANCZOS),
        "blur.jpg": img.filter(ImageFilter.GaussianBlur(2)),
        "shift.jpg": ImageEnhance.Brightness(ImageEnhance.Color(img.convert("RGB")).enhance(1.3)).enhance(0.85),
    }
    for fname, v in variants.items():
        v.save(os.path.join(d, fname), quality=88)
        rows.append((f"{stem}/{fname}", label))
    img.save(os.path.join(d, "q30.jpg"), quality=30)
    rows.append((f"{stem}/q30.jpg", label))
with open(os.path.join(out, "groundtruth.tsv"), "w") as f:
    f.write("file\tlabel\n")
    for r in rows:
        f.write(f"{r[0]}\t{r[1]}\n")
lic = os.path.join(src, "LICENSES.md")
if os.path.exists(lic):
    shutil.copy(lic, os.path.join(out, "LICENSES.md"))
print(f"{len(rows)} images in {len(names)} groups written to {out}")
