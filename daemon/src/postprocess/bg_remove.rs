//! Background removal with a U²-Net model (u2netp by default, u2net for quality).
//!
//! The pre- and post-processing are rembg's (2.0.86), byte for byte, so our masks equal its masks
//! for the same model file: RGB resized to 320×320 with Pillow's Lanczos, divided by its largest
//! value, normalised with the ImageNet mean and deviation in `f64`; the first output min-max
//! scaled in `f32`, times 255 and truncated to 8 bits, resized back with Pillow's Lanczos.
//!
//! What is done with the mask is ours: the source's own alpha is kept (multiplied by the mask),
//! colours are not darkened at the edges (rembg's default composite does that), and the optional
//! matting refines the uncertain band of the mask along the image's own edges with a guided
//! filter (He, Sun and Tang, 2010).

use image::{DynamicImage, GrayImage, RgbaImage};
use kroma_protocol::{ErrorCode, ErrorKind};

use super::resize::lanczos_resize;
use crate::error::Problem;
use crate::postprocess::onnx::Model;

/// The model's input side.
pub const SIDE: usize = 320;
const MEAN: [f64; 3] = [0.485, 0.456, 0.406];
const DEVIATION: [f64; 3] = [0.229, 0.224, 0.225];

/// Mask values at or above this are certainly foreground for matting (rembg's default).
const FOREGROUND: u8 = 240;
/// Mask values at or below this are certainly background for matting (rembg's default).
const BACKGROUND: u8 = 10;

/// What to make of the mask.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// Answer the mask itself, a grayscale image.
    pub mask_only: bool,
    /// Refine the mask's uncertain edge band along the image's edges.
    pub matting: bool,
    /// Put the cut-out on this opaque colour instead of transparency.
    pub background: Option<[u8; 3]>,
}

/// Removes the background of `image` with `model`. Blocking: one inference.
pub fn remove(model: &Model, image: &RgbaImage, options: Options) -> Result<DynamicImage, Problem> {
    let (width, height) = (image.width() as usize, image.height() as usize);
    let rgb: Vec<u8> = image.pixels().flat_map(|p| [p[0], p[1], p[2]]).collect();
    let input = input_tensor(&rgb, (width, height));
    let (shape, output) = model.run([1, 3, SIDE, SIDE], &input)?;
    let side = SIDE as i64;
    if shape.len() != 4 || shape[2] != side || shape[3] != side || output.len() < SIDE * SIDE {
        return Err(Problem::new(
            ErrorKind::Infra,
            ErrorCode::ModelInterface,
            format!(
                "{} answered a {shape:?} tensor; a background-removal model answers [1, 1, {SIDE}, {SIDE}]",
                model.installed.name
            ),
        ));
    }
    let mut mask = mask_from_output(&output[..SIDE * SIDE], (width, height));
    if options.matting {
        mask = refine(&rgb, &mask, (width, height));
    }
    Ok(compose(image, mask, options))
}

/// `#RRGGBB`.
pub fn parse_colour(text: &str) -> Result<[u8; 3], Problem> {
    let invalid = || {
        Problem::validation(
            ErrorCode::InvalidColour,
            format!("`{text}` is not a colour like #ffffff"),
        )
    };
    let hex = text.strip_prefix('#').ok_or_else(invalid)?;
    if hex.len() != 6 || !hex.is_ascii() {
        return Err(invalid());
    }
    let channel = |at: usize| u8::from_str_radix(&hex[at..at + 2], 16).map_err(|_| invalid());
    Ok([channel(0)?, channel(2)?, channel(4)?])
}

/// rembg's model input: `1×3×320×320`, NCHW.
pub fn input_tensor(rgb: &[u8], size: (usize, usize)) -> Vec<f32> {
    let small = lanczos_resize(rgb, size, 3, (SIDE, SIDE));
    let max = f64::from(small.iter().copied().max().unwrap_or(0)).max(1e-6);
    let plane = SIDE * SIDE;
    let mut tensor = vec![0f32; 3 * plane];
    for (i, pixel) in small.chunks_exact(3).enumerate() {
        for c in 0..3 {
            tensor[c * plane + i] = ((f64::from(pixel[c]) / max - MEAN[c]) / DEVIATION[c]) as f32;
        }
    }
    tensor
}

