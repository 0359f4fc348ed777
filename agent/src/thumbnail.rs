//! The thumbnail a candidate is shown to an agent as: a PNG whose longest side is at most
//! [`MAX_SIDE`] pixels and whose size is at most [`MAX_PNG_BYTES`], made only from a file inside
//! the project's folder. The file is untrusted input: its size is bounded before it is read, and
//! the pixel count its header declares before anything is decoded, so a small file that claims
//! a huge image is refused instead of exhausting memory.

use std::io::Cursor;
use std::path::{Path, PathBuf};

/// The longest side of a thumbnail, in pixels.
pub const MAX_SIDE: u32 = 512;
/// The most bytes a thumbnail's PNG may have.
pub const MAX_PNG_BYTES: usize = 1024 * 1024;
/// The largest file a thumbnail is made from.
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;
/// The most pixels (width × height) an image a thumbnail is made from may declare.
pub const MAX_SOURCE_PIXELS: u64 = 64 * 1024 * 1024;
/// The longest side of an image a thumbnail is made from.
pub const MAX_SOURCE_SIDE: u32 = 16_384;
/// What the decoder may allocate at once: a [`MAX_SOURCE_PIXELS`] image in 8-bit RGBA.
const MAX_DECODER_ALLOC: u64 = MAX_SOURCE_PIXELS * 4;

/// A PNG thumbnail and the size of the image it was made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thumbnail {
    pub png: Vec<u8>,
    pub width: u32,
    pub height: u32,
    pub source_width: u32,
    pub source_height: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum ThumbnailError {
    #[error("{} is outside the project folder {}; only the project's own files are shown", file.display(), root.display())]
    OutsideProject { file: PathBuf, root: PathBuf },
    #[error("reading {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is {size} bytes, more than the {MAX_FILE_BYTES} a thumbnail is made from", path.display())]
    FileTooLarge { path: PathBuf, size: u64 },
    #[error("{} declares {width}x{height} pixels, more than a thumbnail is made from (at most {MAX_SOURCE_SIDE} a side and {MAX_SOURCE_PIXELS} pixels)", path.display())]
    TooManyPixels {
        path: PathBuf,
        width: u32,
        height: u32,
    },
    #[error("{} is not an image that can be decoded: {source}", path.display())]
    Decode {
        path: PathBuf,
        source: image::ImageError,
    },
    #[error("encoding the thumbnail: {0}")]
    Encode(image::ImageError),
}

/// The real path of `file` when it lies inside the folder `root` (both resolved, symbolic links
/// included), or why not.
pub fn inside_project(root: &Path, file: &Path) -> Result<PathBuf, ThumbnailError> {
    let read_error = |path: &Path| {
        let path = path.to_owned();
        move |source| ThumbnailError::Read { path, source }
    };
    let real_root = std::fs::canonicalize(root).map_err(read_error(root))?;
    let real_file = std::fs::canonicalize(file).map_err(read_error(file))?;
    if real_file.starts_with(&real_root) && real_file != real_root {
        Ok(real_file)
    } else {
        Err(ThumbnailError::OutsideProject {
            file: file.to_owned(),
            root: root.to_owned(),
        })
    }
}

/// Reads the image at `path` (already checked with [`inside_project`]) and makes its thumbnail.
/// Blocking: call it off the async runtime.
pub fn from_file(path: &Path) -> Result<Thumbnail, ThumbnailError> {
    let read_error = |source| ThumbnailError::Read {
        path: path.to_owned(),
        source,
    };
    let size = std::fs::metadata(path).map_err(read_error)?.len();
    if size > MAX_FILE_BYTES {
        return Err(ThumbnailError::FileTooLarge {
            path: path.to_owned(),
            size,
        });
    }
    let bytes = std::fs::read(path).map_err(read_error)?;
    from_bytes(path, &bytes)
}

/// Makes the thumbnail of the encoded image `bytes`; `path` names it in errors.
pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<Thumbnail, ThumbnailError> {
    let decode_error = |source| ThumbnailError::Decode {
        path: path.to_owned(),
        source,
    };
    let (source_width, source_height) = reader(path, bytes)?
        .into_dimensions()
        .map_err(decode_error)?;
    if source_width > MAX_SOURCE_SIDE
        || source_height > MAX_SOURCE_SIDE
        || u64::from(source_width) * u64::from(source_height) > MAX_SOURCE_PIXELS
    {
        return Err(ThumbnailError::TooManyPixels {
            path: path.to_owned(),
            width: source_width,
            height: source_height,
        });
    }
    let mut reader = reader(path, bytes)?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SOURCE_SIDE);
    limits.max_image_height = Some(MAX_SOURCE_SIDE);
    limits.max_alloc = Some(MAX_DECODER_ALLOC);
    reader.limits(limits);
    let image = reader.decode().map_err(decode_error)?;
    let mut side = MAX_SIDE;
    loop {
        let small = if image.width().max(image.height()) > side {
            image.thumbnail(side, side)
        } else {
            image.clone()
        };
        let mut png = Vec::new();
        small
            .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
            .map_err(ThumbnailError::Encode)?;
        // A noisy RGBA image at 512 px can exceed the bound; a smaller side always fits soon.
        if png.len() <= MAX_PNG_BYTES || side <= 64 {
            return Ok(Thumbnail {
                png,
                width: small.width(),
                height: small.height(),
                source_width,
                source_height,
            });
        }
        side /= 2;
    }
}

