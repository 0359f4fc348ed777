//! Drift of a candidate from its approved baseline (journey J05): a later stage of a scene (time
//! of day, weather) must keep the scene's geometry and perspective, and keep its palette unless
//! asked. Two scores, each 0 (same) to 1, rounded to 4 decimals:
//!
//! - **structure**: both images are composited over mid grey, turned into luma and stretched to a
//!   [`GRID`]×[`GRID`] grid, so images of any size and aspect ratio compare by relative position
//!   (a candidate with another aspect ratio has another framing, which is structure drift). The
//!   edge map is the square root of the Sobel gradient magnitude, blurred a little so that a shift
//!   of a pixel or two is not a full drift; structure = 1 − (Pearson correlation of the two edge
//!   maps, clamped to 0..=1). The square root makes an edge count for where it is more than for
//!   its contrast: a hue rotation changes the luma contrast of edges but keeps them in place, so it
//!   scores low; a moved object or a crop moves them, so it scores higher.
//! - **palette**: how far the colours moved, as an earth mover's distance. Pixels (at most
//!   [`PALETTE_SAMPLES`] per side, alpha-weighted, so fully transparent ones do not count) are put
//!   in BT.709 Y′CbCr and projected on seven directions: the luma axis and six chroma directions
//!   30° apart. For each direction the distance between the two 1-D distributions is the area
//!   between their cumulative histograms, as a fraction of the direction's range over all colours;
//!   palette = the mean of the seven. A binned histogram with a total-variation distance would be
//!   simpler, but it saturates as soon as the colours leave their bins, so a 90° and a 180° hue
//!   rotation would score the same; this distance keeps rising with how far the colours moved.
//!
//! An image without edges (flat, fully transparent or 0×0) has no structure to compare: two of
//! them have structure drift 0, one of them against an image with edges 1. Likewise an image
//! without visible pixels has no palette: palette drift 0 against another one, 1 against an image
//! with visible pixels. The cost is bounded: one pass over the pixels for the structure grid, at
//! most [`PALETTE_SAMPLES`]² pixels for the palette.

use image::RgbaImage;

/// Drift of a candidate from its baseline, each 0 (same) to 1, rounded to 4 decimals.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Drift {
    pub structure: f64,
    pub palette: f64,
}

/// The side of the square grid both images are stretched to before their edges are compared.
pub const GRID: u32 = 128;

/// The most pixels sampled along each side of an image for its palette.
pub const PALETTE_SAMPLES: u32 = 256;

/// Both scores of `candidate` against `baseline`.
pub fn drift(baseline: &RgbaImage, candidate: &RgbaImage) -> Drift {
    Drift {
        structure: structure_drift(baseline, candidate),
        palette: palette_drift(baseline, candidate),
    }
}

/// How much the geometry moved: 1 − the correlation of the two edge maps.
pub fn structure_drift(baseline: &RgbaImage, candidate: &RgbaImage) -> f64 {
    let score = match (edge_map(baseline), edge_map(candidate)) {
        (None, None) => 0.0,
        (Some(_), None) | (None, Some(_)) => 1.0,
        (Some(baseline_edges), Some(candidate_edges)) => {
            1.0 - correlation(&baseline_edges, &candidate_edges).clamp(0.0, 1.0)
        }
    };
    round4(score)
}

/// How far the colours moved: the mean earth mover's distance over seven colour directions.
pub fn palette_drift(baseline: &RgbaImage, candidate: &RgbaImage) -> f64 {
    let score = match (palette(baseline), palette(candidate)) {
        (None, None) => 0.0,
        (Some(_), None) | (None, Some(_)) => 1.0,
        (Some(baseline_palette), Some(candidate_palette)) => {
            let total: f64 = baseline_palette
                .iter()
                .zip(&candidate_palette)
                .map(|(a, b)| cumulative_distance(a, b))
                .sum();
            total / N_DIRECTIONS as f64
        }
    };
    round4(score.clamp(0.0, 1.0))
}

fn round4(value: f64) -> f64 {
    (value * 10_000.0).round() / 10_000.0
}

/// Luma of a gamma-encoded sRGB colour with channels in 0..=1, with the BT.709 weights.
fn luma(red: f64, green: f64, blue: f64) -> f64 {
    0.2126 * red + 0.7152 * green + 0.0722 * blue
}

