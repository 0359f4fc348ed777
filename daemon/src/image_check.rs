//! What an image file really is, decided from its bytes alone: format, dimensions, and whether it
//! decodes completely within the limits. Pure: no file system, no clock.

use std::io::Cursor;

use image::{ImageFormat, ImageReader, Limits};

/// Widest or tallest image accepted, in pixels.
pub const MAX_SIDE: u32 = 16_384;
/// Most memory one decode may allocate.
pub const MAX_DECODE_BYTES: u64 = 1024 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    pub width: u32,
    pub height: u32,
    /// `png`, `jpeg` or `webp`.
    pub format: &'static str,
    pub mime: &'static str,
    /// The usual file extension.
    pub extension: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageProblem {
    #[error("not an image kroma reads (PNG, JPEG or WebP)")]
    NotAnImage,
    #[error("{width}×{height} is larger than {MAX_SIDE}×{MAX_SIDE}")]
    TooLarge { width: u32, height: u32 },
    #[error("{width}×{height} is longer than {MAX_PROCESSING_SIDE} pixels on a side")]
    TooLong { width: u32, height: u32 },
    #[error("decoding it would need more than {} MiB of memory", MAX_DECODE_BYTES / 1024 / 1024)]
    TooMuchMemory,
    #[error("the image data is damaged or truncated: {0}")]
    Damaged(String),
}

impl ImageProblem {
    /// The stable error code for the API.
    pub fn code(&self) -> &'static str {
        match self {
            ImageProblem::NotAnImage => "not_an_image",
            ImageProblem::TooLarge { .. } | ImageProblem::TooLong { .. } => "image_too_large",
            ImageProblem::TooMuchMemory => "image_too_large",
            ImageProblem::Damaged(_) => "image_damaged",
        }
    }
}

/// The format of `bytes`, if it is one Kroma reads: (format, name, mime, extension).
fn format_of(
    bytes: &[u8],
) -> Result<(ImageFormat, &'static str, &'static str, &'static str), ImageProblem> {
    let format = image::guess_format(bytes).map_err(|_| ImageProblem::NotAnImage)?;
    match format {
        ImageFormat::Png => Ok((format, "png", "image/png", "png")),
        ImageFormat::Jpeg => Ok((format, "jpeg", "image/jpeg", "jpg")),
        ImageFormat::WebP => Ok((format, "webp", "image/webp", "webp")),
        _ => Err(ImageProblem::NotAnImage),
    }
}

fn reader(bytes: &[u8], format: ImageFormat, limits: Limits) -> ImageReader<Cursor<&[u8]>> {
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(limits);
    reader
}

/// The width and height from the header, before anything is decoded.
fn dimensions(bytes: &[u8], format: ImageFormat) -> Result<(u32, u32), ImageProblem> {
    reader(bytes, format, Limits::no_limits())
        .into_dimensions()
        .map_err(|err| classify(&err))
}

/// Decodes within `max_side` on each side and [`MAX_DECODE_BYTES`] of memory.
fn decode(
    bytes: &[u8],
    format: ImageFormat,
    max_side: u32,
) -> Result<image::DynamicImage, ImageProblem> {
    let mut limits = Limits::default();
    limits.max_image_width = Some(max_side);
    limits.max_image_height = Some(max_side);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader(bytes, format, limits)
        .decode()
        .map_err(|err| classify(&err))
}

/// Checks that `bytes` are a complete PNG, JPEG or WebP image within the limits. The header is
/// checked before anything is decoded, so a decompression bomb is refused without decoding it.
pub fn inspect(bytes: &[u8]) -> Result<ImageInfo, ImageProblem> {
    let (format, name, mime, extension) = format_of(bytes)?;
    let (width, height) = dimensions(bytes, format)?;
    if width > MAX_SIDE || height > MAX_SIDE {
        return Err(ImageProblem::TooLarge { width, height });
    }
    decode(bytes, format, MAX_SIDE)?;
    Ok(ImageInfo {
        width,
        height,
        format: name,
        mime,
        extension,
    })
}

