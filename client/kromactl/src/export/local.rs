//! `kromactl export verify PATH`: an export checked here, without kromad. `manifest.json` is read
//! (at most [`MAX_MANIFEST_BYTES`], and only of the format this build reads), every other file is
//! hashed while it streams past, and what was found is held against the manifest by the
//! contract's one rule, [`protocol::export::compare`].
//!
//! Nothing is written, unpacked or followed. An entry that is not a regular file or a folder (a
//! link, a device, a FIFO), and one whose path is absolute or climbs out with `..`, is an extra
//! entry, named and never opened; so is a second entry of the same path. `compare` decides on the
//! regular files, and these extras are added to its report.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Component, Path, PathBuf};

use kroma_protocol as protocol;
use protocol::export as wire;
use sha2::{Digest, Sha256};

use crate::output::Failure;

/// The largest `manifest.json` read: far above any real export's, and small enough to hold.
pub const MAX_MANIFEST_BYTES: u64 = 64 * 1024 * 1024;

/// What `export verify` was given.
#[derive(Debug, PartialEq, Eq)]
pub enum Target {
    /// A file here: a `.tar.gz`.
    Archive(PathBuf),
    /// A folder here.
    Folder(PathBuf),
    /// Neither: an export's id, for kromad to verify.
    Id(String),
}

/// An existing file or folder is verified here; anything else is an export's id, unless it
/// reads as a path (a `/`, or a `.tar.gz` name), which is then a path that does not exist.
pub fn target(given: &Path) -> Result<Target, Failure> {
    match std::fs::metadata(given) {
        Ok(metadata) if metadata.is_dir() => Ok(Target::Folder(given.to_owned())),
        Ok(metadata) if metadata.is_file() => Ok(Target::Archive(given.to_owned())),
        Ok(_) => Err(Failure::other(
            format!("{} is neither a file nor a folder", given.display()),
            Some("give the path of a .tar.gz or of an export's folder, or an export's id"),
        )),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            match given.to_str().filter(|text| !reads_as_path(text)) {
                Some(id) => Ok(Target::Id(id.to_owned())),
                None => Err(Failure::other(
                    format!("{} does not exist", given.display()),
                    Some(
                        "give the path of a .tar.gz or of an export's folder, or an export's id (`kromactl export list`)",
                    ),
                )),
            }
        }
        Err(err) => Err(Failure::other(
            format!("reading {}: {err}", given.display()),
            None,
        )),
    }
}

/// Verifies a `.tar.gz` export, reading it once from start to end.
pub fn verify_archive(path: &Path) -> Result<wire::VerifyReport, Failure> {
    let damaged = |err: &dyn std::fmt::Display| {
        Failure::other(
            format!("reading {}: {err}", path.display()),
            Some("the archive is damaged or cut short"),
        )
    };
    let file = File::open(path).map_err(|err| read_failure(path, &err))?;
    let mut reader = BufReader::new(file);
    let start = reader.fill_buf().map_err(|err| read_failure(path, &err))?;
    if !start.starts_with(&[0x1f, 0x8b]) {
        return Err(Failure::other(
            format!(
                "{} is not a .tar.gz (it has no gzip header)",
                path.display()
            ),
            Some("give a .tar.gz export, an export's folder, or an export's id"),
        ));
    }
    // Every gzip member, as `tar xzf` reads them: a member appended after the first cannot hide
    // files from the check.
    let mut archive = tar::Archive::new(flate2::bufread::MultiGzDecoder::new(reader));
    let mut found = Contents::default();
    let mut manifest = None;
    for entry in archive.entries().map_err(|err| damaged(&err))? {
        let mut entry = entry.map_err(|err| damaged(&err))?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let kind = entry.header().entry_type();
        // Metadata for the entries after it, not an entry.
        if kind.is_pax_global_extensions() {
            continue;
        }
        let Some(name) = inside_name(&raw) else {
            found.extra.push(raw);
            continue;
        };
        if kind.is_dir() {
            continue;
        }
        if name == wire::MANIFEST {
            if !kind.is_file() || manifest.is_some() {
                return Err(bad_manifest(path, "is not one regular file"));
            }
            let size = entry.size();
            manifest = Some(read_manifest(&mut entry, size, path)?);
        } else if kind.is_file() && !name.is_empty() {
            let (size, sha256) = hash(&mut entry).map_err(|err| damaged(&err))?;
            found.file(name, size, sha256);
        } else {
            found.extra.push(if name.is_empty() { raw } else { name });
        }
    }
    let manifest = manifest.ok_or_else(|| no_manifest(path))?;
    Ok(found.report(&manifest))
}

/// Verifies a folder export: `manifest.json` at its top, then every file below it.
pub fn verify_folder(root: &Path) -> Result<wire::VerifyReport, Failure> {
    let manifest_path = root.join(wire::MANIFEST);
    let metadata = match std::fs::symlink_metadata(&manifest_path) {
        Ok(metadata) => metadata,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Err(no_manifest(root));
        }
        Err(err) => return Err(read_failure(&manifest_path, &err)),
    };
    if !metadata.is_file() {
        return Err(bad_manifest(root, "is not a regular file"));
    }
    let mut file = open_file(&manifest_path).map_err(|err| read_failure(&manifest_path, &err))?;
    let manifest = read_manifest(&mut file, metadata.len(), root)?;
    let mut found = Contents::default();
    // Folders still to read, each with its path inside the export; a stack, not recursion.
    let mut folders = vec![(root.to_owned(), String::new())];
    while let Some((folder, prefix)) = folders.pop() {
        let mut entries = std::fs::read_dir(&folder)
            .and_then(|entries| entries.collect::<Result<Vec<_>, _>>())
            .map_err(|err| read_failure(&folder, &err))?;
        entries.sort_by_key(std::fs::DirEntry::file_name);
        for entry in entries {
            let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
            // The entry itself, never what a link points to.
            let kind = entry
                .file_type()
                .map_err(|err| read_failure(&entry.path(), &err))?;
            if kind.is_dir() {
                folders.push((entry.path(), format!("{name}/")));
            } else if name == wire::MANIFEST {
                // Read above.
            } else if kind.is_file() {
                match hash_file(&entry.path()) {
                    Ok(Some((size, sha256))) => found.file(name, size, sha256),
                    // Replaced by something else since the folder was read.
                    Ok(None) => found.extra.push(name),
                    Err(err) => return Err(read_failure(&entry.path(), &err)),
                }
            } else {
                found.extra.push(name);
            }
        }
    }
    Ok(found.report(&manifest))
}

