//! Colour profiles (reference §5.5) with the old pipeline's exact arithmetic (Pillow's
//! `ImageOps.autocontrast` and `ImageEnhance`), on the RGB channels only: alpha is kept as it is.
//!
//! Order, each step skipped when neutral: autocontrast (cutoff > 0) → brightness → contrast →
//! saturation → sharpness → gamma → per-channel multipliers. [`apply`] does this in three passes
//! with lookup tables; [`apply_stepwise`] is the plain one-step-at-a-time version it must equal
//! (the tests check both against golden images made with Pillow; `kromactl bench color` compares
//! their speed).

use std::collections::BTreeMap;

use image::RgbaImage;
use serde::{Deserialize, Serialize};

/// One profile. Missing fields are neutral (factors 1.0, cutoff 0).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ColorProfile {
    pub brightness: f64,
    pub contrast: f64,
    pub saturation: f64,
    pub sharpness: f64,
    pub gamma: f64,
    /// Percent of the darkest and of the brightest samples ignored by autocontrast; 0: off.
    pub autocontrast_cutoff: f64,
    pub r: f64,
    pub g: f64,
    pub b: f64,
}

impl Default for ColorProfile {
    fn default() -> ColorProfile {
        ColorProfile {
            brightness: 1.0,
            contrast: 1.0,
            saturation: 1.0,
            sharpness: 1.0,
            gamma: 1.0,
            autocontrast_cutoff: 0.0,
            r: 1.0,
            g: 1.0,
            b: 1.0,
        }
    }
}

/// The built-in profiles: `neutral`, `cinematic_warm`, `cold_rain`.
pub fn builtin() -> BTreeMap<String, ColorProfile> {
    let profile = |brightness, contrast, saturation, sharpness, gamma, r, g, b| ColorProfile {
        brightness,
        contrast,
        saturation,
        sharpness,
        gamma,
        autocontrast_cutoff: 0.0,
        r,
        g,
        b,
    };
    BTreeMap::from([
        (
            "neutral".to_owned(),
            profile(1.0, 1.02, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0),
        ),
        (
            "cinematic_warm".to_owned(),
            profile(0.98, 1.12, 1.08, 1.04, 1.03, 1.04, 1.0, 0.96),
        ),
        (
            "cold_rain".to_owned(),
            profile(0.97, 1.10, 0.95, 1.03, 1.01, 0.97, 1.0, 1.05),
        ),
    ])
}

impl ColorProfile {
    /// Every factor finite and ≥ 0 (gamma > 0), at most 10; the cutoff 0 to 49 %.
    pub fn check(&self) -> Result<(), String> {
        let factors = [
            ("brightness", self.brightness),
            ("contrast", self.contrast),
            ("saturation", self.saturation),
            ("sharpness", self.sharpness),
            ("gamma", self.gamma),
            ("r", self.r),
            ("g", self.g),
            ("b", self.b),
        ];
        for (name, value) in factors {
            if !(value.is_finite() && (0.0..=10.0).contains(&value)) {
                return Err(format!("{name} must be a number from 0 to 10, got {value}"));
            }
        }
        if self.gamma == 0.0 {
            return Err("gamma must be above 0".to_owned());
        }
        if !(self.autocontrast_cutoff.is_finite()
            && (0.0..50.0).contains(&self.autocontrast_cutoff))
        {
            return Err(format!(
                "autocontrast_cutoff must be from 0 to below 50 (percent), got {}",
                self.autocontrast_cutoff
            ));
        }
        Ok(())
    }
}

/// Pillow's `L` conversion: ITU-R 601-2 luma in 16-bit fixed point.
fn luma(r: u8, g: u8, b: u8) -> u8 {
    ((u32::from(r) * 19595 + u32::from(g) * 38470 + u32::from(b) * 7471 + 0x8000) >> 16) as u8
}

/// Pillow's `Image.blend(degenerate, image, factor)` for one sample: C `float` arithmetic,
/// truncated; clipped only when extrapolating.
fn blend(degenerate: u8, value: u8, factor: f32) -> u8 {
    let t = f32::from(degenerate) + factor * (i32::from(value) - i32::from(degenerate)) as f32;
    if (0.0..=1.0).contains(&factor) {
        t as u8
    } else if t <= 0.0 {
        0
    } else if t >= 255.0 {
        255
    } else {
        t as u8
    }
}

