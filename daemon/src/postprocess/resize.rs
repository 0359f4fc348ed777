//! Lanczos resampling of 8-bit images that gives the same bytes as Pillow's
//! `Image.resize(size, Image.LANCZOS)`, so our background-removal masks equal rembg's, which
//! resizes with Pillow on both sides of the model.
//!
//! It follows the algorithm of Pillow's `libImaging/Resample.c` (HPND licence, © Secret Labs AB,
//! Fredrik Lundh, Alex Clark and contributors): separable, horizontal pass first into an 8-bit
//! intermediate, per-output-pixel weights of a 3-lobe Lanczos kernel widened by the scale when
//! shrinking, normalised in `f64`, then applied in fixed point with 22 fraction bits. The `image`
//! crate's Lanczos3 is close but not equal (it filters vertically first in `f32`).

/// Fraction bits of the fixed-point weights.
const PRECISION_BITS: u32 = 32 - 8 - 2;

/// The Lanczos kernel's support, in input pixels at scale 1.
const SUPPORT: f64 = 3.0;

fn sinc(x: f64) -> f64 {
    if x == 0.0 {
        1.0
    } else {
        let x = x * std::f64::consts::PI;
        x.sin() / x
    }
}

fn lanczos(x: f64) -> f64 {
    if (-SUPPORT..SUPPORT).contains(&x) {
        sinc(x) * sinc(x / SUPPORT)
    } else {
        0.0
    }
}

/// For every output pixel along one axis: the first input pixel and the fixed-point weights of
/// the `len` input pixels it reads.
struct Weights {
    spans: Vec<(usize, usize)>,
    /// `spans.len() × stride` weights, row-major.
    values: Vec<i32>,
    stride: usize,
}

impl Weights {
    fn new(input: usize, output: usize) -> Weights {
        let scale = input as f64 / output as f64;
        let filter_scale = scale.max(1.0);
        let support = SUPPORT * filter_scale;
        let stride = support.ceil() as usize * 2 + 1;
        let one = f64::from(1u32 << PRECISION_BITS);
        let mut spans = Vec::with_capacity(output);
        let mut values = vec![0i32; output * stride];
        let mut weights = Vec::with_capacity(stride);
        for out in 0..output {
            let center = (out as f64 + 0.5) * scale;
            // Truncation toward zero, as C's `(int)` does.
            let first = ((center - support + 0.5) as i64).max(0) as usize;
            let end = ((center + support + 0.5) as i64).min(input as i64) as usize;
            let len = end.saturating_sub(first).min(stride);
            weights.clear();
            weights.extend(
                (0..len).map(|i| lanczos((i as f64 + first as f64 - center + 0.5) / filter_scale)),
            );
            let total: f64 = weights.iter().sum();
            let row = &mut values[out * stride..][..len];
            for (fixed, weight) in row.iter_mut().zip(&weights) {
                let weight = if total != 0.0 {
                    weight / total
                } else {
                    *weight
                };
                *fixed = if weight < 0.0 {
                    (-0.5 + weight * one) as i32
                } else {
                    (0.5 + weight * one) as i32
                };
            }
            spans.push((first, len));
        }
        Weights {
            spans,
            values,
            stride,
        }
    }

    fn of(&self, out: usize) -> (usize, &[i32]) {
        let (first, len) = self.spans[out];
        (first, &self.values[out * self.stride..][..len])
    }
}