/// The luma of one pixel composited over mid grey (0.5), so transparent areas count as a flat
/// grey and a cut-out's outline is an edge.
#[cfg(test)]
fn luma_over_grey(pixel: image::Rgba<u8>) -> f64 {
    let [red, green, blue, alpha] = pixel.0.map(u128::from);
    luma_of_sums(([red * alpha, green * alpha, blue * alpha, alpha], 1))
}

/// The mean luma over mid grey of some pixels from their [`premultiplied_sums`]: compositing
/// is linear, so the mean of the composited pixels is the composite of the means.
fn luma_of_sums(([red, green, blue, alpha], count): ([u128; 4], u128)) -> f64 {
    let count = count.max(1) as f64;
    let coverage = alpha as f64 / (255.0 * count);
    let over_grey = |premultiplied: u128| {
        premultiplied as f64 / (255.0 * 255.0 * count) + 0.5 * (1.0 - coverage)
    };
    luma(over_grey(red), over_grey(green), over_grey(blue))
}

/// For each of `output` cells along an axis of `input` pixels, the pixels it averages: the cells
/// split the input evenly, and each has at least one pixel (`input` must not be 0).
pub(super) fn spans(input: u32, output: u32) -> Vec<(u32, u32)> {
    let (input, output_len) = (u64::from(input), u64::from(output));
    (0..output_len)
        .map(|cell| {
            let start = cell * input / output_len;
            let end = ((cell + 1) * input / output_len).max(start + 1).min(input);
            // Both are at most `input`, which came from a `u32`.
            (start as u32, end as u32)
        })
        .collect()
}

/// The image's luma over grey, box-averaged into GRID×GRID cells (row-major). A 0×0 image is all
/// grey, like a fully transparent one.
fn luma_grid(image: &RgbaImage) -> Vec<f64> {
    let side = GRID as usize;
    let (width, height) = image.dimensions();
    if width == 0 || height == 0 {
        return vec![0.5; side * side];
    }
    let columns = spans(width, GRID);
    let rows = spans(height, GRID);
    let mut grid = Vec::with_capacity(side * side);
    for &row_span in &rows {
        for &column_span in &columns {
            grid.push(luma_of_sums(premultiplied_sums(
                image,
                column_span,
                row_span,
            )));
        }
    }
    grid
}

/// The sums of red, green and blue times alpha (each 0..=255²) and of alpha, and the number of
/// pixels, over the pixels `columns.0..columns.1` of rows `rows.0..rows.1`, which must lie in the
/// image. A row has fewer than 2³² pixels, so its sums fit in `u64`; the totals are `u128`,
/// since one cell may cover a whole image.
pub(super) fn premultiplied_sums(
    image: &RgbaImage,
    (left, right): (u32, u32),
    (top, bottom): (u32, u32),
) -> ([u128; 4], u128) {
    let pixels = image.as_raw();
    let row_len = image.width() as usize * 4;
    let mut sums = [0u128; 4];
    for y in top as usize..bottom as usize {
        let row = (y * row_len + left as usize * 4)..(y * row_len + right as usize * 4);
        let mut row_sums = [0u64; 4];
        for pixel in pixels.get(row).unwrap_or_default().chunks_exact(4) {
            let alpha = u64::from(pixel[3]);
            row_sums[0] += u64::from(pixel[0]) * alpha;
            row_sums[1] += u64::from(pixel[1]) * alpha;
            row_sums[2] += u64::from(pixel[2]) * alpha;
            row_sums[3] += alpha;
        }
        for (sum, row_sum) in sums.iter_mut().zip(row_sums) {
            *sum += u128::from(row_sum);
        }
    }
    let count = u128::from(bottom.saturating_sub(top)) * u128::from(right.saturating_sub(left));
    (sums, count)
}

/// The value at (`x`, `y`) of a GRID×GRID map, with coordinates clamped to its border.
fn at(map: &[f64], x: i64, y: i64) -> f64 {
    let last = i64::from(GRID) - 1;
    let (x, y) = (x.clamp(0, last), y.clamp(0, last));
    map[(y * i64::from(GRID) + x) as usize]
}

/// The square root of the Sobel gradient magnitude of a GRID×GRID map.
fn sobel(map: &[f64]) -> Vec<f64> {
    let side = i64::from(GRID);
    let mut edges = Vec::with_capacity(map.len());
    for y in 0..side {
        for x in 0..side {
            let p = |dx: i64, dy: i64| at(map, x + dx, y + dy);
            let horizontal =
                (p(1, -1) + 2.0 * p(1, 0) + p(1, 1)) - (p(-1, -1) + 2.0 * p(-1, 0) + p(-1, 1));
            let vertical =
                (p(-1, 1) + 2.0 * p(0, 1) + p(1, 1)) - (p(-1, -1) + 2.0 * p(0, -1) + p(1, -1));
            edges.push(horizontal.hypot(vertical).sqrt());
        }
    }
    edges
}

