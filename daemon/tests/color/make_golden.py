"""Makes the colour-profile golden images with Pillow, following the old pipeline's recipe
(reference §5.5): RGB → autocontrast (cutoff > 0) → brightness → contrast → colour → sharpness
(Pillow's ImageEnhance) → gamma LUT → per-channel multipliers, each step skipped when neutral,
values rounded half up and clamped. Kroma keeps the source's alpha, so it is put back at the end.

Run with Pillow 11.3.0: `python3 make_golden.py` writes source.png and <profile>.png here.
"""
from PIL import Image, ImageEnhance, ImageOps

PROFILES = {
    "neutral": dict(brightness=1.0, contrast=1.02, saturation=1.0, sharpness=1.0, gamma=1.0, cutoff=0, r=1.0, g=1.0, b=1.0),
    "cinematic_warm": dict(brightness=0.98, contrast=1.12, saturation=1.08, sharpness=1.04, gamma=1.03, cutoff=0, r=1.04, g=1.0, b=0.96),
    "cold_rain": dict(brightness=0.97, contrast=1.10, saturation=0.95, sharpness=1.03, gamma=1.01, cutoff=0, r=0.97, g=1.0, b=1.05),
    # Not built in: covers autocontrast with a cutoff, softening and a gamma below 1.
    "test_every_step": dict(brightness=1.05, contrast=0.9, saturation=1.2, sharpness=0.6, gamma=0.9, cutoff=2, r=1.0, g=0.95, b=1.1),
}
W, H = 37, 23


def source():
    image = Image.new("RGBA", (W, H))
    px = image.load()
    for y in range(H):
        for x in range(W):
            px[x, y] = ((x * 7 + y * 3) % 256, (x * x + 2 * y) % 256, (255 - x * 5 + y * y) % 256, (x * 11 + y * 13) % 256)
    return image


def half_up(value):
    return max(0, min(255, int(value + 0.5)))


def apply(image, p):
    alpha = image.getchannel("A")
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
    out = rgb.convert("RGBA")
    out.putalpha(alpha)
    return out


if __name__ == "__main__":
    src = source()
    src.save("source.png")
    for name, profile in PROFILES.items():
        apply(src, profile).save(f"{name}.png")
