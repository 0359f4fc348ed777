//! Reading the files a user names for import: expanding folders without leaving them, reading each
//! file once (the bytes that are hashed and checked are the bytes that are stored), and writing the
//! project's copy atomically.

use std::fs;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

use kroma_protocol as protocol;
use protocol::{ErrorCode, ErrorKind};
use sha2::{Digest, Sha256};

use crate::error::Problem;
use crate::files::images::{self, ImageInfo};
use crate::files::write::Uncommitted;

/// Largest file accepted for import.
pub const MAX_FILE_BYTES: u64 = 256 * 1024 * 1024;
/// How deep folders are walked.
const MAX_DEPTH: usize = 16;
/// Most entries (files and folders) one expansion looks at, however the folders are linked.
pub const MAX_WALK_ENTRIES: usize = 100_000;

/// A file to import, as found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The path as the user named it or as found inside a named folder.
    pub shown: PathBuf,
    /// Where the bytes really are (symlinks resolved).
    pub real: PathBuf,
}

/// A file that was read and checked.
#[derive(Debug)]
pub struct Checked {
    pub bytes: Vec<u8>,
    pub sha256: String,
    pub info: ImageInfo,
    pub original_name: String,
}

/// Whether `path`'s extension is one of `extensions` (lowercase), in any case.
pub fn has_extension(path: &Path, extensions: &[&str]) -> bool {
    path.extension()
        .and_then(|ext| ext.to_str())
        .is_some_and(|ext| extensions.contains(&ext.to_ascii_lowercase().as_str()))
}

/// Expands the named paths into files, in order: a file as itself, a folder as every file below
/// it (sorted, hidden entries skipped). Each entry is either a file to import or the reason it
/// cannot be. Every real file and folder is visited once (by device and inode), so links that
/// loop or repeat add nothing, and a walk stops with an error after [`MAX_WALK_ENTRIES`] entries.
pub fn expand(named: &[String]) -> Vec<Result<Candidate, (PathBuf, Problem)>> {
    let mut walk = Walk::default();
    for name in named {
        let shown = PathBuf::from(name);
        if let Err(err) = check_named(&shown) {
            walk.found.push(Err((shown, err)));
            continue;
        }
        match fs::metadata(&shown) {
            Err(err) => walk
                .found
                .push(Err((shown.clone(), io_error("reading", &shown, &err)))),
            Ok(meta) if meta.is_dir() => match fs::canonicalize(&shown) {
                Ok(folder) => {
                    if walk.first_visit(&meta) {
                        walk.folder(&shown, &folder, 0);
                    }
                }
                Err(err) => walk
                    .found
                    .push(Err((shown.clone(), io_error("reading", &shown, &err)))),
            },
            Ok(meta) if meta.is_file() => match fs::canonicalize(&shown) {
                Ok(real) => {
                    if walk.first_visit(&meta) {
                        walk.found.push(Ok(Candidate { shown, real }));
                    }
                }
                Err(err) => walk
                    .found
                    .push(Err((shown.clone(), io_error("reading", &shown, &err)))),
            },
            Ok(_) => walk.found.push(Err((
                shown.clone(),
                bad_file(&shown, "is not a regular file or folder"),
            ))),
        }
        if walk.stopped {
            break;
        }
    }
    walk.found
}

/// The state of one expansion.
#[derive(Default)]
struct Walk {
    found: Vec<Result<Candidate, (PathBuf, Problem)>>,
    /// Device and inode of every file and folder seen.
    seen: std::collections::HashSet<(u64, u64)>,
    entries: usize,
    /// The entry limit was reached; nothing more is looked at.
    stopped: bool,
}