fn clip(accumulated: i32) -> u8 {
    (accumulated >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Resizes an interleaved 8-bit image of `channels` channels (1 to 4; no alpha premultiplying:
/// callers pass RGB or single channels, as rembg does). Sizes must be non-zero.
pub fn lanczos_resize(
    pixels: &[u8],
    size: (usize, usize),
    channels: usize,
    out_size: (usize, usize),
) -> Vec<u8> {
    match channels {
        1 => resize::<1>(pixels, size, out_size),
        2 => resize::<2>(pixels, size, out_size),
        3 => resize::<3>(pixels, size, out_size),
        _ => resize::<4>(pixels, size, out_size),
    }
}

fn resize<const CHANNELS: usize>(
    pixels: &[u8],
    (width, height): (usize, usize),
    (out_width, out_height): (usize, usize),
) -> Vec<u8> {
    debug_assert_eq!(pixels.len(), width * height * CHANNELS);
    let half = 1i32 << (PRECISION_BITS - 1);
    let vertical = (out_height != height).then(|| Weights::new(height, out_height));
    // The input rows the vertical pass reads; the horizontal pass only makes those.
    let (first_row, end_row) = match &vertical {
        Some(weights) => {
            let (first, _) = weights.spans[0];
            let (last, len) = weights.spans[out_height - 1];
            (first, last + len)
        }
        None => (0, height),
    };
    let horizontal: std::borrow::Cow<[u8]> = if out_width != width {
        let weights = Weights::new(width, out_width);
        let rows = end_row - first_row;
        let mut out = vec![0u8; out_width * rows * CHANNELS];
        for (row, out_row) in out.chunks_exact_mut(out_width * CHANNELS).enumerate() {
            let source = &pixels[(first_row + row) * width * CHANNELS..][..width * CHANNELS];
            for (x, out_pixel) in out_row.chunks_exact_mut(CHANNELS).enumerate() {
                let (first, values) = weights.of(x);
                let taps = &source[first * CHANNELS..(first + values.len()) * CHANNELS];
                let mut sums = [half; CHANNELS];
                for (pixel, weight) in taps.chunks_exact(CHANNELS).zip(values) {
                    for (sum, value) in sums.iter_mut().zip(pixel) {
                        *sum += i32::from(*value) * weight;
                    }
                }
                for (out, sum) in out_pixel.iter_mut().zip(sums) {
                    *out = clip(sum);
                }
            }
        }
        out.into()
    } else {
        pixels[first_row * width * CHANNELS..end_row * width * CHANNELS].into()
    };
    let Some(vertical) = vertical else {
        return horizontal.into_owned();
    };
    let row_len = out_width * CHANNELS;
    let mut out = vec![0u8; row_len * out_height];
    let mut sums = vec![0i32; row_len];
    for (y, out_row) in out.chunks_exact_mut(row_len).enumerate() {
        let (first, values) = vertical.of(y);
        let first = first - first_row;
        sums.fill(half);
        for (i, weight) in values.iter().enumerate() {
            let row = &horizontal[(first + i) * row_len..][..row_len];
            for (sum, value) in sums.iter_mut().zip(row) {
                *sum += i32::from(*value) * weight;
            }
        }
        for (out, sum) in out_row.iter_mut().zip(&sums) {
            *out = clip(*sum);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_size_is_a_copy() {
        let pixels: Vec<u8> = (0..=255).cycle().take(7 * 5 * 3).collect();
        assert_eq!(lanczos_resize(&pixels, (7, 5), 3, (7, 5)), pixels);
    }

    #[test]
    fn flat_images_stay_flat_both_ways() {
        let pixels = vec![77u8; 13 * 9];
        for size in [(1, 1), (40, 3), (320, 320), (5, 90)] {
            let out = lanczos_resize(&pixels, (13, 9), 1, size);
            assert_eq!(out.len(), size.0 * size.1);
            assert!(out.iter().all(|v| *v == 77), "{size:?}");
        }
    }

    #[test]
    fn weights_sum_to_one_in_fixed_point() {
        for (input, output) in [(10, 320), (320, 10), (1, 320), (320, 1), (97, 96)] {
            let weights = Weights::new(input, output);
            for out in 0..output {
                let (first, values) = weights.of(out);
                assert!(first + values.len() <= input);
                let total: i64 = values.iter().map(|v| i64::from(*v)).sum();
                assert!((total - (1 << PRECISION_BITS)).abs() <= values.len() as i64);
            }
        }
    }

    /// Values computed by Pillow 13.0.0, e.g.
    /// `Image.frombytes("L", (4, 1), bytes([0, 255, 0, 255])).resize((7, 1), Image.LANCZOS)`.
    /// The masks test in `tests/e2e/postprocess.rs` compares whole images with rembg's.
    #[test]
    fn matches_pillow_growing_and_shrinking() {
        let out = lanczos_resize(&[0, 255, 0, 255], (4, 1), 1, (7, 1));
        assert_eq!(out, [0, 98, 252, 128, 3, 157, 255]);
        let row = [0, 10, 200, 255, 30, 90, 120, 250, 3];
        let out = lanczos_resize(&[row, row].concat(), (9, 2), 1, (4, 3));
        assert_eq!(out, [42, 176, 98, 137].repeat(3));
    }
}
