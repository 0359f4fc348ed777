//! What an image file really is, decided from its bytes alone: format, dimensions, and whether it
//! decodes completely within the limits. Pure: no file system, no clock.

use std::io::Cursor;

use image::{ImageFormat, ImageReader, Limits};
use kroma_protocol::ErrorCode;

/// File extensions of the images Kroma reads (PNG, JPEG, WebP), lower case: what a folder
/// contributes to a one-off step or a run. The one list; the bytes decide in the end.
pub const EXTENSIONS: [&str; 4] = ["png", "jpg", "jpeg", "webp"];

/// Extensions of image types Kroma does not read but a user may expect it to (the old pipeline
/// took them from scene folders): named in errors rather than skipped in silence.
pub const UNREAD_EXTENSIONS: [&str; 3] = ["bmp", "tif", "tiff"];

/// Widest or tallest image accepted, in pixels.
pub const MAX_SIDE: u32 = 16_384;
/// Most memory one decode may allocate.
pub const MAX_DECODE_BYTES: u64 = 1024 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    pub width: u32,
    pub height: u32,
    /// `png`, `jpeg` or `webp` (an audio asset's file info reuses this type, with no size).
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
    #[error(
        "{width}×{height} is {:.1} megapixels, more than the {:.1} allowed per image (limits.max_image_pixels)",
        f64::from(*width) * f64::from(*height) / 1e6,
        *max as f64 / 1e6
    )]
    TooManyPixels { width: u32, height: u32, max: u64 },
    #[error("the image data is damaged or truncated: {0}")]
    Damaged(String),
}