impl Walk {
    /// Whether this is the first time the file or folder behind `meta` is seen.
    fn first_visit(&mut self, meta: &fs::Metadata) -> bool {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            self.seen.insert((meta.dev(), meta.ino()))
        }
        #[cfg(not(unix))]
        {
            // No inode numbers: only the depth and entry limits bound the walk.
            let _ = meta;
            true
        }
    }

    /// Counts one entry; false (with an error recorded once) when the limit is reached.
    fn count(&mut self, at: &Path) -> bool {
        self.entries += 1;
        if self.entries > MAX_WALK_ENTRIES {
            if !self.stopped {
                self.stopped = true;
                self.found.push(Err((
                    at.to_owned(),
                    Problem::validation(
                        ErrorCode::TooManyEntries,
                        format!(
                            "stopped at {}: the folders hold more than {MAX_WALK_ENTRIES} entries",
                            at.display()
                        ),
                    )
                    .with_hint("name smaller folders, one call each"),
                )));
            }
            return false;
        }
        true
    }

    fn folder(&mut self, shown: &Path, folder: &Path, depth: usize) {
        let entries = match fs::read_dir(shown) {
            Ok(entries) => entries,
            Err(err) => {
                self.found
                    .push(Err((shown.to_owned(), io_error("listing", shown, &err))));
                return;
            }
        };
        let mut names = Vec::new();
        for entry in entries.filter_map(Result::ok) {
            if !self.count(shown) {
                return;
            }
            let name = entry.file_name();
            if !name.to_string_lossy().starts_with('.') {
                names.push(name);
            }
        }
        names.sort();
        for name in names {
            if self.stopped {
                return;
            }
            let path = shown.join(&name);
            let real = match fs::canonicalize(&path) {
                Ok(real) => real,
                Err(err) => {
                    self.found
                        .push(Err((path.clone(), io_error("reading", &path, &err))));
                    continue;
                }
            };
            if !real.starts_with(folder) {
                self.found.push(Err((
                    path.clone(),
                    Problem::new(
                        ErrorKind::Validation,
                        ErrorCode::PathEscape,
                        format!(
                            "{} leads outside {} (to {})",
                            path.display(),
                            shown.display(),
                            real.display()
                        ),
                    )
                    .with_hint("copy the file into the folder, or name it directly"),
                )));
                continue;
            }
            let Ok(meta) = fs::metadata(&real) else {
                continue;
            };
            if !self.first_visit(&meta) {
                // A link to something already walked (or a loop back up): nothing new.
                continue;
            }
            if meta.is_dir() {
                if depth + 1 >= MAX_DEPTH {
                    self.found.push(Err((
                        path.clone(),
                        bad_file(&path, &format!("is more than {MAX_DEPTH} folders deep")),
                    )));
                } else {
                    self.folder(&path, folder, depth + 1);
                }
            } else if meta.is_file() {
                self.found.push(Ok(Candidate { shown: path, real }));
            }
        }
    }
}

/// A named path must be absolute (the daemon does not share the caller's working directory) and
/// must not climb with `..`.
fn check_named(path: &Path) -> Result<(), Problem> {
    if !path.is_absolute() {
        return Err(Problem::validation(
            ErrorCode::RelativePath,
            format!("{} is not an absolute path", path.display()),
        )
        .with_hint("send absolute paths: kromad does not share the caller's working directory"));
    }
    if path.components().any(|part| part == Component::ParentDir) {
        return Err(Problem::validation(
            ErrorCode::PathEscape,
            format!("{} contains `..`", path.display()),
        )
        .with_hint("name the file or folder by its plain absolute path"));
    }
    Ok(())
}

/// Reads and checks one file. Blocking.
pub fn read_and_check(candidate: &Candidate, max_pixels: u64) -> Result<Checked, Problem> {
    let bytes = read_limited(candidate)?;
    let info = images::inspect(&bytes, max_pixels).map_err(|problem| {
        Problem::validation(
            problem.code(),
            format!("{}: {problem}", candidate.shown.display()),
        )
        .with_hint("import PNG, JPEG or WebP files up to 16384×16384 pixels")
    })?;
    Ok(checked(candidate, bytes, info))
}

