//! Upscaling ×4 or ×2 with a ×4 Real-ESRGAN model (realesr-general-x4v3 by default,
//! RealESRGAN_x4plus for quality), in tiles, so memory stays bounded whatever the image size.
//!
//! Each tile is run with `overlap` pixels of context on every side (clamped at the image border)
//! and only the tile's own part of the output is kept, so tiles meet without seams as long as the
//! overlap covers the model's reach: measured on x4v3, 10 px leaves seams of up to 11/255, 24 px
//! leaves at most 1/255 and 32 px none. ×2 averages each 2×2 block of the ×4 output, which keeps
//! tiles independent. Alpha, when the image has any, is upscaled separately by the same model
//! (as a gray image), tile by tile. The output comes out in bands of whole rows, top to bottom;
//! [`encode_png`] streams them into a PNG.

use image::RgbaImage;
use kroma_protocol::{ErrorCode, ErrorKind};

use crate::error::Problem;
use crate::files::png::{self, Provenance};
use crate::postprocess::onnx::Model;

/// How an image is cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tiling {
    /// Tile side, in input pixels.
    pub tile: usize,
    /// Context around each tile, in input pixels.
    pub overlap: usize,
}

/// Tile side unless asked otherwise: measured on x4v3, 256-px tiles hold kromad near 215 MB and
/// cost about 1.3x the time of one whole-image inference; 128-px tiles hold 130 MB at 1.6x.
pub const DEFAULT_TILE: usize = 256;

/// The context a model needs around each tile, measured against the whole image in one piece:
/// x4v3 (32 plain convolutions) leaves at most 1/255 at 24 px; RealESRGAN_x4plus (23 RRDB blocks,
/// reaching much further) leaves 10/255 at 32 px, 4/255 at 48 and 2/255 (mean 0.003) at 64.
pub fn overlap_for(model: &str) -> usize {
    match model {
        "realesr-general-x4v3" => 24,
        _ => 64,
    }
}

/// The model: a `3×h×w` block of RGB in 0..1, NCHW, in; its `3×4h×4w` upscale out.
pub type Infer<'a> = dyn FnMut(&[f32], usize, usize) -> Result<Vec<f32>, Problem> + 'a;

/// Upscales `image` by `scale` (2 or 4) with a ×4 model. `progress(done, total)` follows the
/// tiles; `sink` receives the output rows (RGBA, `width × scale` pixels each), top to bottom, a
/// band of tile rows at a time.
pub fn upscale(
    image: &RgbaImage,
    scale: u32,
    tiling: Tiling,
    infer: &mut Infer,
    progress: &mut dyn FnMut(usize, usize),
    sink: &mut dyn FnMut(&[u8]) -> Result<(), Problem>,
) -> Result<(), Problem> {
    const MODEL_SCALE: usize = 4;
    let scale = scale as usize;
    if scale != 2 && scale != 4 {
        return Err(Problem::validation(
            ErrorCode::InvalidScale,
            format!("scale {scale} is not 2 or 4"),
        ));
    }
    let down = MODEL_SCALE / scale;
    let tile = tiling.tile.max(1);
    let (width, height) = (image.width() as usize, image.height() as usize);
    let out_width = width * scale;
    let has_alpha = image.pixels().any(|p| p[3] < 255);
    let (across, down_count) = (width.div_ceil(tile), height.div_ceil(tile));
    let total = across * down_count;
    let mut done = 0;
    let pixels = image.as_raw();
    for ty in 0..down_count {
        let (y0, y1) = (ty * tile, ((ty + 1) * tile).min(height));
        let band_rows = (y1 - y0) * scale;
        let mut band = vec![0u8; out_width * band_rows * 4];
        for tx in 0..across {
            let (x0, x1) = (tx * tile, ((tx + 1) * tile).min(width));
            let (cx0, cy0) = (
                x0.saturating_sub(tiling.overlap),
                y0.saturating_sub(tiling.overlap),
            );
            let (cx1, cy1) = (
                (x1 + tiling.overlap).min(width),
                (y1 + tiling.overlap).min(height),
            );
            let (block_width, block_height) = (cx1 - cx0, cy1 - cy0);
            let planes = |channels: [usize; 3]| {
                let plane = block_width * block_height;
                let mut block = vec![0f32; 3 * plane];
                for y in 0..block_height {
                    let row = &pixels[((cy0 + y) * width + cx0) * 4..][..block_width * 4];
                    for (x, pixel) in row.chunks_exact(4).enumerate() {
                        for (c, source) in channels.iter().enumerate() {
                            block[c * plane + y * block_width + x] =
                                f32::from(pixel[*source]) / 255.0;
                        }
                    }
                }
                block
            };
            let mut run = |channels: [usize; 3]| -> Result<Vec<f32>, Problem> {
                let out = infer(&planes(channels), block_width, block_height)?;
                let expected = 3 * block_width * block_height * MODEL_SCALE * MODEL_SCALE;
                if out.len() != expected {
                    return Err(Problem::new(
                        ErrorKind::Infra,
                        ErrorCode::ModelInterface,
                        format!(
                            "the upscale model answered {} values for a {block_width}×{block_height} tile, not {expected}",
                            out.len()
                        ),
                    ));
                }
                Ok(out)
            };
            let colour = run([0, 1, 2])?;
            let alpha = if has_alpha {
                Some(run([3, 3, 3])?)
            } else {
                None
            };
            // Where this tile's own pixels start in the model's output.
            let (model_width, model_plane) = (
                block_width * MODEL_SCALE,
                block_width * block_height * MODEL_SCALE * MODEL_SCALE,
            );
            let (skip_x, skip_y) = ((x0 - cx0) * MODEL_SCALE, (y0 - cy0) * MODEL_SCALE);
            // The output value of plane `c` at tile output pixel (ox, oy).
            let sample = |out: &[f32], c: usize, ox: usize, oy: usize| -> f32 {
                let (mx, my) = (skip_x + ox * down, skip_y + oy * down);
                let mut sum = 0.0;
                for dy in 0..down {
                    for dx in 0..down {
                        sum += out[c * model_plane + (my + dy) * model_width + mx + dx];
                    }
                }
                sum / (down * down) as f32
            };
            for oy in 0..band_rows {
                let row = &mut band[(oy * out_width + x0 * scale) * 4..][..(x1 - x0) * scale * 4];
                for (ox, pixel) in row.chunks_exact_mut(4).enumerate() {
                    for (c, value) in pixel[..3].iter_mut().enumerate() {
                        *value = to_u8(sample(&colour, c, ox, oy));
                    }
                    pixel[3] = match &alpha {
                        Some(alpha) => {
                            to_u8((0..3).map(|c| sample(alpha, c, ox, oy)).sum::<f32>() / 3.0)
                        }
                        None => 255,
                    };
                }
            }
            done += 1;
            progress(done, total);
        }
        sink(&band)?;
    }
    Ok(())
}

