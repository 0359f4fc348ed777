#!/usr/bin/env python3
"""Make the three small, deterministic test images for the u2netp reference masks.

Usage: venv/bin/python make_images.py OUT_DIR

Only Pillow + numpy are used; no randomness except a fixed-seed numpy generator
(numpy's PCG64 stream is stable across versions for `integers`).  The exact
bytes depend on the Pillow/zlib versions (pinned in requirements-lock.txt);
sha256 sums are printed so a re-run can be checked.
"""
import hashlib
import os
import sys

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def figure_on_light(w=160, h=120):
    """A dark stick-ish figure (head, torso, arms, legs) on a light, slightly warm background."""
    im = Image.new("RGB", (w, h), (236, 232, 222))
    d = ImageDraw.Draw(im)
    # faint floor line
    d.rectangle([0, 104, w, h], fill=(214, 208, 196))
    ink = (38, 34, 40)
    cx = 80
    d.ellipse([cx - 11, 14, cx + 11, 36], fill=ink)                 # head
    d.rounded_rectangle([cx - 14, 38, cx + 14, 74], radius=6, fill=ink)  # torso
    d.line([cx - 12, 42, cx - 32, 66], fill=ink, width=7)            # left arm
    d.line([cx + 12, 42, cx + 34, 58], fill=ink, width=7)            # right arm
    d.line([cx - 7, 72, cx - 15, 104], fill=ink, width=9)            # left leg
    d.line([cx + 7, 72, cx + 17, 104], fill=ink, width=9)            # right leg
    return im


def object_on_gradient(w=128, h=96):
    """An orange/red rounded object with a highlight, on a blue-to-teal diagonal gradient."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    t = (x / (w - 1) * 0.6 + y / (h - 1) * 0.4)
    bg = np.stack([40 + 30 * t, 90 + 90 * t, 170 - 20 * t], axis=-1)
    im = Image.fromarray(np.round(bg).astype(np.uint8), "RGB")
    d = ImageDraw.Draw(im)
    d.ellipse([38, 22, 92, 78], fill=(222, 78, 34))                  # body
    d.rectangle([62, 12, 67, 26], fill=(92, 60, 30))                 # stem
    d.ellipse([66, 10, 84, 20], fill=(70, 150, 60))                  # leaf
    d.ellipse([50, 32, 62, 44], fill=(248, 170, 120))                # highlight
    return im


def soft_scene(w=96, h=72):
    """Soft edges: a blurred sky/ground split and a blurred, shaded blob with a little noise."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    sky = np.stack([150 + 40 * (y / h), 190 + 20 * (y / h), 235 - 10 * (y / h)], axis=-1)
    ground = np.array([96.0, 132.0, 74.0])
    horizon = 50 + 3 * np.sin(x / 9.0)
    a = np.clip((y - horizon) / 4.0 + 0.5, 0, 1)[..., None]
    base = sky * (1 - a) + ground * a
    im = Image.fromarray(np.round(base).astype(np.uint8), "RGB")
    blob = Image.new("L", (w, h), 0)
    ImageDraw.Draw(blob).ellipse([30, 18, 66, 60], fill=255)
    blob = blob.filter(ImageFilter.GaussianBlur(3))
    shade = np.clip(1.0 - ((x - 42) ** 2 + (y - 30) ** 2) / 900.0, 0.35, 1.0)[..., None]
    col = np.array([200.0, 120.0, 170.0]) * shade
    al = np.asarray(blob, dtype=np.float64)[..., None] / 255.0
    out = np.asarray(im, dtype=np.float64) * (1 - al) + col * al
    rng = np.random.default_rng(20261127)
    out = out + rng.integers(-1, 2, size=out.shape)
    return Image.fromarray(np.clip(np.round(out), 0, 255).astype(np.uint8), "RGB")


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "images")
    os.makedirs(out, exist_ok=True)
    sums = []
    for name, fn in [("figure_160x120", figure_on_light), ("object_128x96", object_on_gradient), ("soft_96x72", soft_scene)]:
        p = os.path.join(out, name + ".png")
        fn().save(p, "PNG", optimize=False, compress_level=9)
        data = open(p, "rb").read()
        h = hashlib.sha256(data).hexdigest()
        sums.append(f"{h}  {name}.png")
        print(f"{name}.png {len(data)} B sha256 {h}")
    with open(os.path.join(out, "SHA256SUMS"), "w") as f:
        f.write("\n".join(sums) + "\n")


if __name__ == "__main__":
    main()