/// Reads a voice recording and checks that it is audio (by its first bytes, whatever its name);
/// its `info` has no size (0×0).
pub fn read_and_check_audio(candidate: &Candidate) -> Result<Checked, Problem> {
    let bytes = read_limited(candidate)?;
    let Some(format) = crate::files::audio::sniff(&bytes) else {
        return Err(Problem::validation(
            ErrorCode::BadFile,
            format!(
                "{} is not a WAV, MP3, OGG, FLAC, M4A or WebM recording",
                candidate.shown.display()
            ),
        ));
    };
    let info = ImageInfo {
        width: 0,
        height: 0,
        format: format.name,
        mime: format.mime,
        extension: format.extension,
    };
    Ok(checked(candidate, bytes, info))
}

/// The file's bytes, at most [`MAX_FILE_BYTES`].
fn read_limited(candidate: &Candidate) -> Result<Vec<u8>, Problem> {
    let shown = &candidate.shown;
    let file = fs::File::open(&candidate.real).map_err(|err| io_error("opening", shown, &err))?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|err| io_error("reading", shown, &err))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(bad_file(
            shown,
            &format!("is larger than {} MiB", MAX_FILE_BYTES / 1024 / 1024),
        ));
    }
    Ok(bytes)
}

fn checked(candidate: &Candidate, bytes: Vec<u8>, info: ImageInfo) -> Checked {
    let sha256 = format!("{:x}", Sha256::digest(&bytes));
    let original_name = candidate
        .shown
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    Checked {
        bytes,
        sha256,
        info,
        original_name,
    }
}

/// The project-relative path of an asset: `<folder>/<stem>-<first 12 hex of sha256>.<ext>`. The
/// stem keeps only safe characters so the name works on every file system.
pub fn relative_path(folder: &str, original_name: &str, sha256: &str, extension: &str) -> String {
    let stem = Path::new(original_name)
        .file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut safe: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect();
    if safe.is_empty() {
        safe.push_str("image");
    }
    format!("{folder}/{safe}-{}.{extension}", &sha256[..12])
}

/// Writes `bytes` to `path` atomically (temp file, fsync, rename); the file goes again unless
/// the asset row commits.
pub fn write_new(path: &Path, bytes: &[u8]) -> Result<Uncommitted, Problem> {
    Uncommitted::write(path, bytes).map_err(|err| io_error("writing", path, &err))
}

fn bad_file(path: &Path, what: &str) -> Problem {
    Problem::validation(ErrorCode::BadFile, format!("{} {what}", path.display()))
}

