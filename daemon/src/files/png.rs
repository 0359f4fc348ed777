//! PNG files Kroma writes: provenance in `kroma:*` text chunks, fast encoding, and streamed
//! encoding for images too large to hold decoded.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::Path;

use img_parts::Bytes;
use img_parts::png::{Png, PngChunk};

/// The PNG text chunk type.
const TEXT: [u8; 4] = *b"tEXt";

/// The `kroma:*` text chunks of one output. Keys and values are ASCII.
pub type Provenance = BTreeMap<&'static str, String>;

/// Adds `kroma:<key>` text chunks to a PNG, before its image data. Not a PNG: an error.
pub fn with_provenance(png: Vec<u8>, provenance: &Provenance) -> Result<Vec<u8>, String> {
    let mut image = Png::from_bytes(Bytes::from(png)).map_err(|err| format!("not a PNG: {err}"))?;
    let at = image
        .chunks()
        .iter()
        .position(|chunk| &chunk.kind() == b"IDAT")
        .ok_or("a PNG without image data")?;
    for (offset, (key, value)) in provenance.iter().enumerate() {
        let mut contents = format!("kroma:{key}").into_bytes();
        contents.push(0);
        contents.extend(value.bytes().filter(|byte| byte.is_ascii() && *byte != 0));
        image
            .chunks_mut()
            .insert(at + offset, PngChunk::new(TEXT, Bytes::from(contents)));
    }
    Ok(image.encoder().bytes().to_vec())
}

/// The `kroma:*` text chunks of a PNG, keys without the prefix.
pub fn read_provenance(png: &[u8]) -> BTreeMap<String, String> {
    let Ok(image) = Png::from_bytes(Bytes::copy_from_slice(png)) else {
        return BTreeMap::new();
    };
    image
        .chunks_by_type(TEXT)
        .filter_map(|chunk| {
            let contents = chunk.contents();
            let split = contents.iter().position(|byte| *byte == 0)?;
            let key = std::str::from_utf8(&contents[..split]).ok()?;
            let key = key.strip_prefix("kroma:")?;
            let value = std::str::from_utf8(&contents[split + 1..]).ok()?;
            Some((key.to_owned(), value.to_owned()))
        })
        .collect()
}

/// The `kroma:*` text chunks of the PNG file at `path`, read up to its image data only (our
/// chunks come before it), so a large file costs no more than its header. Not a PNG: none.
pub fn read_provenance_of(path: &Path) -> BTreeMap<String, String> {
    let Ok(file) = std::fs::File::open(path) else {
        return BTreeMap::new();
    };
    let decoder = ::png::Decoder::new(std::io::BufReader::new(file));
    let Ok(reader) = decoder.read_info() else {
        return BTreeMap::new();
    };
    reader
        .info()
        .uncompressed_latin1_text
        .iter()
        .filter_map(|chunk| {
            let key = chunk.keyword.strip_prefix("kroma:")?;
            Some((key.to_owned(), chunk.text.clone()))
        })
        .collect()
}

/// Whether `path` already holds this candidate's output (a crash came between writing it and
/// recording it).
pub fn holds_candidate(path: &Path, candidate_id: &str) -> Option<Vec<u8>> {
    let bytes = std::fs::read(path).ok()?;
    let provenance = read_provenance(&bytes);
    (provenance.get("candidate").map(String::as_str) == Some(candidate_id)).then_some(bytes)
}

/// Encodes an image as PNG with fast compression: outputs of local steps are written often and
/// large, and fast deflate costs a fraction of the default's time for a little more size.
pub fn encode_png(image: &image::DynamicImage) -> Result<Vec<u8>, String> {
    use image::codecs::png::{CompressionType, FilterType, PngEncoder};
    let mut bytes = Vec::new();
    let encoder =
        PngEncoder::new_with_quality(&mut bytes, CompressionType::Fast, FilterType::Adaptive);
    image
        .write_with_encoder(encoder)
        .map_err(|err| format!("encoding PNG: {err}"))?;
    Ok(bytes)
}

/// Encodes an RGBA PNG of `size` into `file` (a file or a buffer) with `provenance` as `kroma:*` text chunks, the
/// pixel rows coming from `rows`, which hands each band of whole rows to the writer it is given.
/// Only the compressed bytes and one band are in memory at a time.
pub fn stream_png(
    file: &mut impl Write,
    (width, height): (u32, u32),
    provenance: &Provenance,
    rows: impl FnOnce(&mut dyn FnMut(&[u8]) -> io::Result<()>) -> io::Result<()>,
) -> io::Result<()> {
    let mut encoder = png::Encoder::new(io::BufWriter::new(file), width, height);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Fast);
    for (key, value) in provenance {
        let value: String = value
            .chars()
            .filter(|c| c.is_ascii() && *c != '\0')
            .collect();
        encoder
            .add_text_chunk(format!("kroma:{key}"), value)
            .map_err(io::Error::other)?;
    }
    let mut writer = encoder.write_header().map_err(io::Error::other)?;
    let mut stream = writer.stream_writer().map_err(io::Error::other)?;
    rows(&mut |band| stream.write_all(band))?;
    stream.finish().map_err(io::Error::other)?;
    writer.finish().map_err(io::Error::other)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png() -> Vec<u8> {
        let image = image::RgbaImage::from_pixel(3, 2, image::Rgba([10, 20, 30, 255]));
        let mut bytes = Vec::new();
        image::DynamicImage::ImageRgba8(image)
            .write_to(&mut io::Cursor::new(&mut bytes), image::ImageFormat::Png)
            .expect("encode");
        bytes
    }

    #[test]
    fn provenance_round_trips_and_the_image_still_decodes() {
        let provenance = Provenance::from([
            ("candidate", "c-1".to_owned()),
            ("prompt_sha256", "ab".repeat(32)),
        ]);
        let tagged = with_provenance(png(), &provenance).expect("a PNG");
        let read = read_provenance(&tagged);
        assert_eq!(read["candidate"], "c-1");
        assert_eq!(read["prompt_sha256"], "ab".repeat(32));
        let decoded = image::load_from_memory(&tagged).expect("still a PNG");
        assert_eq!((decoded.width(), decoded.height()), (3, 2));
        assert!(with_provenance(b"not a png".to_vec(), &provenance).is_err());
    }
}
