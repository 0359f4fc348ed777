//! The pure core of an image answer: decoding the input images, deterministic pixels from a hash
//! of the request, the PNG, and the token usage. It blocks (decoding and encoding), so the server
//! runs it on a blocking thread.

use axum::body::Bytes;
use base64::Engine as _;
use image::ImageEncoder as _;
use sha2::{Digest as _, Sha256};

use crate::request::{ImageJob, OpenAiError};

/// Input tokens billed for every input image.
const TOKENS_PER_INPUT_IMAGE: u64 = 1000;
/// Output tokens are given for a 1024x1024 image and scale with the pixel count.
const PIXELS_PER_UNIT: u64 = 1024 * 1024;

/// Everything an answer to a checked request may need; the JSON bodies are built here, off the
/// state lock.
#[derive(Clone, Debug)]
pub(crate) struct Rendered {
    /// The full 200 body with every image.
    pub success: Bytes,
    /// `{"created", "data": [], "usage", ...}`: the [`crate::Fault::Empty`] answer.
    pub empty: Bytes,
    /// Like `success`, but every `b64_json` decodes to bytes that are no image.
    pub not_an_image: Bytes,
}

/// Decodes the input images, then renders `job.n` PNGs and the bodies that carry them.
pub(crate) fn render(job: &ImageJob, created: u64) -> Result<Rendered, OpenAiError> {
    for (image_idx, bytes) in job.images.iter().enumerate() {
        if let Err(err) = image::load_from_memory(bytes) {
            return Err(OpenAiError::invalid(
                format!(
                    "Invalid image file for image {} of the request: {err}",
                    image_idx + 1
                ),
                Some("image"),
                Some("invalid_image_file"),
            ));
        }
    }
    let (width, height) = job.render_size;
    let mut images = Vec::new();
    for output_idx in 0..job.n {
        let png = png(&seed(job, output_idx), width, height).map_err(|err| OpenAiError {
            status: 500,
            message: format!("The fake provider could not encode a PNG: {err}"),
            error_type: "server_error",
            param: None,
            code: None,
        })?;
        images.push(base64::engine::general_purpose::STANDARD.encode(png));
    }
    let not_an_image = base64::engine::general_purpose::STANDARD.encode(b"this is not an image");
    let body = |data: serde_json::Value| {
        let (billed_width, billed_height) = job.billed_size;
        let quality = if job.quality == "auto" {
            "high"
        } else {
            job.quality.as_str()
        };
        Bytes::from(
            serde_json::json!({
                "created": created,
                "data": data,
                "usage": usage(job),
                "output_format": "png",
                "size": format!("{billed_width}x{billed_height}"),
                "quality": quality,
                "background": "opaque",
            })
            .to_string(),
        )
    };
    Ok(Rendered {
        success: body(
            images
                .iter()
                .map(|b64| serde_json::json!({ "b64_json": b64 }))
                .collect(),
        ),
        empty: body(serde_json::json!([])),
        not_an_image: body(
            (0..job.n)
                .map(|_| serde_json::json!({ "b64_json": not_an_image }))
                .collect(),
        ),
    })
}

/// The usage block: text tokens are the prompt's whitespace-separated words, image tokens 1000
/// per input image, output tokens by quality (low 272, medium 1056, high and auto 4160) for
/// 1024x1024, scaled by the billed pixel count and rounded up, times `n`.
pub(crate) fn usage(job: &ImageJob) -> serde_json::Value {
    let text_tokens = job.prompt.split_whitespace().count() as u64;
    let image_tokens = TOKENS_PER_INPUT_IMAGE * job.images.len() as u64;
    let per_unit: u64 = match job.quality.as_str() {
        "low" => 272,
        "medium" => 1056,
        _ => 4160,
    };
    let (width, height) = job.billed_size;
    let pixels = u64::from(width) * u64::from(height);
    let output_tokens = (per_unit * pixels).div_ceil(PIXELS_PER_UNIT) * u64::from(job.n);
    let input_tokens = text_tokens + image_tokens;
    serde_json::json!({
        "input_tokens": input_tokens,
        "input_tokens_details": {
            "text_tokens": text_tokens,
            "image_tokens": image_tokens,
        },
        "output_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
    })
}