fn io_error(doing: &str, path: &Path, err: &io::Error) -> Problem {
    let (kind, code, hint) = match err.kind() {
        io::ErrorKind::NotFound => (
            ErrorKind::NotFound,
            ErrorCode::FileNotFound,
            "check the path",
        ),
        io::ErrorKind::PermissionDenied => (
            ErrorKind::Validation,
            ErrorCode::FileUnreadable,
            "kromad runs as you: make the file readable by your user",
        ),
        _ => (
            ErrorKind::Infra,
            ErrorCode::IoError,
            "check the disk and the file, then import again",
        ),
    };
    Problem::new(kind, code, format!("{doing} {}: {err}", path.display())).with_hint(hint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_are_safe_and_content_addressed() {
        let sha = "0123456789abcdef".repeat(4);
        assert_eq!(
            relative_path("inputs", "Page 01 (final).PNG", &sha, "png"),
            "inputs/Page_01__final_-0123456789ab.png"
        );
        assert_eq!(
            relative_path("references", ".png", &sha, "png"),
            "references/_png-0123456789ab.png"
        );
        assert_eq!(
            relative_path("inputs", "", &sha, "jpg"),
            "inputs/image-0123456789ab.jpg"
        );
        assert_eq!(
            relative_path("inputs", "ü.webp", &sha, "webp"),
            "inputs/_-0123456789ab.webp"
        );
    }

    #[test]
    fn named_paths_must_be_absolute_and_plain() {
        let found = expand(&["relative.png".into(), "/tmp/../etc/passwd".into()]);
        let codes: Vec<ErrorCode> = found
            .iter()
            .map(|entry| entry.as_ref().unwrap_err().1.code)
            .collect();
        assert_eq!(codes, [ErrorCode::RelativePath, ErrorCode::PathEscape]);
    }

    #[test]
    fn unreadable_and_special_files_fail_without_blocking() {
        let folder = tempfile::tempdir().unwrap();
        // A named pipe would block a plain open forever: it is refused before any open.
        let fifo = folder.path().join("pipe.png");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let found = expand(&[fifo.display().to_string()]);
        assert_eq!(found[0].as_ref().unwrap_err().1.code, ErrorCode::BadFile);
        let walked = expand(&[folder.path().display().to_string()]);
        assert!(walked.is_empty(), "a folder walk skips special files");

        let locked = folder.path().join("locked.png");
        std::fs::write(&locked, b"x").unwrap();
        std::fs::set_permissions(&locked, std::os::unix::fs::PermissionsExt::from_mode(0o000))
            .unwrap();
        if nix::unistd::geteuid().is_root() {
            println!("SKIPPED the unreadable-file half: root reads files whatever their mode");
            return;
        }
        let candidate = expand(&[locked.display().to_string()]).remove(0).unwrap();
        assert_eq!(
            read_and_check(&candidate, u64::MAX).unwrap_err().code,
            ErrorCode::FileUnreadable
        );
    }

    #[test]
    fn folders_are_walked_in_order_without_leaving_them() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.png"), b"x").unwrap();
        let folder = tempfile::tempdir().unwrap();
        std::fs::create_dir(folder.path().join("b")).unwrap();
        std::fs::write(folder.path().join("b/2.png"), b"x").unwrap();
        std::fs::write(folder.path().join("a.png"), b"x").unwrap();
        std::fs::write(folder.path().join(".hidden.png"), b"x").unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("secret.png"),
            folder.path().join("c.png"),
        )
        .unwrap();
        std::os::unix::fs::symlink(folder.path().join("a.png"), folder.path().join("d.png"))
            .unwrap();
        let found = expand(&[folder.path().display().to_string()]);
        let summary: Vec<String> = found
            .iter()
            .map(|entry| match entry {
                Ok(candidate) => candidate
                    .shown
                    .strip_prefix(folder.path())
                    .unwrap()
                    .display()
                    .to_string(),
                Err((path, err)) => format!(
                    "{} {}",
                    path.strip_prefix(folder.path()).unwrap().display(),
                    err.code
                ),
            })
            .collect();
        // d.png is a.png again: each real file is visited once.
        assert_eq!(summary, ["a.png", "b/2.png", "c.png path_escape"]);
    }

    #[test]
    fn link_loops_add_nothing_and_walks_are_bounded() {
        let folder = tempfile::tempdir().unwrap();
        std::fs::create_dir(folder.path().join("sub")).unwrap();
        std::fs::write(folder.path().join("sub/page.png"), b"x").unwrap();
        // Each link leads back up: without tracking, 4 links 16 levels deep are 4^16 paths.
        for name in ["l1", "l2", "l3", "l4"] {
            std::os::unix::fs::symlink(".", folder.path().join(name)).unwrap();
            std::os::unix::fs::symlink("..", folder.path().join("sub").join(name)).unwrap();
        }
        let found = expand(&[folder.path().display().to_string()]);
        let files: Vec<&Path> = found
            .iter()
            .map(|entry| entry.as_ref().unwrap().shown.as_path())
            .collect();
        assert_eq!(files, [folder.path().join("sub/page.png")]);
        // The same folder named twice is walked once.
        let twice = expand(&[
            folder.path().display().to_string(),
            folder.path().join("sub").display().to_string(),
        ]);
        assert_eq!(twice.len(), 1);

        let wide = tempfile::tempdir().unwrap();
        for index in 0..MAX_WALK_ENTRIES + 5 {
            std::fs::File::create(wide.path().join(format!("{index}.txt"))).unwrap();
        }
        let found = expand(&[wide.path().display().to_string()]);
        let last = found.last().unwrap().as_ref().unwrap_err();
        assert_eq!(last.1.code, ErrorCode::TooManyEntries);
        assert!(found.len() <= MAX_WALK_ENTRIES + 1);
    }
}