/// Runs the ×4 model on one block.
pub fn run_model(
    model: &Model,
    block: &[f32],
    width: usize,
    height: usize,
) -> Result<Vec<f32>, Problem> {
    let (shape, out) = model.run([1, 3, height, width], block)?;
    if shape != [1, 3, 4 * height as i64, 4 * width as i64] {
        return Err(Problem::new(
            ErrorKind::Infra,
            ErrorCode::ModelInterface,
            format!(
                "{} answered {shape:?} for a {width}×{height} block; a ×4 model answers [1, 3, {}, {}]",
                model.installed.name,
                4 * height,
                4 * width
            ),
        ));
    }
    Ok(out)
}

/// Upscales `image` with `model` straight into a PNG written to `out`, carrying `provenance`;
/// only the compressed bytes and one band of rows are in memory. `progress(done, total)` hears
/// of the tiles at most four times a second, and always of the last one. Once `stop` is
/// cancelled, no further tile starts and the call fails with `stopped`.
#[allow(clippy::too_many_arguments)]
pub fn encode_png(
    model: &Model,
    image: &RgbaImage,
    scale: u32,
    tiling: Tiling,
    provenance: &Provenance,
    progress: &mut dyn FnMut(usize, usize),
    stop: &tokio_util::sync::CancellationToken,
    out: &mut impl std::io::Write,
) -> Result<(), Problem> {
    let size = (image.width() * scale, image.height() * scale);
    let io_error = |err: std::io::Error| {
        Problem::new(
            ErrorKind::Infra,
            ErrorCode::IoError,
            format!("writing the upscaled PNG: {err}"),
        )
        .with_hint("check that the folder is writable and the disk has room")
    };
    let mut reported: Option<std::time::Instant> = None;
    let mut throttled = |done: usize, total: usize| {
        let due = reported.is_none_or(|at| at.elapsed() >= std::time::Duration::from_millis(250));
        if due || done == total {
            reported = Some(std::time::Instant::now());
            progress(done, total);
        }
    };
    // The encoder's row source speaks io::Error; the upscale's own error is kept aside.
    let mut failure = None;
    let encoded = png::stream_png(out, size, provenance, |sink| {
        upscale(
            image,
            scale,
            tiling,
            &mut |block, width, height| {
                crate::postprocess::budget::check(stop)?;
                run_model(model, block, width, height)
            },
            &mut throttled,
            &mut |band| sink(band).map_err(io_error),
        )
        .map_err(|err| {
            failure = Some(err);
            std::io::Error::other("the upscale failed")
        })
    });
    match failure {
        Some(err) => Err(err),
        None => encoded.map_err(io_error),
    }
}

