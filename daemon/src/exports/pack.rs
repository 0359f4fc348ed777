//! Writing an export and reading one back. A `.tar.gz` is deterministic: `manifest.json` first,
//! then the files in path order, each a regular file with mode 0644, owner 0:0, no names, time
//! 0, in a gzip stream without a name or time; so the same files give the same bytes. A folder
//! export has the same layout. Both are built under a temporary name in the same folder and
//! renamed into place when complete. Files are streamed (hashed as they are copied, so a file
//! that changed since the manifest was made is caught), never held whole in memory.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use kroma_protocol as protocol;
use protocol::export::{Found, MANIFEST, Manifest};
use sha2::{Digest, Sha256};

/// One file to pack: where it is and its path in the export, with the hash the manifest lists.
pub struct Entry {
    pub source: PathBuf,
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

/// The largest manifest read back.
pub const MAX_MANIFEST_BYTES: u64 = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum PackError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("{0} changed while it was exported")]
    Changed(String),
}

/// Streams `source` into `out`, answering its size and sha256.
pub fn copy_hashed(source: &Path, out: &mut dyn Write) -> io::Result<(u64, String)> {
    let mut file = fs::File::open(source)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
        out.write_all(&buffer[..read])?;
        size += read as u64;
    }
    Ok((size, format!("{:x}", hasher.finalize())))
}

/// A file's size and sha256, streamed.
pub fn hash_file(source: &Path) -> io::Result<(u64, String)> {
    copy_hashed(source, &mut io::sink())
}

/// Writes the deterministic `.tar.gz` at `target` (never replacing a file): the manifest, then
/// `entries` in path order. `progress` hears each file written.
pub fn write_tar_gz(
    target: &Path,
    manifest: &[u8],
    entries: &[Entry],
    progress: &mut dyn FnMut(usize),
) -> Result<(), PackError> {
    let result = crate::files::write::new_file_with(target, |file| {
        let gzip = flate2::GzBuilder::new()
            .mtime(0)
            .write(io::BufWriter::new(file), flate2::Compression::default());
        let mut tar = tar::Builder::new(gzip);
        tar.mode(tar::HeaderMode::Deterministic);
        append(
            &mut tar,
            MANIFEST,
            manifest.len() as u64,
            &mut &manifest[..],
        )?;
        for (done, entry) in entries.iter().enumerate() {
            let mut hashing = HashingReader::open(&entry.source)?;
            append(&mut tar, &entry.path, entry.size, &mut hashing)?;
            if hashing.finish() != (entry.size, entry.sha256.clone()) {
                return Err(PackError::Changed(entry.source.display().to_string()));
            }
            progress(done + 1);
        }
        let gzip = tar.into_inner()?;
        let mut buffered = gzip.finish()?;
        buffered.flush()?;
        Ok(())
    });
    match result {
        Ok(()) => Ok(()),
        Err(crate::files::write::WriteError::File(err)) => Err(PackError::Io(err)),
        Err(crate::files::write::WriteError::Content(err)) => Err(err),
    }
}

fn append<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &str,
    size: u64,
    data: &mut dyn Read,
) -> Result<(), PackError> {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(size);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    tar.append_data(&mut header, path, data.take(size))?;
    Ok(())
}

/// Reads a file while hashing it, so what went into the archive is checked against the manifest
/// (a file that changed, or shrank, since it was hashed fails the export).
struct HashingReader {
    file: fs::File,
    hasher: Sha256,
    size: u64,
}

impl HashingReader {
    fn open(path: &Path) -> io::Result<HashingReader> {
        Ok(HashingReader {
            file: fs::File::open(path)?,
            hasher: Sha256::new(),
            size: 0,
        })
    }

    fn finish(self) -> (u64, String) {
        (self.size, format!("{:x}", self.hasher.finalize()))
    }
}

impl Read for HashingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.file.read(buf)?;
        self.hasher.update(&buf[..read]);
        self.size += read as u64;
        Ok(read)
    }
}

/// Writes a folder export at `target` (which must not exist): built as a hidden sibling, then
/// renamed.
pub fn write_folder(
    target: &Path,
    manifest: &[u8],
    entries: &[Entry],
    progress: &mut dyn FnMut(usize),
) -> Result<(), PackError> {
    let parent = target.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(parent)?;
    let temp = tempfile::Builder::new()
        .prefix(".kroma-")
        .suffix(".part")
        .tempdir_in(parent)?;
    fs::write(temp.path().join(MANIFEST), manifest)?;
    for (done, entry) in entries.iter().enumerate() {
        let destination = temp.path().join(&entry.path);
        if let Some(folder) = destination.parent() {
            fs::create_dir_all(folder)?;
        }
        let mut out = fs::File::create(&destination)?;
        let copied = copy_hashed(&entry.source, &mut out)?;
        out.sync_all()?;
        if copied != (entry.size, entry.sha256.clone()) {
            return Err(PackError::Changed(entry.source.display().to_string()));
        }
        progress(done + 1);
    }
    if target.exists() {
        return Err(PackError::Io(io::ErrorKind::AlreadyExists.into()));
    }
    let built = temp.keep();
    if let Err(err) = fs::rename(&built, target) {
        let _ = fs::remove_dir_all(&built);
        return Err(PackError::Io(err));
    }
    Ok(())
}

