"""The old system's `qa` mode, for `kromactl bench qa` (needs Pillow and numpy; the rembg venv
from rembg-venv.sh has both, numpy because rembg depends on it). It is `output-guard.py` as the
reference describes it (§4.1-4.2), over every input in one Python process, as the old `qa` mode
ran:

- each image is opened with Pillow and converted to 8-bit RGB (`convert("RGB")`: alpha dropped);
- chroma delta = (mean|R-G| + mean|R-B| + mean|G-B|) / 3, rounded to 4 decimals; 0 for an
  empty image;
- with threshold T = max(0, --max-chroma-delta), default 2.0: grayscale_like = chroma <= T;
  `not_grayscale_like` is a hard reason with --enforce-grayscale; above T,
  `chroma_exceeds_threshold` is hard with --fail-on-chroma-exceed, else soft; an unreadable
  image is `image_read_failed` (hard, with `error`); a missing input `input_not_found`, a folder
  without images `no_images_found` (both hard).

Arguments: INPUT... [--max-chroma-delta T] [--enforce-grayscale] [--fail-on-chroma-exceed].
INPUT is an image file or a folder (walked recursively, sorted, .png .jpg .jpeg .webp). Prints the
report, {input, settings, summary, files}, as JSON on stdout and exits 0 either way (the last
old system did; the report says what failed).
"""
import argparse
import json
import os
import sys

import numpy as np
from PIL import Image

EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp")


def chroma_delta(path):
    with Image.open(path) as image:
        rgb = np.asarray(image.convert("RGB"), dtype=np.int16)
    if rgb.size == 0:
        return 0.0
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    mean = (np.abs(r - g).mean() + np.abs(r - b).mean() + np.abs(g - b).mean()) / 3.0
    return round(float(mean), 4)


def verdict(path, threshold, enforce_grayscale, fail_on_chroma_exceed):
    entry = {"file": path, "chroma_delta": None, "grayscale_like": None, "hard_fail_reasons": [], "soft_warnings": []}
    try:
        chroma = chroma_delta(path)
    except Exception as error:  # The old guard reported any read failure, whatever its kind.
        entry["hard_fail_reasons"].append("image_read_failed")
        entry["error"] = str(error)
        return entry
    entry["chroma_delta"] = chroma
    entry["grayscale_like"] = chroma <= threshold
    if enforce_grayscale and not entry["grayscale_like"]:
        entry["hard_fail_reasons"].append("not_grayscale_like")
    if chroma > threshold:
        (entry["hard_fail_reasons"] if fail_on_chroma_exceed else entry["soft_warnings"]).append("chroma_exceeds_threshold")
    return entry


def missing(path, reason):
    return {"file": path, "chroma_delta": None, "grayscale_like": None, "hard_fail_reasons": [reason], "soft_warnings": []}


def images_under(folder):
    found = []
    for root, _dirs, names in os.walk(folder):
        found.extend(os.path.join(root, name) for name in names if name.lower().endswith(EXTENSIONS))
    return sorted(found)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("inputs", nargs="+")
    parser.add_argument("--max-chroma-delta", type=float, default=2.0)
    parser.add_argument("--enforce-grayscale", action="store_true")
    parser.add_argument("--fail-on-chroma-exceed", action="store_true")
    args = parser.parse_args()
    threshold = max(0.0, args.max_chroma_delta)
    files = []
    for path in args.inputs:
        if not os.path.exists(path):
            files.append(missing(path, "input_not_found"))
        elif os.path.isdir(path):
            images = images_under(path)
            if not images:
                files.append(missing(path, "no_images_found"))
            files.extend(verdict(image, threshold, args.enforce_grayscale, args.fail_on_chroma_exceed) for image in images)
        else:
            files.append(verdict(path, threshold, args.enforce_grayscale, args.fail_on_chroma_exceed))
    report = {
        "input": args.inputs,
        "settings": {
            "max_chroma_delta": threshold,
            "enforce_grayscale": args.enforce_grayscale,
            "fail_on_chroma_exceed": args.fail_on_chroma_exceed,
        },
        "summary": {
            "total_files": len(files),
            "hard_failures": sum(1 for entry in files if entry["hard_fail_reasons"]),
            "soft_warnings": sum(1 for entry in files if entry["soft_warnings"]),
        },
        "files": files,
    }
    json.dump(report, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