/// A 5-tap binomial blur (1 4 6 4 1)/16 of a GRID×GRID map, across then down.
fn blur(map: &[f64]) -> Vec<f64> {
    const WEIGHTS: [f64; 5] = [1.0 / 16.0, 4.0 / 16.0, 6.0 / 16.0, 4.0 / 16.0, 1.0 / 16.0];
    let side = i64::from(GRID);
    let pass = |input: &[f64], step_x: i64, step_y: i64| -> Vec<f64> {
        let mut output = Vec::with_capacity(input.len());
        for y in 0..side {
            for x in 0..side {
                let mut sum = 0.0;
                for (offset, weight) in (-2..=2).zip(WEIGHTS) {
                    sum += weight * at(input, x + offset * step_x, y + offset * step_y);
                }
                output.push(sum);
            }
        }
        output
    };
    pass(&pass(map, 1, 0), 0, 1)
}

/// The blurred edge map of an image, or `None` when it has no edges to speak of.
fn edge_map(image: &RgbaImage) -> Option<Vec<f64>> {
    let edges = blur(&sobel(&luma_grid(image)));
    let mean = edges.iter().sum::<f64>() / edges.len() as f64;
    let variance = edges.iter().map(|e| (e - mean).powi(2)).sum::<f64>() / edges.len() as f64;
    // Below this the "edges" are rounding noise of a flat image.
    (variance > 1e-12).then_some(edges)
}

/// The Pearson correlation of two maps of the same size, each with some variance.
fn correlation(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let mean_a = a.iter().sum::<f64>() / n;
    let mean_b = b.iter().sum::<f64>() / n;
    let (mut covariance, mut variance_a, mut variance_b) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        let (dx, dy) = (x - mean_a, y - mean_b);
        covariance += dx * dy;
        variance_a += dx * dx;
        variance_b += dy * dy;
    }
    let denominator = (variance_a * variance_b).sqrt();
    if denominator > 0.0 {
        covariance / denominator
    } else {
        0.0
    }
}

/// The luma axis and six chroma directions 30° apart.
const N_DIRECTIONS: usize = 7;

/// Bins of each direction's histogram.
const N_BINS: usize = 64;

/// One normalized histogram per direction.
type Palette = [[f64; N_BINS]; N_DIRECTIONS];

/// A colour with channels in 0..=1 in BT.709 Y′CbCr: luma 0..=1, chroma −0.5..=0.5.
fn ycbcr(red: f64, green: f64, blue: f64) -> [f64; 3] {
    let y = luma(red, green, blue);
    [y, (blue - y) / 1.8556, (red - y) / 1.5748]
}

/// The unit directions in Y′CbCr the colours are projected on.
fn directions() -> [[f64; 3]; N_DIRECTIONS] {
    let mut directions = [[1.0, 0.0, 0.0]; N_DIRECTIONS];
    for (k, direction) in directions.iter_mut().enumerate().skip(1) {
        let angle = (k - 1) as f64 * 30f64.to_radians();
        *direction = [0.0, angle.cos(), angle.sin()];
    }
    directions
}

fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

/// The smallest and largest projection of any colour on `direction`: the corners of the RGB cube
/// give them, since the projection is linear.
fn projection_range(direction: [f64; 3]) -> (f64, f64) {
    let mut range = (f64::INFINITY, f64::NEG_INFINITY);
    for corner in 0..8u8 {
        let channel = |bit: u8| f64::from((corner >> bit) & 1);
        let projection = dot(ycbcr(channel(0), channel(1), channel(2)), direction);
        range = (range.0.min(projection), range.1.max(projection));
    }
    range
}