/// rembg's mask from the model's first output (`320×320` values), at the image's size.
pub fn mask_from_output(output: &[f32], size: (usize, usize)) -> GrayImage {
    let (low, high) = output
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(low, high), v| {
            (low.min(*v), high.max(*v))
        });
    let range = high - low;
    let small: Vec<u8> = output
        .iter()
        .map(|v| {
            if range > 0.0 {
                // Truncation, as numpy's `astype(uint8)`.
                ((v - low) / range * 255.0) as u8
            } else {
                0
            }
        })
        .collect();
    let full = lanczos_resize(&small, (SIDE, SIDE), 1, size);
    GrayImage::from_raw(size.0 as u32, size.1 as u32, full)
        .unwrap_or_else(|| GrayImage::new(size.0 as u32, size.1 as u32))
}

/// The output image: the mask itself, the cut-out with the mask as (part of its) alpha, or the
/// cut-out on a solid colour.
pub fn compose(image: &RgbaImage, mask: GrayImage, options: Options) -> DynamicImage {
    if options.mask_only {
        return DynamicImage::ImageLuma8(mask);
    }
    let mut out = image.clone();
    for (pixel, m) in out.pixels_mut().zip(mask.as_raw()) {
        let alpha = mul255(pixel[3], *m);
        match options.background {
            None => pixel[3] = alpha,
            Some(background) => {
                for c in 0..3 {
                    pixel[c] = mul255(pixel[c], alpha) + mul255(background[c], 255 - alpha);
                }
                pixel[3] = 255;
            }
        }
    }
    DynamicImage::ImageRgba8(out)
}

/// `a × b / 255`, rounded.
fn mul255(a: u8, b: u8) -> u8 {
    let product = u32::from(a) * u32::from(b) + 128;
    ((product + (product >> 8)) >> 8) as u8
}

/// Refines the mask's uncertain band (values between [`BACKGROUND`] and [`FOREGROUND`]) with a
/// guided filter whose guide is the image's luma; certain pixels keep their value.
pub fn refine(rgb: &[u8], mask: &GrayImage, (width, height): (usize, usize)) -> GrayImage {
    // The band is a few model pixels wide, each `side / 320` image pixels; the window spans it.
    let radius = (width.max(height) * 4).div_ceil(SIDE).max(4);
    let epsilon = 1e-4;
    let guide: Vec<f64> = rgb
        .chunks_exact(3)
        .map(|p| {
            (0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2])) / 255.0
        })
        .collect();
    let input: Vec<f64> = mask
        .as_raw()
        .iter()
        .map(|v| f64::from(*v) / 255.0)
        .collect();
    let boxed = |values: &[f64]| box_mean(values, (width, height), radius);
    let mean_guide = boxed(&guide);
    let mean_input = boxed(&input);
    let mean_product = boxed(
        &guide
            .iter()
            .zip(&input)
            .map(|(g, p)| g * p)
            .collect::<Vec<_>>(),
    );
    let mean_square = boxed(&guide.iter().map(|g| g * g).collect::<Vec<_>>());
    let mut a = Vec::with_capacity(guide.len());
    let mut b = Vec::with_capacity(guide.len());
    for i in 0..guide.len() {
        let covariance = mean_product[i] - mean_guide[i] * mean_input[i];
        let variance = mean_square[i] - mean_guide[i] * mean_guide[i];
        let slope = covariance / (variance + epsilon);
        a.push(slope);
        b.push(mean_input[i] - slope * mean_guide[i]);
    }
    let (mean_a, mean_b) = (boxed(&a), boxed(&b));
    let refined = mask
        .as_raw()
        .iter()
        .enumerate()
        .map(|(i, m)| {
            if *m >= FOREGROUND || *m <= BACKGROUND {
                *m
            } else {
                ((mean_a[i] * guide[i] + mean_b[i]).clamp(0.0, 1.0) * 255.0).round() as u8
            }
        })
        .collect();
    GrayImage::from_raw(width as u32, height as u32, refined).unwrap_or_else(|| mask.clone())
}