fn half_up(value: f64) -> u8 {
    (value + 0.5).clamp(0.0, 255.0) as u8
}

/// Removes `cut` samples from the histogram, starting at the first count `counts` yields.
fn cut_off<'a>(counts: impl Iterator<Item = &'a mut u64>, mut cut: u64) {
    for count in counts {
        if cut > *count {
            cut -= *count;
            *count = 0;
        } else {
            *count -= cut;
            cut = 0;
        }
        if cut == 0 {
            break;
        }
    }
}

/// `ImageOps.autocontrast(cutoff)` tables, one per channel, from the RGB histograms.
fn autocontrast_luts(image: &RgbaImage, cutoff: f64) -> [[u8; 256]; 3] {
    let mut histograms = [[0u64; 256]; 3];
    for pixel in image.pixels() {
        for channel in 0..3 {
            histograms[channel][usize::from(pixel[channel])] += 1;
        }
    }
    histograms.map(|mut h| {
        let n: u64 = h.iter().sum();
        let cut_of = || ((n as f64 * cutoff) / 100.0).floor() as u64;
        cut_off(h.iter_mut(), cut_of());
        cut_off(h.iter_mut().rev(), cut_of());
        let lo = h.iter().position(|count| *count > 0).unwrap_or(0);
        let hi = h.iter().rposition(|count| *count > 0).unwrap_or(0);
        let mut lut = [0u8; 256];
        for (ix, slot) in lut.iter_mut().enumerate() {
            *slot = if hi <= lo {
                ix as u8
            } else {
                let scale = 255.0 / (hi - lo) as f64;
                let offset = -(lo as f64) * scale;
                (ix as f64 * scale + offset).clamp(0.0, 255.0) as u8
            };
        }
        lut
    })
}

fn gamma_lut(gamma: f64) -> [u8; 256] {
    std::array::from_fn(|i| half_up(255.0 * (i as f64 / 255.0).powf(1.0 / gamma)))
}

fn multiplier_lut(factor: f64) -> [u8; 256] {
    std::array::from_fn(|v| half_up(v as f64 * factor))
}

/// The mean luma, as Pillow's `Contrast` rounds it.
fn mean_luma(image: &RgbaImage) -> u8 {
    let pixels = u64::from(image.width()) * u64::from(image.height());
    if pixels == 0 {
        return 0;
    }
    let sum: u64 = image
        .pixels()
        .map(|p| u64::from(luma(p[0], p[1], p[2])))
        .sum();
    (sum as f64 / pixels as f64 + 0.5) as u8
}

/// Pillow's `ImageFilter.SMOOTH` (3×3, weights 1 and 5 in the middle, over 13) on the RGB
/// channels; the outermost rows and columns are copied. Same float operations, in the same order,
/// as Pillow's `ImagingFilter3x3`, so the results are identical.
fn smooth(image: &RgbaImage) -> RgbaImage {
    let (width, height) = (image.width() as usize, image.height() as usize);
    let mut out = image.clone();
    if width < 3 || height < 3 {
        return out;
    }
    let src = image.as_raw();
    let stride = width * 4;
    let dst: &mut [u8] = &mut out;
    for y in 1..height - 1 {
        let above = &src[(y - 1) * stride..y * stride];
        let here = &src[y * stride..(y + 1) * stride];
        let below = &src[(y + 1) * stride..(y + 2) * stride];
        let row_out = &mut dst[y * stride..(y + 1) * stride];
        for x in 1..width - 1 {
            for channel in 0..3 {
                let i = x * 4 + channel;
                row_out[i] = smooth_sample(above, here, below, i);
            }
        }
    }
    out
}

