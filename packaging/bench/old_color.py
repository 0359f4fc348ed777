"""The old system's colour step, for `kromactl bench postprocess` (needs Pillow; the rembg venv
from rembg-venv.sh has it). It is `apply-color-correction.py` as the reference describes it
(§5.5): open the file, RGB → autocontrast (cutoff > 0) → brightness → contrast → colour →
sharpness (Pillow's ImageEnhance) → gamma table → per-channel multipliers, each step skipped when
neutral, values rounded half up, then save the PNG. The same recipe made kromad's golden images
(daemon/tests/color/make_golden.py), so both sides compute the same pixels.

Arguments: PROFILE INPUT OUTPUT. The whole process is what the benchmark times, as the old
pipeline ran it: one Python process per file.
"""
import sys

from PIL import Image, ImageEnhance, ImageOps

PROFILES = {
    "neutral": dict(brightness=1.0, contrast=1.02, saturation=1.0, sharpness=1.0, gamma=1.0, cutoff=0, r=1.0, g=1.0, b=1.0),
    "cinematic_warm": dict(brightness=0.98, contrast=1.12, saturation=1.08, sharpness=1.04, gamma=1.03, cutoff=0, r=1.04, g=1.0, b=0.96),
    "cold_rain": dict(brightness=0.97, contrast=1.10, saturation=0.95, sharpness=1.03, gamma=1.01, cutoff=0, r=0.97, g=1.0, b=1.05),
}


def half_up(value):
    return max(0, min(255, int(value + 0.5)))


def apply(image, p):
    rgb = image.convert("RGB")
    if p["cutoff"] > 0:
        rgb = ImageOps.autocontrast(rgb, cutoff=p["cutoff"])
    for factor, enhancer in ((p["brightness"], ImageEnhance.Brightness), (p["contrast"], ImageEnhance.Contrast),
                             (p["saturation"], ImageEnhance.Color), (p["sharpness"], ImageEnhance.Sharpness)):
        if factor != 1.0:
            rgb = enhancer(rgb).enhance(factor)
    if p["gamma"] != 1.0:
        lut = [half_up(255 * ((i / 255) ** (1 / p["gamma"]))) for i in range(256)]
        rgb = rgb.point(lut * 3)
    if (p["r"], p["g"], p["b"]) != (1.0, 1.0, 1.0):
        bands = [band.point([half_up(v * m) for v in range(256)]) for band, m in zip(rgb.split(), (p["r"], p["g"], p["b"]))]
        rgb = Image.merge("RGB", bands)
    return rgb


if __name__ == "__main__":
    profile, source, target = sys.argv[1:4]
    apply(Image.open(source), PROFILES[profile]).save(target)