/// The mean of `values` over a `(2r+1)²` window around each pixel, clipped at the borders, with a
/// summed-area table.
fn box_mean(values: &[f64], (width, height): (usize, usize), radius: usize) -> Vec<f64> {
    let stride = width + 1;
    let mut table = vec![0f64; stride * (height + 1)];
    for y in 0..height {
        let mut row = 0.0;
        for x in 0..width {
            row += values[y * width + x];
            table[(y + 1) * stride + x + 1] = table[y * stride + x + 1] + row;
        }
    }
    let mut out = Vec::with_capacity(values.len());
    for y in 0..height {
        let (top, bottom) = (y.saturating_sub(radius), (y + radius + 1).min(height));
        for x in 0..width {
            let (left, right) = (x.saturating_sub(radius), (x + radius + 1).min(width));
            let sum = table[bottom * stride + right]
                - table[top * stride + right]
                - table[bottom * stride + left]
                + table[top * stride + left];
            out.push(sum / ((bottom - top) * (right - left)) as f64);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mul255_is_exact_at_the_ends_and_rounds() {
        assert_eq!(mul255(255, 255), 255);
        assert_eq!(mul255(200, 0), 0);
        assert_eq!(mul255(200, 255), 200);
        assert_eq!(mul255(128, 128), 64);
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                let exact = f64::from(a) * f64::from(b) / 255.0;
                assert!((f64::from(mul255(a, b)) - exact).abs() <= 0.5 + 1e-9);
            }
        }
    }

    #[test]
    fn a_flat_output_gives_an_empty_mask_not_a_division_by_zero() {
        let mask = mask_from_output(&vec![0.3; SIDE * SIDE], (5, 7));
        assert_eq!(mask.dimensions(), (5, 7));
        assert!(mask.as_raw().iter().all(|v| *v == 0));
    }

    #[test]
    fn the_input_tensor_is_normalised_like_rembg() {
        // A flat image: every value becomes (v / v - mean) / deviation = (1 - mean) / deviation.
        let rgb = vec![90u8; 4 * 3 * 3];
        let tensor = input_tensor(&rgb, (4, 3));
        assert_eq!(tensor.len(), 3 * SIDE * SIDE);
        for c in 0..3 {
            let expected = ((1.0 - MEAN[c]) / DEVIATION[c]) as f32;
            assert!(
                tensor[c * SIDE * SIDE..][..SIDE * SIDE]
                    .iter()
                    .all(|v| *v == expected)
            );
        }
    }

    #[test]
    fn compose_keeps_the_source_alpha_and_colours() {
        let image = RgbaImage::from_pixel(2, 1, image::Rgba([200, 100, 50, 128]));
        let mask = GrayImage::from_raw(2, 1, vec![255, 128]).expect("size");
        let out = compose(&image, mask.clone(), Options::default()).to_rgba8();
        assert_eq!(out.get_pixel(0, 0).0, [200, 100, 50, 128]);
        assert_eq!(out.get_pixel(1, 0).0, [200, 100, 50, 64]);
        let on_white = Options {
            background: Some([255, 255, 255]),
            ..Options::default()
        };
        let out = compose(&image, mask.clone(), on_white).to_rgba8();
        assert_eq!(out.get_pixel(0, 0).0[3], 255);
        assert_eq!(out.get_pixel(1, 0).0, [241, 216, 204, 255]);
        let only = Options {
            mask_only: true,
            ..Options::default()
        };
        assert_eq!(
            compose(&image, mask.clone(), only),
            DynamicImage::ImageLuma8(mask)
        );
    }

    #[test]
    fn box_mean_of_a_constant_is_the_constant_even_at_the_borders() {
        let values = vec![0.25; 9 * 4];
        assert!(
            box_mean(&values, (9, 4), 3)
                .iter()
                .all(|v| (v - 0.25).abs() < 1e-12)
        );
    }

    /// A hard edge in the image and a soft, misplaced edge in the mask: matting moves the mask's
    /// half-way point onto the image's edge, brings the band closer to the truth, and leaves the
    /// certain pixels alone.
    #[test]
    fn matting_pulls_the_uncertain_band_to_the_image_edge() {
        let (width, height) = (64usize, 16usize);
        let edge = 32;
        let rgb: Vec<u8> = (0..width * height)
            .flat_map(|i| if i % width < edge { [230; 3] } else { [20; 3] })
            .collect();
        // The mask ramps from 255 to 0 over x = 28..38, centred a pixel off the real edge.
        let mask = GrayImage::from_fn(width as u32, height as u32, |x, _| {
            let t = (f64::from(x) - 28.0) / 10.0;
            image::Luma([((1.0 - t.clamp(0.0, 1.0)) * 255.0).round() as u8])
        });
        let truth = |x: usize| if x < edge { 255.0 } else { 0.0 };
        let error = |m: &GrayImage| -> f64 {
            (0..width)
                .map(|x| (f64::from(m.get_pixel(x as u32, 0)[0]) - truth(x)).abs())
                .sum()
        };
        let refined = refine(&rgb, &mask, (width, height));
        let crossing = |m: &GrayImage| (0..width as u32).find(|x| m.get_pixel(*x, 0)[0] < 128);
        assert_eq!(crossing(&mask), Some(edge as u32 + 2));
        assert_eq!(crossing(&refined), Some(edge as u32));
        assert!(
            error(&refined) < error(&mask) * 0.85,
            "{} vs {}",
            error(&refined),
            error(&mask)
        );
        for (before, after) in mask.as_raw().iter().zip(refined.as_raw()) {
            if *before >= FOREGROUND || *before <= BACKGROUND {
                assert_eq!(before, after);
            }
        }
    }
}