/// `ImageFilter.SMOOTH` at byte `i` of row `here` (not on the image's border).
#[inline]
fn smooth_sample(above: &[u8], here: &[u8], below: &[u8], i: usize) -> u8 {
    let side = 1.0f32 / 13.0;
    let middle = 5.0f32 / 13.0;
    let f = |row: &[u8], k: usize| f32::from(row[i + k - 4]);
    let mut ss = 0.0f32;
    ss += f(above, 0) * side + f(above, 4) * side + f(above, 8) * side;
    ss += f(here, 0) * side + f(here, 4) * middle + f(here, 8) * side;
    ss += f(below, 0) * side + f(below, 4) * side + f(below, 8) * side;
    let ss = ss + 0.5;
    if ss <= 0.0 {
        0
    } else if ss >= 255.0 {
        255
    } else {
        ss as u8
    }
}

/// Images smaller than this are done on one thread: starting threads would cost more.
const PARALLEL_MIN_BYTES: usize = 1 << 20;

/// How many threads a pass uses: every core, since a one-off call is often a single file.
fn threads(bytes: usize) -> usize {
    if bytes < PARALLEL_MIN_BYTES {
        return 1;
    }
    std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(8)
}

/// Runs `work(first_row, rows)` on bands of whole rows of `buf` (`stride` bytes a row), one band
/// per thread.
fn par_rows(buf: &mut [u8], stride: usize, work: impl Fn(usize, &mut [u8]) + Sync) {
    let rows = buf.len() / stride.max(1);
    let threads = threads(buf.len()).min(rows);
    if threads <= 1 {
        work(0, buf);
        return;
    }
    let per_band = rows.div_ceil(threads);
    let work = &work;
    std::thread::scope(|scope| {
        for (index, band) in buf.chunks_mut(per_band * stride).enumerate() {
            scope.spawn(move || work(index * per_band, band));
        }
    });
}