/// Reads a manifest of the format this build reads from `bytes`; `export` names where it is.
pub fn parse_manifest(bytes: &[u8], export: &Path) -> Result<wire::Manifest, Failure> {
    /// The one field every format has, read before the rest.
    #[derive(serde::Deserialize)]
    struct Format {
        format_version: u32,
    }
    let format: Format = serde_json::from_slice(bytes)
        .map_err(|err| bad_manifest(export, &format!("is not a Kroma manifest ({err})")))?;
    if format.format_version != wire::MANIFEST_FORMAT {
        return Err(Failure::other(
            format!(
                "the manifest.json of {} is format {}; this kromactl reads format {}",
                export.display(),
                format.format_version,
                wire::MANIFEST_FORMAT
            ),
            Some("verify it with the kromactl of the release that made it, or a newer one"),
        ));
    }
    serde_json::from_slice(bytes)
        .map_err(|err| bad_manifest(export, &format!("is not a Kroma manifest ({err})")))
}

/// What an export holds besides its manifest.
#[derive(Default)]
struct Contents {
    files: Vec<wire::Found>,
    /// Paths seen, to name a second entry of one.
    seen: BTreeSet<String>,
    /// Entries that are not regular files inside the export, and repeated paths.
    extra: Vec<String>,
}

impl Contents {
    fn file(&mut self, path: String, size: u64, sha256: String) {
        if !self.seen.insert(path.clone()) {
            self.extra.push(path.clone());
        }
        self.files.push(wire::Found { path, size, sha256 });
    }

    /// The contract's report on the regular files, with the other entries added as extra.
    fn report(mut self, manifest: &wire::Manifest) -> wire::VerifyReport {
        let mut report = wire::compare(manifest, &self.files);
        if !self.extra.is_empty() {
            report.extra.append(&mut self.extra);
            report.extra.sort();
            report.extra.dedup();
            report.ok = false;
        }
        report
    }
}

/// `raw` as a `/`-separated path inside the export, `.` parts dropped; `None` when it is
/// absolute or climbs out with `..`.
fn inside_name(raw: &str) -> Option<String> {
    if raw.starts_with('/') || raw.starts_with('\\') {
        return None;
    }
    let mut parts = Vec::new();
    for component in Path::new(raw).components() {
        match component {
            Component::Normal(part) => parts.push(part.to_str()?),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(parts.join("/"))
}

/// Whether `text` names a file rather than an export's id.
fn reads_as_path(text: &str) -> bool {
    text.contains('/')
        || text.contains(std::path::MAIN_SEPARATOR)
        || text.starts_with('.')
        || text.ends_with(".tar.gz")
        || text.ends_with(".tgz")
}

/// Reads at most [`MAX_MANIFEST_BYTES`] of a manifest whose size is `size`.
fn read_manifest(
    reader: &mut impl Read,
    size: u64,
    export: &Path,
) -> Result<wire::Manifest, Failure> {
    let too_large = || {
        Failure::other(
            format!(
                "the manifest.json of {} is larger than {} MiB",
                export.display(),
                MAX_MANIFEST_BYTES / (1024 * 1024)
            ),
            Some("this is not an export Kroma made, or it was altered"),
        )
    };
    if size > MAX_MANIFEST_BYTES {
        return Err(too_large());
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or_default());
    reader
        .take(MAX_MANIFEST_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|err| read_failure(export, &err))?;
    if bytes.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(too_large());
    }
    parse_manifest(&bytes, export)
}

/// The size and lowercase hex sha256 of what `reader` gives, read in small pieces.
fn hash(reader: &mut impl Read) -> std::io::Result<(u64, String)> {
    let mut hasher = Sha256::new();
    let size = std::io::copy(reader, &mut hasher)?;
    Ok((size, format!("{:x}", hasher.finalize())))
}

/// Hashes the regular file at `path`; `None` when it is no longer one.
fn hash_file(path: &Path) -> std::io::Result<Option<(u64, String)>> {
    let mut file = open_file(path)?;
    if !file.metadata()?.is_file() {
        return Ok(None);
    }
    hash(&mut file).map(Some)
}

/// Opens `path` to read without following a link at its end, and without waiting on a FIFO
/// swapped in since the folder was read.
fn open_file(path: &Path) -> std::io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use nix::fcntl::OFlag;
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags((OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK).bits());
    }
    options.open(path)
}

fn read_failure(path: &Path, err: &std::io::Error) -> Failure {
    Failure::other(format!("reading {}: {err}", path.display()), None)
}

fn no_manifest(export: &Path) -> Failure {
    Failure::other(
        format!("{} has no manifest.json", export.display()),
        Some("verify an export `kromactl export create` made, or give an export's id"),
    )
}

fn bad_manifest(export: &Path, what: &str) -> Failure {
    Failure::other(
        format!("the manifest.json of {} {what}", export.display()),
        Some("this is not an export Kroma made, or it was altered"),
    )
}