/// Widest or tallest image a local processing step accepts: steps work in bounded memory (rows or
/// tiles), so only the decode budget limits an image, not its shape.
pub const MAX_PROCESSING_SIDE: u32 = 65_535;

/// Decodes a PNG, JPEG or WebP for a processing step: any shape up to [`MAX_PROCESSING_SIDE`],
/// refused before decoding when its pixels would need more than [`MAX_DECODE_BYTES`].
pub fn decode_for_processing(bytes: &[u8]) -> Result<image::DynamicImage, ImageProblem> {
    let (format, ..) = format_of(bytes)?;
    let (width, height) = dimensions(bytes, format)?;
    if width > MAX_PROCESSING_SIDE || height > MAX_PROCESSING_SIDE {
        return Err(ImageProblem::TooLong { width, height });
    }
    if u64::from(width) * u64::from(height) * 4 > MAX_DECODE_BYTES {
        return Err(ImageProblem::TooMuchMemory);
    }
    decode(bytes, format, MAX_PROCESSING_SIDE)
}

fn classify(err: &image::ImageError) -> ImageProblem {
    match err {
        image::ImageError::Limits(_) => ImageProblem::TooMuchMemory,
        image::ImageError::Unsupported(_) => ImageProblem::NotAnImage,
        other => ImageProblem::Damaged(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let image =
            image::RgbImage::from_fn(width, height, |x, y| image::Rgb([x as u8, y as u8, 128]));
        let mut bytes = Vec::new();
        image
            .write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)
            .unwrap();
        bytes
    }

    fn jpeg(width: u32, height: u32) -> Vec<u8> {
        let image = image::RgbImage::from_fn(width, height, |x, _| image::Rgb([x as u8, 10, 200]));
        let mut bytes = Vec::new();
        image
            .write_to(&mut Cursor::new(&mut bytes), ImageFormat::Jpeg)
            .unwrap();
        bytes
    }

    /// A PNG that is only a header claiming `width`×`height` (8-bit RGBA) plus a tiny data chunk.
    fn png_header(width: u32, height: u32, bit_depth: u8) -> Vec<u8> {
        let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(&width.to_be_bytes());
        ihdr.extend_from_slice(&height.to_be_bytes());
        ihdr.extend_from_slice(&[bit_depth, 6, 0, 0, 0]);
        chunk(&mut bytes, b"IHDR", &ihdr);
        chunk(
            &mut bytes,
            b"IDAT",
            &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
        );
        chunk(&mut bytes, b"IEND", &[]);
        bytes
    }

    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let mut crc_input = kind.to_vec();
        crc_input.extend_from_slice(data);
        out.extend_from_slice(&crc32fast::hash(&crc_input).to_be_bytes());
    }

    #[test]
    fn real_images_are_measured() {
        let info = inspect(&png(40, 30)).unwrap();
        assert_eq!(
            (info.width, info.height, info.format, info.extension),
            (40, 30, "png", "png")
        );
        let info = inspect(&jpeg(17, 9)).unwrap();
        assert_eq!(
            (info.width, info.height, info.format, info.mime),
            (17, 9, "jpeg", "image/jpeg")
        );
    }

    #[test]
    fn bad_images_are_named_for_what_is_wrong() {
        assert_eq!(
            inspect(b"hello, this is text"),
            Err(ImageProblem::NotAnImage)
        );
        assert_eq!(inspect(b""), Err(ImageProblem::NotAnImage));
        let gif = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;";
        assert_eq!(inspect(gif), Err(ImageProblem::NotAnImage));
        let whole = png(64, 64);
        let truncated = &whole[..whole.len() / 2];
        assert!(
            matches!(inspect(truncated), Err(ImageProblem::Damaged(_))),
            "{:?}",
            inspect(truncated)
        );
        assert_eq!(
            inspect(&png_header(20_000, 10, 8)),
            Err(ImageProblem::TooLarge {
                width: 20_000,
                height: 10
            })
        );
        // 16384×16384 RGBA at 16 bits per channel would need 2 GiB: refused before decoding.
        assert_eq!(
            inspect(&png_header(16_384, 16_384, 16)),
            Err(ImageProblem::TooMuchMemory)
        );
    }
}