/// What an export holds: its manifest and every other entry with its size and hash. Entries
/// that are not regular files, or whose path climbs out, are listed with an empty hash so the
/// comparison names them. Streams; bounded memory.
pub fn read_export(path: &Path) -> Result<(Manifest, Vec<Found>), String> {
    let meta = fs::symlink_metadata(path).map_err(|err| format!("{}: {err}", path.display()))?;
    let (manifest, found) = if meta.is_dir() {
        read_folder(path)?
    } else {
        read_tar_gz(path)?
    };
    let manifest = manifest.ok_or_else(|| format!("{} has no {MANIFEST}", path.display()))?;
    let manifest: Manifest =
        serde_json::from_slice(&manifest).map_err(|err| format!("{MANIFEST}: {err}"))?;
    if manifest.format_version != protocol::export::MANIFEST_FORMAT {
        return Err(format!(
            "{MANIFEST} is format {}; this kromad reads format {}",
            manifest.format_version,
            protocol::export::MANIFEST_FORMAT
        ));
    }
    Ok((manifest, found))
}

fn read_manifest(reader: &mut dyn Read, size: u64) -> Result<Vec<u8>, String> {
    if size > MAX_MANIFEST_BYTES {
        return Err(format!(
            "{MANIFEST} is larger than {MAX_MANIFEST_BYTES} bytes"
        ));
    }
    let mut bytes = Vec::with_capacity(size as usize);
    reader
        .take(MAX_MANIFEST_BYTES)
        .read_to_end(&mut bytes)
        .map_err(|err| err.to_string())?;
    Ok(bytes)
}

/// An export's manifest bytes, if found, and every other entry.
type Contents = (Option<Vec<u8>>, Vec<Found>);

fn read_tar_gz(path: &Path) -> Result<Contents, String> {
    let file = fs::File::open(path).map_err(|err| format!("{}: {err}", path.display()))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(io::BufReader::new(file)));
    let mut manifest = None;
    let mut found = Vec::new();
    let entries = archive.entries().map_err(|err| err.to_string())?;
    for entry in entries {
        let mut entry = entry.map_err(|err| format!("a damaged archive: {err}"))?;
        let name = entry
            .path()
            .map(|p| p.to_string_lossy().replace('\\', "/"))
            .unwrap_or_default();
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            continue;
        }
        let size = entry.size();
        if !kind.is_file() || !safe(&name) {
            found.push(Found {
                path: name,
                size,
                sha256: String::new(),
            });
            continue;
        }
        if name == MANIFEST {
            manifest = Some(read_manifest(&mut entry, size)?);
            continue;
        }
        let mut hasher = Sha256::new();
        let copied = io::copy(&mut entry, &mut HashWriter(&mut hasher))
            .map_err(|err| format!("a damaged archive at {name}: {err}"))?;
        found.push(Found {
            path: name,
            size: copied,
            sha256: format!("{:x}", hasher.finalize()),
        });
    }
    Ok((manifest, found))
}

struct HashWriter<'a>(&'a mut Sha256);

impl Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A path inside the export: relative, no `..`, no empty parts.
fn safe(path: &str) -> bool {
    !path.starts_with('/')
        && path
            .split('/')
            .all(|part| !part.is_empty() && part != ".." && part != ".")
}

fn read_folder(root: &Path) -> Result<Contents, String> {
    let mut manifest = None;
    let mut found = Vec::new();
    let mut stack = vec![root.to_owned()];
    let mut visited = 0usize;
    while let Some(folder) = stack.pop() {
        let entries =
            fs::read_dir(&folder).map_err(|err| format!("{}: {err}", folder.display()))?;
        for entry in entries {
            visited += 1;
            if visited > crate::projects::import::MAX_WALK_ENTRIES {
                return Err("the export holds too many entries".to_owned());
            }
            let entry = entry.map_err(|err| err.to_string())?;
            let path = entry.path();
            let name = path
                .strip_prefix(root)
                .map(|rel| rel.to_string_lossy().replace('\\', "/"))
                .unwrap_or_default();
            let meta = fs::symlink_metadata(&path).map_err(|err| err.to_string())?;
            if meta.is_dir() {
                stack.push(path);
            } else if !meta.is_file() {
                found.push(Found {
                    path: name,
                    size: meta.len(),
                    sha256: String::new(),
                });
            } else if name == MANIFEST {
                let mut file = fs::File::open(&path).map_err(|err| err.to_string())?;
                manifest = Some(read_manifest(&mut file, meta.len())?);
            } else {
                let (size, sha256) = hash_file(&path).map_err(|err| err.to_string())?;
                found.push(Found {
                    path: name,
                    size,
                    sha256,
                });
            }
        }
    }
    Ok((manifest, found))
}