impl ImageProblem {
    /// The stable error code for the API.
    pub fn code(&self) -> ErrorCode {
        match self {
            ImageProblem::NotAnImage => ErrorCode::NotAnImage,
            ImageProblem::TooLarge { .. }
            | ImageProblem::TooLong { .. }
            | ImageProblem::TooMuchMemory
            | ImageProblem::TooManyPixels { .. } => ErrorCode::ImageTooLarge,
            ImageProblem::Damaged(_) => ErrorCode::ImageDamaged,
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

/// Decodes within `max_side` on each side and [`MAX_DECODE_BYTES`] of memory, to the end of the
/// data: a truncated or corrupt stream is refused, never filled in.
fn decode(
    bytes: &[u8],
    format: ImageFormat,
    max_side: u32,
) -> Result<image::DynamicImage, ImageProblem> {
    if format == ImageFormat::Jpeg {
        return decode_jpeg(bytes, max_side);
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(max_side);
    limits.max_image_height = Some(max_side);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader(bytes, format, limits)
        .decode()
        .map_err(|err| classify(&err))
}

/// Decodes a JPEG with zune-jpeg in strict mode. `image` runs the same decoder leniently, which
/// paints a truncated or corrupt scan grey and reports success.
fn decode_jpeg(bytes: &[u8], max_side: u32) -> Result<image::DynamicImage, ImageProblem> {
    use zune_core::colorspace::ColorSpace;
    use zune_core::options::DecoderOptions;
    let damaged = |err: zune_jpeg::errors::DecodeErrors| ImageProblem::Damaged(err.to_string());
    let options = DecoderOptions::default()
        .set_strict_mode(true)
        .set_max_width(max_side as usize)
        .set_max_height(max_side as usize);
    let mut decoder = zune_jpeg::JpegDecoder::new_with_options(
        zune_core::bytestream::ZCursor::new(bytes),
        options,
    );
    decoder.decode_headers().map_err(damaged)?;
    let (width, height) = decoder
        .dimensions()
        .ok_or_else(|| ImageProblem::Damaged("no frame header".to_owned()))?;
    let grey = matches!(
        decoder.input_colorspace(),
        Some(ColorSpace::Luma | ColorSpace::LumaA)
    );
    let out = if grey {
        ColorSpace::Luma
    } else {
        ColorSpace::RGB
    };
    decoder.set_options(decoder.options().jpeg_set_out_colorspace(out));
    let pixels = decoder.decode().map_err(damaged)?;
    let (width, height) = (width as u32, height as u32);
    let image = if grey {
        image::GrayImage::from_raw(width, height, pixels).map(image::DynamicImage::ImageLuma8)
    } else {
        image::RgbImage::from_raw(width, height, pixels).map(image::DynamicImage::ImageRgb8)
    };
    image.ok_or_else(|| {
        ImageProblem::Damaged("the decoded data is shorter than the image".to_owned())
    })
}

/// Checks that `bytes` are a complete PNG, JPEG or WebP image within the limits. The header is
/// checked before anything is decoded, so a decompression bomb (or an image of more than
/// `max_pixels`) is refused without decoding it.
pub fn inspect(bytes: &[u8], max_pixels: u64) -> Result<ImageInfo, ImageProblem> {
    let (format, name, mime, extension) = format_of(bytes)?;
    let (width, height) = dimensions(bytes, format)?;
    if width > MAX_SIDE || height > MAX_SIDE {
        return Err(ImageProblem::TooLarge { width, height });
    }
    check_pixels(width, height, max_pixels)?;
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

/// The width and height a PNG, JPEG or WebP declares, for a processing step: any shape up to
/// [`MAX_PROCESSING_SIDE`] within `max_pixels`. Nothing is decoded.
pub fn size_for_processing(bytes: &[u8], max_pixels: u64) -> Result<(u32, u32), ImageProblem> {
    let (format, ..) = format_of(bytes)?;
    let (width, height) = dimensions(bytes, format)?;
    if width > MAX_PROCESSING_SIDE || height > MAX_PROCESSING_SIDE {
        return Err(ImageProblem::TooLong { width, height });
    }
    check_pixels(width, height, max_pixels)?;
    if u64::from(width) * u64::from(height) * 4 > MAX_DECODE_BYTES {
        return Err(ImageProblem::TooMuchMemory);
    }
    Ok((width, height))
}

/// Decodes a PNG, JPEG or WebP for a processing step, after [`size_for_processing`] said yes.
pub fn decode_for_processing(
    bytes: &[u8],
    max_pixels: u64,
) -> Result<image::DynamicImage, ImageProblem> {
    let (format, ..) = format_of(bytes)?;
    size_for_processing(bytes, max_pixels)?;
    decode(bytes, format, MAX_PROCESSING_SIDE)
}

fn check_pixels(width: u32, height: u32, max: u64) -> Result<(), ImageProblem> {
    if u64::from(width) * u64::from(height) > max {
        return Err(ImageProblem::TooManyPixels { width, height, max });
    }
    Ok(())
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

    /// No pixel budget beyond the side limits.
    fn inspect_all(bytes: &[u8]) -> Result<ImageInfo, ImageProblem> {
        inspect(bytes, u64::MAX)
    }

    #[test]
    fn real_images_are_measured() {
        let info = inspect_all(&png(40, 30)).unwrap();
        assert_eq!(
            (info.width, info.height, info.format, info.extension),
            (40, 30, "png", "png")
        );
        let info = inspect_all(&jpeg(17, 9)).unwrap();
        assert_eq!(
            (info.width, info.height, info.format, info.mime),
            (17, 9, "jpeg", "image/jpeg")
        );
    }

    #[test]
    fn bad_images_are_named_for_what_is_wrong() {
        assert_eq!(
            inspect_all(b"hello, this is text"),
            Err(ImageProblem::NotAnImage)
        );
        assert_eq!(inspect_all(b""), Err(ImageProblem::NotAnImage));
        let gif = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;";
        assert_eq!(inspect_all(gif), Err(ImageProblem::NotAnImage));
        let whole = png(64, 64);
        let truncated = &whole[..whole.len() / 2];
        assert!(
            matches!(inspect_all(truncated), Err(ImageProblem::Damaged(_))),
            "{:?}",
            inspect_all(truncated)
        );
        assert_eq!(
            inspect_all(&png_header(20_000, 10, 8)),
            Err(ImageProblem::TooLarge {
                width: 20_000,
                height: 10
            })
        );
        // 16384×16384 RGBA at 16 bits per channel would need 2 GiB: refused before decoding.
        assert_eq!(
            inspect_all(&png_header(16_384, 16_384, 16)),
            Err(ImageProblem::TooMuchMemory)
        );
    }

    /// A JPEG header that declares `width`×`height`, and nothing after it but the start of a scan.
    fn jpeg_claiming(width: u16, height: u16) -> Vec<u8> {
        let whole = jpeg(16, 16);
        // Rewrite the SOF0 frame's height and width, then cut the data right after the scan
        // header.
        let sof = whole.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        let mut bytes = whole.clone();
        bytes[sof + 5..sof + 7].copy_from_slice(&height.to_be_bytes());
        bytes[sof + 7..sof + 9].copy_from_slice(&width.to_be_bytes());
        let sos = bytes.windows(2).position(|w| w == [0xFF, 0xDA]).unwrap();
        let scan_header = u16::from_be_bytes([bytes[sos + 2], bytes[sos + 3]]) as usize;
        bytes.truncate(sos + 2 + scan_header + 16);
        bytes
    }

    #[test]
    fn the_pixel_budget_is_checked_from_the_header_before_decoding() {
        // A few hundred bytes that declare 16000×16000: refused without allocating a pixel.
        let bomb = jpeg_claiming(16_000, 16_000);
        assert!(bomb.len() < 1024);
        assert_eq!(
            inspect(&bomb, 100_000_000),
            Err(ImageProblem::TooManyPixels {
                width: 16_000,
                height: 16_000,
                max: 100_000_000
            })
        );
        assert_eq!(
            size_for_processing(&png_header(12_000, 12_000, 8), 100_000_000),
            Err(ImageProblem::TooManyPixels {
                width: 12_000,
                height: 12_000,
                max: 100_000_000
            })
        );
        assert_eq!(size_for_processing(&png(40, 30), 1200), Ok((40, 30)));
        let err = inspect(&png(40, 30), 1199).unwrap_err();
        assert!(err.to_string().contains("limits.max_image_pixels"), "{err}");
    }

    #[test]
    fn truncated_and_corrupt_jpegs_are_damaged_not_grey() {
        let whole = jpeg(256, 192);
        assert!(inspect_all(&whole).is_ok());
        assert!(decode_for_processing(&whole, u64::MAX).is_ok());
        let cuts = [600, whole.len() / 2, whole.len() - 40];
        for cut in cuts {
            let truncated = &whole[..cut];
            assert!(
                matches!(inspect_all(truncated), Err(ImageProblem::Damaged(_))),
                "cut at {cut} of {}: {:?}",
                whole.len(),
                inspect_all(truncated)
            );
            assert!(
                matches!(
                    decode_for_processing(truncated, u64::MAX),
                    Err(ImageProblem::Damaged(_))
                ),
                "cut at {cut}"
            );
        }
        // Garbage in the middle of the scan.
        let mut corrupt = whole.clone();
        let sos = corrupt.windows(2).position(|w| w == [0xFF, 0xDA]).unwrap();
        for byte in &mut corrupt[sos + 40..sos + 80] {
            *byte = 0xFF;
        }
        assert!(
            matches!(inspect_all(&corrupt), Err(ImageProblem::Damaged(_))),
            "{:?}",
            inspect_all(&corrupt)
        );
        // Greyscale JPEGs stay greyscale.
        let grey = {
            let image = image::GrayImage::from_fn(33, 21, |x, y| image::Luma([(x * y) as u8]));
            let mut bytes = Vec::new();
            image
                .write_to(&mut Cursor::new(&mut bytes), ImageFormat::Jpeg)
                .unwrap();
            bytes
        };
        let decoded = decode_for_processing(&grey, u64::MAX).unwrap();
        assert_eq!(decoded.color(), image::ColorType::L8);
        assert_eq!((decoded.width(), decoded.height()), (33, 21));
    }
}
