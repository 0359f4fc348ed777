//! The one module that writes files, in three ways: a new file that never replaces one
//! ([`new_file`], [`new_file_with`], [`place`], which first moves an existing file to
//! `archive/replaced/`), a file readers see whole, old or new ([`replace`]), and a file removed
//! again unless its database row commits ([`Uncommitted`]). Every write goes to a temporary file
//! in the same folder, is synced, then renamed into place.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Writes `bytes` at `root/rel_path`: to a temporary file first, synced, then renamed into place.
/// Whatever was there before is moved to `archive/replaced/` first, never overwritten.
pub fn place(root: &Path, rel_path: &str, bytes: &[u8], stamp: &str) -> io::Result<()> {
    let target = root.join(rel_path);
    let folder = target.parent().unwrap_or(root);
    fs::create_dir_all(folder)?;
    if target.exists() {
        archive_replaced(root, &target, stamp)?;
    }
    new_file(&target, bytes)
}

/// Writes a new file atomically (temporary file, synced, renamed); fails with `AlreadyExists`
/// rather than replace anything. Creates the folder when missing.
pub fn new_file(target: &Path, bytes: &[u8]) -> io::Result<()> {
    new_file_with(target, |file| file.write_all(bytes)).map_err(|err| match err {
        WriteError::File(err) | WriteError::Content(err) => err,
    })
}

/// Why [`new_file_with`] wrote nothing: the file itself, or what was to go in it.
pub enum WriteError<E> {
    File(io::Error),
    Content(E),
}