/// sha256(model|prompt|size|quality|image 1|image 2...), with `|#<idx>` appended for the second
/// and later outputs of one request so they differ.
fn seed(job: &ImageJob, output_idx: u32) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in [&job.model, &job.prompt, &job.size, &job.quality] {
        hasher.update(part.as_bytes());
        hasher.update(b"|");
    }
    for image in &job.images {
        hasher.update(b"|");
        hasher.update(image);
    }
    if output_idx > 0 {
        hasher.update(format!("|#{output_idx}").as_bytes());
    }
    hasher.finalize().into()
}

/// A 4x4 grid of tiles coloured from the seed's bytes under a diagonal shade: two seeds give
/// visibly different pictures, one seed always the same bytes.
fn png(seed: &[u8; 32], width: u32, height: u32) -> Result<Vec<u8>, image::ImageError> {
    let (wide, high) = (u64::from(width), u64::from(height));
    let mut pixels = Vec::with_capacity((wide * high * 3) as usize);
    for y in 0..high {
        let tile_row = y * 4 / high;
        for x in 0..wide {
            let tile = (tile_row * 4 + x * 4 / wide) as usize;
            let shade = ((x + y) * 96 / (wide + high)) as u8;
            pixels.extend([
                seed[tile].wrapping_add(shade),
                seed[tile + 16],
                seed[(tile * 2 + 1) % 32].wrapping_sub(shade),
            ]);
        }
    }
    let mut encoded = Vec::new();
    image::codecs::png::PngEncoder::new_with_quality(
        &mut encoded,
        image::codecs::png::CompressionType::Fast,
        image::codecs::png::FilterType::Adaptive,
    )
    .write_image(&pixels, width, height, image::ExtendedColorType::Rgb8)?;
    Ok(encoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(quality: &str, billed_size: (u32, u32), n: u32, images: usize) -> ImageJob {
        ImageJob {
            model: "gpt-image-2".to_owned(),
            prompt: "a  lighthouse at\tnight".to_owned(),
            size: "auto".to_owned(),
            quality: quality.to_owned(),
            n,
            billed_size,
            render_size: (32, 16),
            images: vec![Bytes::from_static(b"x"); images],
        }
    }

    #[test]
    fn usage_follows_quality_pixels_n_and_input_images() {
        let cases = [
            (job("low", (1024, 1024), 1, 0), 4, 0, 272),
            (job("medium", (1024, 1024), 1, 2), 4, 2000, 1056),
            (job("high", (1024, 1536), 1, 0), 4, 0, 6240),
            (job("auto", (1024, 1024), 2, 1), 4, 1000, 8320),
            (job("low", (16, 16), 1, 0), 4, 0, 1),
        ];
        for (job, text, image, output) in cases {
            let usage = usage(&job);
            assert_eq!(usage["input_tokens_details"]["text_tokens"], text);
            assert_eq!(usage["input_tokens_details"]["image_tokens"], image);
            assert_eq!(usage["output_tokens"], output, "{job:?}");
            assert_eq!(usage["total_tokens"], text + image + output);
        }
    }

    #[test]
    fn pixels_are_deterministic_and_depend_on_every_input() {
        let base = job("low", (1024, 1024), 1, 0);
        let picture = |job: &ImageJob| png(&seed(job, 0), 32, 16).unwrap();
        assert_eq!(picture(&base), picture(&base));
        let mut other_prompt = base.clone();
        other_prompt.prompt.push('!');
        let mut with_image = base.clone();
        with_image.images.push(Bytes::from_static(b"y"));
        assert_ne!(picture(&base), picture(&other_prompt));
        assert_ne!(picture(&base), picture(&with_image));
        assert_ne!(seed(&base, 0), seed(&base, 1));
    }
}