/// The sum of `work` over bands of whole rows of `buf`, one band per thread.
fn par_sum(buf: &[u8], stride: usize, work: impl Fn(&[u8]) -> u64 + Sync) -> u64 {
    let rows = buf.len() / stride.max(1);
    let threads = threads(buf.len()).min(rows);
    if threads <= 1 {
        return work(buf);
    }
    let per_band = rows.div_ceil(threads);
    let work = &work;
    std::thread::scope(|scope| {
        let bands: Vec<_> = buf
            .chunks(per_band * stride)
            .map(|band| scope.spawn(move || work(band)))
            .collect();
        bands
            .into_iter()
            .map(|band| {
                band.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .sum()
    })
}

/// The profile, one step at a time, each a full pass: the plain version [`apply`] must equal.
pub fn apply_stepwise(image: &RgbaImage, profile: &ColorProfile) -> RgbaImage {
    let mut out = image.clone();
    let map = |out: &mut RgbaImage, luts: &[[u8; 256]; 3]| {
        for pixel in out.pixels_mut() {
            for channel in 0..3 {
                pixel[channel] = luts[channel][usize::from(pixel[channel])];
            }
        }
    };
    if profile.autocontrast_cutoff > 0.0 {
        let luts = autocontrast_luts(&out, profile.autocontrast_cutoff);
        map(&mut out, &luts);
    }
    if profile.brightness != 1.0 {
        let f = profile.brightness as f32;
        for pixel in out.pixels_mut() {
            for channel in 0..3 {
                pixel[channel] = blend(0, pixel[channel], f);
            }
        }
    }
    if profile.contrast != 1.0 {
        let mean = mean_luma(&out);
        let f = profile.contrast as f32;
        for pixel in out.pixels_mut() {
            for channel in 0..3 {
                pixel[channel] = blend(mean, pixel[channel], f);
            }
        }
    }
    if profile.saturation != 1.0 {
        let f = profile.saturation as f32;
        for pixel in out.pixels_mut() {
            let l = luma(pixel[0], pixel[1], pixel[2]);
            for channel in 0..3 {
                pixel[channel] = blend(l, pixel[channel], f);
            }
        }
    }
    if profile.sharpness != 1.0 {
        let smoothed = smooth(&out);
        let f = profile.sharpness as f32;
        for (pixel, soft) in out.pixels_mut().zip(smoothed.pixels()) {
            for channel in 0..3 {
                pixel[channel] = blend(soft[channel], pixel[channel], f);
            }
        }
    }
    if profile.gamma != 1.0 {
        let lut = gamma_lut(profile.gamma);
        map(&mut out, &[lut, lut, lut]);
    }
    if (profile.r, profile.g, profile.b) != (1.0, 1.0, 1.0) {
        let luts = [
            multiplier_lut(profile.r),
            multiplier_lut(profile.g),
            multiplier_lut(profile.b),
        ];
        map(&mut out, &luts);
    }
    out
}

/// Composes two per-channel tables: `second` after `first`.
fn then(first: &[[u8; 256]; 3], second: &[[u8; 256]; 3]) -> [[u8; 256]; 3] {
    std::array::from_fn(|channel| {
        std::array::from_fn(|v| second[channel][usize::from(first[channel][v])])
    })
}

fn identity() -> [[u8; 256]; 3] {
    let lut: [u8; 256] = std::array::from_fn(|v| v as u8);
    [lut, lut, lut]
}

/// The same result as [`apply_stepwise`], faster: the per-sample steps are folded into lookup
/// tables, so the image is read three times (the mean for contrast, the steps up to saturation,
/// then sharpness with the tail tables) instead of once per step, and each pass runs on bands of
/// rows on every core.
pub fn apply(image: &RgbaImage, profile: &ColorProfile) -> RgbaImage {
    let (width, height) = (image.width() as usize, image.height() as usize);
    let stride = width * 4;
    // Autocontrast then brightness: per-sample, one table per channel.
    let mut head = identity();
    if profile.autocontrast_cutoff > 0.0 {
        head = autocontrast_luts(image, profile.autocontrast_cutoff);
    }
    if profile.brightness != 1.0 {
        let f = profile.brightness as f32;
        let lut: [u8; 256] = std::array::from_fn(|v| blend(0, v as u8, f));
        head = then(&head, &[lut, lut, lut]);
    }
    // Contrast needs the mean luma after the head tables.
    if profile.contrast != 1.0 {
        let pixels = (width * height) as u64;
        let mean = if pixels == 0 {
            0
        } else {
            let sum = par_sum(image.as_raw(), stride, |band| {
                band.chunks_exact(4)
                    .map(|p| {
                        u64::from(luma(
                            head[0][usize::from(p[0])],
                            head[1][usize::from(p[1])],
                            head[2][usize::from(p[2])],
                        ))
                    })
                    .sum()
            });
            (sum as f64 / pixels as f64 + 0.5) as u8
        };
        let f = profile.contrast as f32;
        let lut: [u8; 256] = std::array::from_fn(|v| blend(mean, v as u8, f));
        head = then(&head, &[lut, lut, lut]);
    }
    let mut out = image.clone();
    let saturation = (profile.saturation != 1.0).then_some(profile.saturation as f32);
    par_rows(&mut out, stride, |_, band| {
        for pixel in band.chunks_exact_mut(4) {
            let mut rgb = [
                head[0][usize::from(pixel[0])],
                head[1][usize::from(pixel[1])],
                head[2][usize::from(pixel[2])],
            ];
            if let Some(f) = saturation {
                let l = luma(rgb[0], rgb[1], rgb[2]);
                rgb = rgb.map(|v| blend(l, v, f));
            }
            pixel[..3].copy_from_slice(&rgb);
        }
    });
    // Gamma then multipliers: per-sample again, after sharpness.
    let mut tail = identity();
    if profile.gamma != 1.0 {
        let lut = gamma_lut(profile.gamma);
        tail = then(&tail, &[lut, lut, lut]);
    }
    if (profile.r, profile.g, profile.b) != (1.0, 1.0, 1.0) {
        tail = then(
            &tail,
            &[
                multiplier_lut(profile.r),
                multiplier_lut(profile.g),
                multiplier_lut(profile.b),
            ],
        );
    }
    if profile.sharpness == 1.0 || width < 3 || height < 3 {
        // Sharpness blends each sample with itself on the border (and everywhere on images too
        // small to smooth), which leaves it as it is.
        par_rows(&mut out, stride, |_, band| {
            for pixel in band.chunks_exact_mut(4) {
                for channel in 0..3 {
                    pixel[channel] = tail[channel][usize::from(pixel[channel])];
                }
            }
        });
        return out;
    }
    // Sharpness reads the rows around each one, so it writes to a new image.
    let f = profile.sharpness as f32;
    let src = out.as_raw();
    let mut sharp = RgbaImage::new(image.width(), image.height());
    par_rows(&mut sharp, stride, |first_row, band| {
        for (offset, row_out) in band.chunks_exact_mut(stride).enumerate() {
            let y = first_row + offset;
            let here = &src[y * stride..(y + 1) * stride];
            let inner = y > 0 && y < height - 1;
            for x in 0..width {
                let i = x * 4;
                for channel in 0..3 {
                    let value = here[i + channel];
                    let soft = if inner && x > 0 && x < width - 1 {
                        let above = &src[(y - 1) * stride..y * stride];
                        let below = &src[(y + 1) * stride..(y + 2) * stride];
                        smooth_sample(above, here, below, i + channel)
                    } else {
                        value
                    };
                    row_out[i + channel] = tail[channel][usize::from(blend(soft, value, f))];
                }
                row_out[i + 3] = here[i + 3];
            }
        }
    });
    sharp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn golden(name: &str) -> RgbaImage {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/color")
            .join(format!("{name}.png"));
        image::open(&path)
            .unwrap_or_else(|err| panic!("{}: {err}", path.display()))
            .to_rgba8()
    }

    fn profiles() -> BTreeMap<String, ColorProfile> {
        let mut profiles = builtin();
        profiles.insert(
            "test_every_step".to_owned(),
            ColorProfile {
                brightness: 1.05,
                contrast: 0.9,
                saturation: 1.2,
                sharpness: 0.6,
                gamma: 0.9,
                autocontrast_cutoff: 2.0,
                r: 1.0,
                g: 0.95,
                b: 1.1,
            },
        );
        profiles
    }

    #[test]
    fn bands_on_every_core_give_the_same_pixels_as_one_pass_per_step() {
        // Large enough to be split into bands (PARALLEL_MIN_BYTES), with odd sizes so the bands
        // are uneven and the last one short.
        let source = RgbaImage::from_fn(733, 419, |x, y| {
            image::Rgba([
                (x * 7 + y * 3) as u8,
                (x ^ y) as u8,
                (x * y / 97) as u8,
                (x + 2 * y) as u8,
            ])
        });
        assert!(source.as_raw().len() > PARALLEL_MIN_BYTES);
        for (name, profile) in profiles() {
            assert_eq!(
                apply(&source, &profile),
                apply_stepwise(&source, &profile),
                "{name}"
            );
        }
    }

    #[test]
    fn both_versions_equal_pillow_exactly_and_keep_alpha() {
        let source = golden("source");
        for (name, profile) in profiles() {
            let expected = golden(&name);
            assert_eq!(
                apply_stepwise(&source, &profile),
                expected,
                "{name}, stepwise"
            );
            assert_eq!(apply(&source, &profile), expected, "{name}, fused");
            for (out, input) in apply(&source, &profile).pixels().zip(source.pixels()) {
                assert_eq!(out[3], input[3], "{name}: alpha is kept");
            }
        }
    }

    #[test]
    fn tiny_and_empty_images_work() {
        let warm = &builtin()["cinematic_warm"];
        for (w, h) in [(1, 1), (2, 5), (0, 0), (20000, 1)] {
            let image = RgbaImage::from_pixel(w, h, image::Rgba([10, 200, 30, 128]));
            assert_eq!(apply(&image, warm), apply_stepwise(&image, warm), "{w}x{h}");
        }
    }

    #[test]
    fn profiles_are_checked() {
        assert!(ColorProfile::default().check().is_ok());
        for bad in [
            ColorProfile {
                gamma: 0.0,
                ..ColorProfile::default()
            },
            ColorProfile {
                contrast: f64::NAN,
                ..ColorProfile::default()
            },
            ColorProfile {
                autocontrast_cutoff: 50.0,
                ..ColorProfile::default()
            },
            ColorProfile {
                r: -1.0,
                ..ColorProfile::default()
            },
        ] {
            assert!(bad.check().is_err(), "{bad:?}");
        }
        let parsed: ColorProfile = toml::from_str("contrast = 1.2").expect("partial profile");
        assert_eq!(parsed.brightness, 1.0);
        assert!(toml::from_str::<ColorProfile>("contrst = 1.2").is_err());
    }
}