fn reader<'a>(
    path: &Path,
    bytes: &'a [u8],
) -> Result<image::ImageReader<Cursor<&'a [u8]>>, ThumbnailError> {
    image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|source| ThumbnailError::Read {
            path: path.to_owned(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let image = image::RgbImage::from_fn(width, height, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])
        });
        let mut bytes = Vec::new();
        image
            .write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Png)
            .expect("encode");
        bytes
    }

    /// A small PNG file whose header declares `width`x`height` pixels: the signature, an IHDR
    /// chunk, one IDAT chunk holding a few compressed bytes, and IEND.
    fn png_declaring(width: u32, height: u32) -> Vec<u8> {
        let mut header = Vec::new();
        header.extend_from_slice(&width.to_be_bytes());
        header.extend_from_slice(&height.to_be_bytes());
        header.extend_from_slice(&[8, 2, 0, 0, 0]);
        let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
        for (kind, data) in [
            (b"IHDR", header.as_slice()),
            (
                b"IDAT",
                &[0x78, 0x9c, 0x63, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01][..],
            ),
            (b"IEND", &[][..]),
        ] {
            let mut chunk = kind.to_vec();
            chunk.extend_from_slice(data);
            bytes.extend_from_slice(&(data.len() as u32).to_be_bytes());
            bytes.extend_from_slice(&chunk);
            bytes.extend_from_slice(&crc32(&chunk).to_be_bytes());
        }
        bytes
    }

    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xffff_ffffu32;
        for byte in bytes {
            crc ^= u32::from(*byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    fn check(bytes: &[u8], expected: Result<(u32, u32), &str>) {
        let result = from_bytes(Path::new("candidate.png"), bytes);
        match (result, expected) {
            (Ok(thumbnail), Ok(size)) => {
                assert_eq!((thumbnail.width, thumbnail.height), size);
                assert!(thumbnail.png.len() <= MAX_PNG_BYTES);
                let decoded = image::load_from_memory(&thumbnail.png).expect("a PNG");
                assert_eq!((decoded.width(), decoded.height()), size);
            }
            (Err(err), Err(message)) => {
                assert!(err.to_string().contains(message), "{err}")
            }
            (result, expected) => panic!("{result:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn thumbnails_fit_in_the_longest_side_and_small_images_stay_as_they_are() {
        check(&png(1024, 1536), Ok((341, 512)));
        check(&png(2000, 100), Ok((512, 26)));
        check(&png(32, 48), Ok((32, 48)));
    }

    #[test]
    fn a_file_declaring_a_huge_image_is_refused_before_decoding() {
        check(
            &png_declaring(100_000, 100_000),
            Err("declares 100000x100000 pixels"),
        );
        check(&png_declaring(16_384, 16_384), Err("declares 16384x16384"));
        check(b"not an image at all", Err("is not an image"));
    }

    #[test]
    fn only_files_inside_the_project_folder_pass() {
        let temp = tempfile::tempdir().expect("temp");
        let root = temp.path().join("project");
        std::fs::create_dir_all(root.join("outputs")).expect("folders");
        let inside = root.join("outputs/a.png");
        let outside = temp.path().join("secret.png");
        std::fs::write(&inside, png(4, 4)).expect("write");
        std::fs::write(&outside, png(4, 4)).expect("write");
        assert!(inside_project(&root, &inside).is_ok());
        let dodge = root.join("outputs/../../secret.png");
        assert!(matches!(
            inside_project(&root, &dodge),
            Err(ThumbnailError::OutsideProject { .. })
        ));
        #[cfg(unix)]
        {
            let link = root.join("outputs/link.png");
            std::os::unix::fs::symlink(&outside, &link).expect("symlink");
            assert!(matches!(
                inside_project(&root, &link),
                Err(ThumbnailError::OutsideProject { .. })
            ));
        }
        assert!(matches!(
            inside_project(&root, &root),
            Err(ThumbnailError::OutsideProject { .. })
        ));
    }
}
