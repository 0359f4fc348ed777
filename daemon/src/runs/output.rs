//! Generated images on disk: provenance in PNG text chunks, and placing a file without ever
//! overwriting one (an existing file moves to `archive/replaced/`).

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

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

/// `outputs/<job key>-<run>.png`, or `outputs/<job key>__c<n>-<run>.png` when the job has several
/// candidates, `<run>` being the first 8 characters of the run id: two runs of the same scenes
/// never compete for a file name.
pub fn relative_path(job_key: &str, index: u32, candidates: u32, run_id: &str) -> String {
    let run = run_id.get(..8).unwrap_or(run_id);
    if candidates > 1 {
        format!("outputs/{job_key}__c{index}-{run}.png")
    } else {
        format!("outputs/{job_key}-{run}.png")
    }
}

/// Whether `path` already holds this candidate's output (a crash came between writing it and
/// recording it).
pub fn holds_candidate(path: &Path, candidate_id: &str) -> Option<Vec<u8>> {
    let bytes = std::fs::read(path).ok()?;
    let provenance = read_provenance(&bytes);
    (provenance.get("candidate").map(String::as_str) == Some(candidate_id)).then_some(bytes)
}

/// Writes `bytes` at `root/rel_path`: to a temporary file first, synced, then renamed into place.
/// Whatever was there before is moved to `archive/replaced/` first, never overwritten.
pub fn place(root: &Path, rel_path: &str, bytes: &[u8], stamp: &str) -> io::Result<()> {
    let target = root.join(rel_path);
    let folder = target.parent().unwrap_or(root);
    std::fs::create_dir_all(folder)?;
    if target.exists() {
        archive_replaced(root, &target, stamp)?;
    }
    write_new(&target, bytes)
}

/// Writes a new file atomically (temporary file, synced, renamed); fails with `AlreadyExists`
/// rather than replace anything. Creates the folder when missing.
pub fn write_new(target: &Path, bytes: &[u8]) -> io::Result<()> {
    write_new_with(target, |file| file.write_all(bytes)).map_err(|err| match err {
        WriteError::File(err) | WriteError::Content(err) => err,
    })
}

/// Why [`write_new_with`] wrote nothing: the file itself, or what was to go in it.
pub enum WriteError<E> {
    File(io::Error),
    Content(E),
}

/// [`write_new`] for content written in pieces by `write`. A failed `write` leaves nothing.
pub fn write_new_with<E>(
    target: &Path,
    write: impl FnOnce(&mut std::fs::File) -> Result<(), E>,
) -> Result<(), WriteError<E>> {
    let folder = target.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(folder).map_err(WriteError::File)?;
    if target.exists() {
        // Checked again by the rename; this only saves the work.
        return Err(WriteError::File(io::ErrorKind::AlreadyExists.into()));
    }
    let mut temp = tempfile::Builder::new()
        .prefix(".kroma-")
        .suffix(".part")
        .tempfile_in(folder)
        .map_err(WriteError::File)?;
    write(temp.as_file_mut()).map_err(WriteError::Content)?;
    temp.as_file().sync_all().map_err(WriteError::File)?;
    temp.persist_noclobber(target)
        .map_err(|err| WriteError::File(err.error))?;
    Ok(())
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

/// Moves a file to `archive/replaced/<stamp>_<name>`, adding a counter if that is taken.
fn archive_replaced(root: &Path, file: &Path, stamp: &str) -> io::Result<PathBuf> {
    let archive = root.join("archive").join("replaced");
    std::fs::create_dir_all(&archive)?;
    let name = file
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".to_owned());
    let stamp: String = stamp
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    for n in 0..1000 {
        let candidate = if n == 0 {
            archive.join(format!("{stamp}_{name}"))
        } else {
            archive.join(format!("{stamp}_{n}_{name}"))
        };
        if !candidate.exists() {
            std::fs::rename(file, &candidate)?;
            return Ok(candidate);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!("archive/replaced has no free name for {name}"),
    ))
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

    #[test]
    fn placing_never_overwrites() {
        let root = tempfile::tempdir().expect("temp dir");
        place(
            root.path(),
            "outputs/a.png",
            b"first",
            "2026-11-27T00:00:00.000Z",
        )
        .expect("place");
        place(
            root.path(),
            "outputs/a.png",
            b"second",
            "2026-11-27T00:00:00.000Z",
        )
        .expect("place");
        place(
            root.path(),
            "outputs/a.png",
            b"third",
            "2026-11-27T00:00:00.000Z",
        )
        .expect("place");
        assert_eq!(
            std::fs::read(root.path().join("outputs/a.png")).expect("read"),
            b"third"
        );
        let mut archived: Vec<Vec<u8>> = std::fs::read_dir(root.path().join("archive/replaced"))
            .expect("archive")
            .map(|entry| std::fs::read(entry.expect("entry").path()).expect("read"))
            .collect();
        archived.sort();
        assert_eq!(archived, vec![b"first".to_vec(), b"second".to_vec()]);
        let leftovers = std::fs::read_dir(root.path().join("outputs"))
            .expect("outputs")
            .count();
        assert_eq!(leftovers, 1, "no temporary file is left behind");
    }

    #[test]
    fn output_names_follow_the_candidate_count() {
        let run = "0c93d3df-1c67-419f-a93e-42794c4c21c8";
        assert_eq!(
            relative_path("style_1_a", 1, 1, run),
            "outputs/style_1_a-0c93d3df.png"
        );
        assert_eq!(
            relative_path("style_1_a", 2, 3, run),
            "outputs/style_1_a__c2-0c93d3df.png"
        );
    }
}