/// The image's colour histograms along each direction, from at most PALETTE_SAMPLES² pixels
/// sampled evenly and weighted by alpha; `None` when no sampled pixel is visible.
fn palette(image: &RgbaImage) -> Option<Palette> {
    let (width, height) = image.dimensions();
    if width == 0 || height == 0 {
        return None;
    }
    let directions = directions();
    let ranges = directions.map(projection_range);
    let mut histograms = [[0.0; N_BINS]; N_DIRECTIONS];
    let mut total = 0.0;
    let columns = spans(width, width.min(PALETTE_SAMPLES));
    let rows = spans(height, height.min(PALETTE_SAMPLES));
    for &(top, bottom) in &rows {
        for &(left, right) in &columns {
            // The centre pixel of each span, so a small image is sampled whole.
            let (x, y) = (left + (right - left) / 2, top + (bottom - top) / 2);
            let [red, green, blue, alpha] = image.get_pixel(x, y).0.map(|c| f64::from(c) / 255.0);
            if alpha == 0.0 {
                continue;
            }
            total += alpha;
            let colour = ycbcr(red, green, blue);
            for ((histogram, direction), (low, high)) in
                histograms.iter_mut().zip(directions).zip(ranges)
            {
                let position = (dot(colour, direction) - low) / (high - low);
                // `as` saturates, and the clamp keeps the top of the range in the last bin.
                let bin = ((position * N_BINS as f64) as usize).min(N_BINS - 1);
                histogram[bin] += alpha;
            }
        }
    }
    if total == 0.0 {
        return None;
    }
    Some(histograms.map(|histogram| histogram.map(|weight| weight / total)))
}