/// [`new_file`] for content written in pieces by `write`. A failed `write` leaves nothing.
pub fn new_file_with<E>(
    target: &Path,
    write: impl FnOnce(&mut fs::File) -> Result<(), E>,
) -> Result<(), WriteError<E>> {
    let folder = target.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(folder).map_err(WriteError::File)?;
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

/// Writes a file so that readers see the old content or the new one, never a half-written file.
/// On Unix the file has mode 0600 from its creation on (the temporary file is made so), which the
/// secrets' file store relies on.
pub fn replace(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let folder = path.parent().unwrap_or(Path::new("."));
    let mut temp = tempfile::NamedTempFile::new_in(folder)?;
    temp.write_all(bytes)?;
    temp.as_file().sync_all()?;
    temp.persist(path).map_err(|err| err.error)?;
    Ok(())
}

/// A file written for a database row that has not committed yet. Dropping it removes the file
/// unless [`Uncommitted::keep`] was called, so a row that fails to commit leaves no file behind.
#[derive(Debug)]
pub struct Uncommitted {
    path: PathBuf,
    kept: bool,
}

impl Uncommitted {
    /// Writes `bytes` at `path` like [`replace`], creating the folder when missing.
    pub fn write(path: &Path, bytes: &[u8]) -> io::Result<Uncommitted> {
        if let Some(folder) = path.parent() {
            fs::create_dir_all(folder)?;
        }
        replace(path, bytes)?;
        Ok(Uncommitted {
            path: path.to_owned(),
            kept: false,
        })
    }

    /// The row committed: the file stays.
    pub fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for Uncommitted {
    fn drop(&mut self) {
        if !self.kept
            && let Err(err) = fs::remove_file(&self.path)
            && err.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(path = %self.path.display(), %err, "could not remove an uncommitted file");
        }
    }
}

/// Moves a file that is about to be replaced to `archive/replaced/` (reference §4.5).
fn archive_replaced(root: &Path, file: &Path, stamp: &str) -> io::Result<PathBuf> {
    archive(&root.join(REPLACED_FOLDER), file, "replaced", stamp)
}

/// Where files about to be replaced go, relative to a project root.
pub const REPLACED_FOLDER: &str = "archive/replaced";
/// Where files that failed the QA guard go, relative to a project root.
pub const BAD_FOLDER: &str = "archive/bad";

/// Moves `file` into `folder` as `<stem>_<why>_<stamp><ext>` (reference §4.5: the stem with
/// anything but letters, digits, `-` and `_` made `_`; the stamp's digits), adding `_2`, `_3`, …
/// when that name is taken. Never replaces a file. Answers the new path.
pub fn archive(folder: &Path, file: &Path, why: &str, stamp: &str) -> io::Result<PathBuf> {
    fs::create_dir_all(folder)?;
    let stem: String = file
        .file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".to_owned())
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let extension = file
        .extension()
        .map(|ext| format!(".{}", ext.to_string_lossy()))
        .unwrap_or_default();
    let stamp: String = stamp
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    for n in 1..1000 {
        let name = if n == 1 {
            format!("{stem}_{why}_{stamp}{extension}")
        } else {
            format!("{stem}_{why}_{stamp}_{n}{extension}")
        };
        let target = folder.join(name);
        match move_no_clobber(file, &target) {
            Ok(()) => return Ok(target),
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(err) => return Err(err),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!("{} has no free name for {stem}", folder.display()),
    ))
}

/// Renames `from` to `to` unless `to` exists, in one step where the OS has one (Linux's
/// `renameat2` with `RENAME_NOREPLACE`), so two movers never overwrite each other's file and a
/// crash leaves the file under exactly one of its names. Elsewhere, or on a file system without
/// it: a hard link (which fails on an existing name) and an unlink, else a checked rename.
fn move_no_clobber(from: &Path, to: &Path) -> io::Result<()> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use nix::fcntl::{AT_FDCWD, RenameFlags, renameat2};
        match renameat2(AT_FDCWD, from, AT_FDCWD, to, RenameFlags::RENAME_NOREPLACE) {
            Ok(()) => return Ok(()),
            Err(nix::errno::Errno::EEXIST) => return Err(io::ErrorKind::AlreadyExists.into()),
            // EINVAL: the file system does not support the flag; fall back below.
            Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOSYS) => {}
            Err(errno) => return Err(io::Error::from(errno)),
        }
    }
    match fs::hard_link(from, to) {
        Ok(()) => fs::remove_file(from),
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => Err(err),
        Err(_) => {
            if to.exists() {
                return Err(io::ErrorKind::AlreadyExists.into());
            }
            fs::rename(from, to)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let mut archived: Vec<(String, Vec<u8>)> =
            std::fs::read_dir(root.path().join("archive/replaced"))
                .expect("archive")
                .map(|entry| {
                    let path = entry.expect("entry").path();
                    let name = path.file_name().unwrap().to_string_lossy().into_owned();
                    (name, std::fs::read(&path).expect("read"))
                })
                .collect();
        archived.sort();
        assert_eq!(
            archived,
            vec![
                (
                    "a_replaced_20261127T000000000Z.png".to_owned(),
                    b"first".to_vec()
                ),
                (
                    "a_replaced_20261127T000000000Z_2.png".to_owned(),
                    b"second".to_vec()
                ),
            ]
        );
        let leftovers = std::fs::read_dir(root.path().join("outputs"))
            .expect("outputs")
            .count();
        assert_eq!(leftovers, 1, "no temporary file is left behind");
    }

    #[test]
    fn an_uncommitted_file_goes_unless_kept() {
        let root = tempfile::tempdir().expect("temp dir");
        let dropped = root.path().join("inputs/a.png");
        drop(Uncommitted::write(&dropped, b"a").expect("write"));
        assert!(!dropped.exists());
        let kept = root.path().join("inputs/b.png");
        Uncommitted::write(&kept, b"b").expect("write").keep();
        assert_eq!(fs::read(&kept).expect("read"), b"b");
    }

    #[cfg(unix)]
    #[test]
    fn a_replaced_file_is_private_from_the_start() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().expect("temp dir");
        let target = root.path().join("secrets.age");
        replace(&target, b"sealed").expect("write");
        let mode = fs::metadata(&target)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_new_file_never_replaces_one() {
        let root = tempfile::tempdir().expect("temp dir");
        let target = root.path().join("a.png");
        new_file(&target, b"first").expect("write");
        let err = new_file(&target, b"second").expect_err("exists");
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        replace(&target, b"third").expect("replace");
        assert_eq!(fs::read(&target).expect("read"), b"third");
    }
}