fn to_u8(value: f32) -> u8 {
    (value.clamp(0.0, 1.0) * 255.0).round() as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in "model" for the tiling arithmetic only: nearest-neighbour ×4. The real model is
    /// tested in `tests/e2e/postprocess.rs`.
    fn nearest(block: &[f32], width: usize, height: usize) -> Result<Vec<f32>, Problem> {
        let mut out = vec![0f32; 3 * width * height * 16];
        for c in 0..3 {
            for y in 0..height * 4 {
                for x in 0..width * 4 {
                    out[c * width * height * 16 + y * width * 4 + x] =
                        block[c * width * height + (y / 4) * width + x / 4];
                }
            }
        }
        Ok(out)
    }

    fn collect(image: &RgbaImage, scale: u32, tiling: Tiling) -> (Vec<u8>, Vec<(usize, usize)>) {
        let (mut rows, mut steps) = (Vec::new(), Vec::new());
        upscale(
            image,
            scale,
            tiling,
            &mut nearest,
            &mut |done, total| steps.push((done, total)),
            &mut |band| {
                rows.extend_from_slice(band);
                Ok(())
            },
        )
        .expect("upscale");
        (rows, steps)
    }

    fn sample() -> RgbaImage {
        RgbaImage::from_fn(37, 23, |x, y| {
            image::Rgba([
                (x * 7) as u8,
                (y * 11) as u8,
                ((x + y) * 3) as u8,
                (x * 5 + 100) as u8,
            ])
        })
    }

    #[test]
    fn tiles_reassemble_exactly_at_both_scales() {
        let image = sample();
        for scale in [2, 4] {
            let (whole, _) = collect(
                &image,
                scale,
                Tiling {
                    tile: 64,
                    overlap: 0,
                },
            );
            let (tiled, steps) = collect(
                &image,
                scale,
                Tiling {
                    tile: 8,
                    overlap: 3,
                },
            );
            assert_eq!(whole.len(), (37 * 23 * 4 * scale * scale) as usize);
            assert_eq!(whole, tiled);
            assert_eq!(steps.len(), 5 * 3);
            assert_eq!(steps.last(), Some(&(15, 15)));
        }
    }

    #[test]
    fn alpha_is_upscaled_and_opaque_images_stay_opaque() {
        let (out, _) = collect(
            &sample(),
            4,
            Tiling {
                tile: 16,
                overlap: 4,
            },
        );
        // Nearest ×4: output pixel (4x, 4y) is input pixel (x, y), alpha included.
        let at = |x: usize, y: usize| &out[(y * 37 * 4 + x) * 4..][..4];
        assert_eq!(at(4 * 10, 4 * 5), sample().get_pixel(10, 5).0);
        let opaque = RgbaImage::from_pixel(5, 3, image::Rgba([9, 8, 7, 255]));
        let (out, _) = collect(
            &opaque,
            2,
            Tiling {
                tile: 2,
                overlap: 1,
            },
        );
        assert!(out.chunks_exact(4).all(|p| p == [9, 8, 7, 255]));
    }

    #[test]
    fn a_one_pixel_image_works() {
        let one = RgbaImage::from_pixel(1, 1, image::Rgba([1, 2, 3, 4]));
        let (out, steps) = collect(
            &one,
            4,
            Tiling {
                tile: 128,
                overlap: 24,
            },
        );
        assert_eq!(out.len(), 16 * 4);
        assert!(out.chunks_exact(4).all(|p| p == [1, 2, 3, 4]));
        assert_eq!(steps, [(1, 1)]);
    }

    #[test]
    fn a_wrong_answer_from_the_model_is_an_error() {
        let image = sample();
        let err = upscale(
            &image,
            4,
            Tiling {
                tile: 16,
                overlap: 0,
            },
            &mut |_, _, _| Ok(vec![0.0; 3]),
            &mut |_, _| {},
            &mut |_| Ok(()),
        )
        .expect_err("short output");
        assert_eq!(err.code, ErrorCode::ModelInterface);
        assert!(
            upscale(
                &image,
                3,
                Tiling {
                    tile: 16,
                    overlap: 0
                },
                &mut nearest,
                &mut |_, _| {},
                &mut |_| Ok(())
            )
            .is_err()
        );
    }
}