/// The earth mover's distance between two normalized histograms of the same range, as a fraction
/// of that range: the area between their cumulative sums.
fn cumulative_distance(a: &[f64; N_BINS], b: &[f64; N_BINS]) -> f64 {
    let (mut cumulative_a, mut cumulative_b, mut area) = (0.0, 0.0, 0.0);
    for (count_a, count_b) in a.iter().zip(b) {
        cumulative_a += count_a;
        cumulative_b += count_b;
        area += (cumulative_a - cumulative_b).abs();
    }
    area / N_BINS as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgba;
    use image::imageops::{self, FilterType};
    use proptest::prelude::*;

    const WIDTH: u32 = 256;
    const HEIGHT: u32 = 192;

    /// Fills the part of `image` between the fractions `x0`..`x1` of its width and `y0`..`y1` of
    /// its height.
    fn fill(image: &mut RgbaImage, (x0, y0, x1, y1): (f64, f64, f64, f64), colour: [u8; 3]) {
        let (width, height) = image.dimensions();
        let (w, h) = (f64::from(width), f64::from(height));
        for y in (y0 * h) as u32..((y1 * h) as u32).min(height) {
            for x in (x0 * w) as u32..((x1 * w) as u32).min(width) {
                image.put_pixel(x, y, Rgba([colour[0], colour[1], colour[2], 255]));
            }
        }
    }

    /// A sunset street of `width`×`height`, designed at 256×192 (positions scale with the size):
    /// a warm sky gradient, a dark horizon line, ground, and four buildings with lit windows. The
    /// wide building on the left is moved right by `shift` pixels of the 256-wide design; up to
    /// 60 it stays clear of the others.
    fn scene(width: u32, height: u32, shift: u32) -> RgbaImage {
        let mut image = RgbaImage::new(width, height);
        for (_, y, pixel) in image.enumerate_pixels_mut() {
            let t = f64::from(y) / f64::from(height);
            let mix = |top: f64, bottom: f64| (top + (bottom - top) * t).round() as u8;
            *pixel = Rgba([mix(200.0, 250.0), mix(80.0, 190.0), mix(60.0, 90.0), 255]);
        }
        fill(&mut image, (0.0, 0.70, 1.0, 1.0), [90, 60, 40]);
        fill(&mut image, (0.0, 0.69, 1.0, 0.71), [40, 25, 20]);
        let x = |pixels: u32| f64::from(pixels) / 256.0;
        let buildings = [
            (x(10 + shift), 0.30, x(80 + shift), [150, 60, 40]),
            (x(150), 0.40, x(180), [110, 30, 30]),
            (x(190), 0.25, x(215), [200, 150, 60]),
            (x(225), 0.45, x(250), [120, 110, 100]),
        ];
        for (left, top, right, colour) in buildings {
            fill(&mut image, (left, top, right, 0.70), colour);
            let window_left = left + (right - left) * 0.3;
            for row in 0..3 {
                let window_top = top + 0.05 + 0.07 * f64::from(row);
                let window = (
                    window_left,
                    window_top,
                    window_left + x(8),
                    window_top + 0.035,
                );
                fill(&mut image, window, [250, 220, 120]);
            }
        }
        image
    }

    /// `image` with every pixel's hue turned by `degrees` in HSV, saturation and value kept.
    fn rotate_hue(image: &RgbaImage, degrees: f64) -> RgbaImage {
        let mut rotated = image.clone();
        for pixel in rotated.pixels_mut() {
            let [r, g, b, alpha] = pixel.0;
            let [r, g, b] = [r, g, b].map(|c| f64::from(c) / 255.0);
            let max = r.max(g).max(b);
            let chroma = max - r.min(g).min(b);
            let hue = if chroma == 0.0 {
                0.0
            } else if max == r {
                60.0 * ((g - b) / chroma).rem_euclid(6.0)
            } else if max == g {
                60.0 * ((b - r) / chroma + 2.0)
            } else {
                60.0 * ((r - g) / chroma + 4.0)
            };
            let sector = (hue + degrees).rem_euclid(360.0) / 60.0;
            let x = chroma * (1.0 - (sector.rem_euclid(2.0) - 1.0).abs());
            let (r, g, b) = match sector as u32 {
                0 => (chroma, x, 0.0),
                1 => (x, chroma, 0.0),
                2 => (0.0, chroma, x),
                3 => (0.0, x, chroma),
                4 => (x, 0.0, chroma),
                _ => (chroma, 0.0, x),
            };
            let to_u8 = |c: f64| ((c + max - chroma) * 255.0).round() as u8;
            *pixel = Rgba([to_u8(r), to_u8(g), to_u8(b), alpha]);
        }
        rotated
    }

    /// The centre of `image` without `fraction` of its width and height, scaled back to its size.
    fn crop(image: &RgbaImage, fraction: f64) -> RgbaImage {
        let (width, height) = image.dimensions();
        let kept_width = (f64::from(width) * (1.0 - fraction)).round() as u32;
        let kept_height = (f64::from(height) * (1.0 - fraction)).round() as u32;
        let (left, top) = ((width - kept_width) / 2, (height - kept_height) / 2);
        let part = imageops::crop_imm(image, left, top, kept_width, kept_height).to_image();
        imageops::resize(&part, width, height, FilterType::Triangle)
    }

    /// The drifts of three sizes of one change to the scene, each checked to be strictly larger
    /// than the one before in the score `pick` chooses.
    fn rising(changed: [RgbaImage; 3], pick: fn(&Drift) -> f64) -> [Drift; 3] {
        let base = scene(WIDTH, HEIGHT, 0);
        let drifts = changed.map(|image| drift(&base, &image));
        let [small, middle, large] = drifts.map(|d| pick(&d));
        assert!(
            0.0 < small && small < middle && middle < large,
            "{drifts:?}"
        );
        drifts
    }

    /// Both scores at once, for comparing with [`drift`].
    fn scores(structure: f64, palette: f64) -> Drift {
        Drift { structure, palette }
    }

    #[test]
    fn an_image_has_no_drift_from_itself() {
        let base = scene(WIDTH, HEIGHT, 0);
        assert_eq!(drift(&base, &base), scores(0.0, 0.0));
    }

    #[test]
    fn luma_weighs_green_most_and_transparency_is_mid_grey() {
        let luma_of = |rgba: [u8; 4]| luma_over_grey(Rgba(rgba));
        assert_eq!(luma_of([255, 255, 255, 255]), 1.0);
        assert_eq!(luma_of([0, 0, 0, 255]), 0.0);
        assert_eq!(luma_of([0, 0, 0, 0]), 0.5);
        assert_eq!(luma_of([255, 255, 255, 0]), 0.5);
        let (red, green, blue) = (
            luma_of([255, 0, 0, 255]),
            luma_of([0, 255, 0, 255]),
            luma_of([0, 0, 255, 255]),
        );
        assert!(green > red && red > blue, "{red} {green} {blue}");
        assert!((red + green + blue - 1.0).abs() < 1e-12);
        // Half-transparent white over mid grey is halfway between them.
        assert!((luma_of([255, 255, 255, 128]) - 0.751).abs() < 0.001);
    }

    #[test]
    fn a_hue_rotation_moves_the_palette_and_keeps_the_structure() {
        let base = scene(WIDTH, HEIGHT, 0);
        let rotated = [30.0, 90.0, 180.0].map(|degrees| rotate_hue(&base, degrees));
        let drifts = rising(rotated, |d| d.palette);
        // The smallest move below (a building by 5 px, 2 % of the width) scores 0.12: even a
        // half-turn of every hue changes the structure less than that.
        let small_move = drift(&base, &scene(WIDTH, HEIGHT, 5)).structure;
        for d in drifts {
            assert!(
                d.structure < 0.1 && d.structure < small_move,
                "{drifts:?} {small_move}"
            );
        }
        assert!(drifts[0].palette > 0.05, "{drifts:?}");
    }

    #[test]
    fn a_moved_object_moves_the_structure_and_keeps_the_palette() {
        let moved = [5, 20, 60].map(|shift| scene(WIDTH, HEIGHT, shift));
        let drifts = rising(moved, |d| d.structure);
        for d in drifts {
            assert!(d.palette < 0.01, "{drifts:?}");
        }
        assert!(drifts[2].structure > 0.2, "{drifts:?}");
    }

    #[test]
    fn a_crop_moves_the_structure_and_keeps_the_palette() {
        let base = scene(WIDTH, HEIGHT, 0);
        let cropped = [0.05, 0.15, 0.30].map(|fraction| crop(&base, fraction));
        let drifts = rising(cropped, |d| d.structure);
        for d in drifts {
            assert!(d.palette < 0.03, "{drifts:?}");
        }
        assert!(drifts[2].structure > 0.5, "{drifts:?}");
    }

    #[test]
    fn the_same_scene_at_another_size_has_little_drift() {
        let base = scene(WIDTH, HEIGHT, 0);
        let halved = imageops::resize(&base, WIDTH / 2, HEIGHT / 2, FilterType::Triangle);
        // Also drawn twice as large, and three times as wide: positions are compared relatively.
        for other in [
            halved,
            scene(WIDTH * 2, HEIGHT * 2, 0),
            scene(WIDTH * 3, HEIGHT, 0),
        ] {
            let drift = drift(&base, &other);
            assert!(drift.structure < 0.05 && drift.palette < 0.01, "{drift:?}");
        }
    }

    #[test]
    fn transparent_pixels_do_not_count_in_the_palette() {
        let base = scene(WIDTH, HEIGHT, 0);
        let mut framed = RgbaImage::new(WIDTH * 2, HEIGHT * 2);
        imageops::replace(
            &mut framed,
            &base,
            i64::from(WIDTH / 2),
            i64::from(HEIGHT / 2),
        );
        assert!(palette_drift(&base, &framed) < 0.01);
        // The transparent frame is grey to the structure, so the scene's outline is an edge.
        assert!(structure_drift(&base, &framed) > 0.3);
    }

    #[test]
    fn empty_and_transparent_images_have_defined_drift() {
        let empty = RgbaImage::new(0, 0);
        let thin = RgbaImage::new(0, 50);
        let transparent = RgbaImage::new(40, 30);
        let grey = RgbaImage::from_pixel(40, 30, Rgba([128, 128, 128, 255]));
        let base = scene(WIDTH, HEIGHT, 0);
        assert_eq!(drift(&empty, &empty), scores(0.0, 0.0));
        assert_eq!(drift(&empty, &thin), scores(0.0, 0.0));
        assert_eq!(drift(&empty, &transparent), scores(0.0, 0.0));
        assert_eq!(drift(&transparent, &transparent), scores(0.0, 0.0));
        assert_eq!(drift(&empty, &base), scores(1.0, 1.0));
        assert_eq!(drift(&base, &transparent), scores(1.0, 1.0));
        // Neither has edges, but only one has visible colours.
        assert_eq!(drift(&grey, &transparent), scores(0.0, 1.0));
        assert_eq!(drift(&grey, &grey), scores(0.0, 0.0));
    }

    fn any_image() -> impl Strategy<Value = RgbaImage> {
        (0u32..12, 0u32..12).prop_flat_map(|(width, height)| {
            let len = (width * height * 4) as usize;
            proptest::collection::vec(any::<u8>(), len).prop_map(move |bytes| {
                RgbaImage::from_raw(width, height, bytes).unwrap_or_default()
            })
        })
    }

    proptest! {
        // Each case compares eight edge maps of 128×128; 32 cases keep the unoptimized test
        // build under a few seconds.
        #![proptest_config(ProptestConfig::with_cases(32))]

        /// Both scores are always finite and within 0..=1, zero for an image against itself,
        /// and the same either way round.
        #[test]
        fn scores_are_bounded_symmetric_and_zero_for_the_same_image(a in any_image(), b in any_image()) {
            let forward = drift(&a, &b);
            for score in [forward.structure, forward.palette] {
                prop_assert!(score.is_finite() && (0.0..=1.0).contains(&score), "{forward:?}");
            }
            prop_assert_eq!(forward, drift(&b, &a));
            prop_assert_eq!(drift(&a, &a), scores(0.0, 0.0));
            prop_assert_eq!(drift(&b, &b.clone()), scores(0.0, 0.0));
        }
    }
}
