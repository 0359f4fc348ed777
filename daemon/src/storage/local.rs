//! The local side of a sync: the files of a project folder (or one export in it), found without
//! following links, and a file pulled down written whole or not at all.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use kroma_protocol::storage::Skipped;

use super::plan;

/// At most this many files on either side of one sync: the plan is held in memory.
pub const MAX_FILES: usize = 200_000;

/// What a walk found.
#[derive(Debug, Default)]
pub struct Found {
    /// Relative path → size.
    pub files: BTreeMap<String, u64>,
    pub skipped: Vec<Skipped>,
}

/// Why a walk stopped.
#[derive(Debug, thiserror::Error)]
pub enum WalkError {
    #[error("more than {MAX_FILES} files")]
    TooMany,
    #[error("reading {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

/// Every regular file under `root/scope` (`scope` empty for the whole folder; a file or a
/// folder otherwise), by its path relative to `root`. Links are never followed: a link, a
/// socket or a name that is not UTF-8 is listed in `skipped` and left alone.
pub fn walk(root: &Path, scope: &str) -> Result<Found, WalkError> {
    let mut found = Found::default();
    let start = if scope.is_empty() {
        root.to_owned()
    } else {
        root.join(scope)
    };
    let meta = match fs::symlink_metadata(&start) {
        Ok(meta) => meta,
        Err(err) if err.kind() == io::ErrorKind::NotFound && !scope.is_empty() => {
            return Ok(found);
        }
        Err(source) => {
            return Err(WalkError::Io {
                path: start,
                source,
            });
        }
    };
    if meta.is_file() {
        if !plan::is_private(scope) {
            found.files.insert(scope.to_owned(), meta.len());
        }
        return Ok(found);
    }
    let mut folders = vec![(start, scope.to_owned())];
    while let Some((folder, rel)) = folders.pop() {
        let entries = fs::read_dir(&folder).map_err(|source| WalkError::Io {
            path: folder.clone(),
            source,
        })?;
        for entry in entries {
            let entry = entry.map_err(|source| WalkError::Io {
                path: folder.clone(),
                source,
            })?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                found.skipped.push(Skipped {
                    path: format!("{rel}/{}", name.to_string_lossy())
                        .trim_start_matches('/')
                        .to_owned(),
                    reason: "name is not UTF-8".into(),
                });
                continue;
            };
            let path = if rel.is_empty() {
                name.to_owned()
            } else {
                format!("{rel}/{name}")
            };
            let kind = entry.file_type().map_err(|source| WalkError::Io {
                path: entry.path(),
                source,
            })?;
            if kind.is_dir() {
                folders.push((entry.path(), path));
            } else if kind.is_file() {
                if plan::is_private(&path) {
                    continue;
                }
                let size = entry
                    .metadata()
                    .map_err(|source| WalkError::Io {
                        path: entry.path(),
                        source,
                    })?
                    .len();
                found.files.insert(path, size);
                if found.files.len() > MAX_FILES {
                    return Err(WalkError::TooMany);
                }
            } else {
                let reason = if kind.is_symlink() {
                    "symbolic link (never followed)"
                } else {
                    "not a regular file"
                };
                found.skipped.push(Skipped {
                    path,
                    reason: reason.into(),
                });
            }
        }
    }
    found.skipped.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(found)
}

/// Where a pulled file goes: `root/path`, with every folder on the way created and checked to
/// lie inside `root` as the files really lie (a folder replaced by a link to elsewhere is
/// refused).
pub fn target_in(root: &Path, path: &str) -> io::Result<PathBuf> {
    let target = root.join(path);
    let folder = target.parent().unwrap_or(root);
    fs::create_dir_all(folder)?;
    let real_root = root.canonicalize()?;
    if !folder.canonicalize()?.starts_with(&real_root) {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("{} leads out of the project folder", folder.display()),
        ));
    }
    if fs::symlink_metadata(&target).is_ok_and(|meta| !meta.is_file()) {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} is there and is not a regular file", target.display()),
        ));
    }
    Ok(target)
}

/// A file being pulled: a temporary file beside its target, removed unless [`Incoming::finish`]
/// puts it in place.
pub struct Incoming {
    temp: tempfile::NamedTempFile,
    hasher: sha2::Sha256,
    size: u64,
}

impl Incoming {
    pub fn new(target: &Path) -> io::Result<Incoming> {
        let folder = target.parent().unwrap_or(Path::new("."));
        let temp = tempfile::Builder::new()
            .prefix(".kroma-")
            .suffix(".part")
            .tempfile_in(folder)?;
        Ok(Incoming {
            temp,
            hasher: sha2::Digest::new(),
            size: 0,
        })
    }

    pub fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        sha2::Digest::update(&mut self.hasher, chunk);
        self.size += chunk.len() as u64;
        self.temp.write_all(chunk)
    }

    /// Size and hex sha256 of what was written.
    pub fn summary(&self) -> (u64, String) {
        (
            self.size,
            format!("{:x}", sha2::Digest::finalize(self.hasher.clone())),
        )
    }

    /// Syncs the file and puts it at `target`. A file already there is first moved to
    /// `archive/replaced/` (never overwritten) when `archive` names the project root.
    pub fn finish(self, target: &Path, archive: Option<(&Path, &str)>) -> io::Result<()> {
        self.temp.as_file().sync_all()?;
        if let Some((root, stamp)) = archive
            && target.exists()
        {
            crate::files::write::archive(
                &root.join(crate::files::write::REPLACED_FOLDER),
                target,
                "replaced",
                stamp,
            )?;
        }
        self.temp
            .persist_noclobber(target)
            .map_err(|err| err.error)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_walk_lists_files_and_leaves_links_and_kromads_own_files_alone() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("outputs/deep")).unwrap();
        fs::create_dir_all(root.join(".kroma")).unwrap();
        fs::write(root.join("outputs/a.png"), b"aaa").unwrap();
        fs::write(root.join("outputs/deep/b.png"), b"bb").unwrap();
        fs::write(root.join(".kroma/project.json"), b"{}").unwrap();
        fs::write(root.join(".kroma/settings.toml"), b"").unwrap();
        fs::write(root.join("outputs/.kroma-x.part"), b"half").unwrap();
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink("/etc", root.join("outputs/etc")).unwrap();
            std::os::unix::fs::symlink(root, root.join("loop")).unwrap();
        }
        let found = walk(root, "").unwrap();
        assert_eq!(
            found.files.into_iter().collect::<Vec<_>>(),
            vec![
                (".kroma/settings.toml".to_owned(), 0),
                ("outputs/a.png".to_owned(), 3),
                ("outputs/deep/b.png".to_owned(), 2),
            ]
        );
        #[cfg(unix)]
        assert_eq!(
            found
                .skipped
                .iter()
                .map(|s| s.path.as_str())
                .collect::<Vec<_>>(),
            vec!["loop", "outputs/etc"]
        );
        let one = walk(root, "outputs/deep").unwrap();
        assert_eq!(
            one.files.keys().collect::<Vec<_>>(),
            vec!["outputs/deep/b.png"]
        );
        let file = walk(root, "outputs/a.png").unwrap();
        assert_eq!(file.files.len(), 1);
        assert!(walk(root, "exports/gone.tar.gz").unwrap().files.is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn a_pull_never_writes_through_a_link_out_of_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("outputs")).unwrap();
        let err = target_in(dir.path(), "outputs/a.png").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
        assert!(target_in(dir.path(), "inputs/a.png").is_ok());
    }

    #[test]
    fn an_incoming_file_is_placed_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a.png");
        let mut dropped = Incoming::new(&target).unwrap();
        dropped.write(b"half").unwrap();
        drop(dropped);
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            0,
            "nothing is left behind"
        );
        fs::write(&target, b"old").unwrap();
        let mut incoming = Incoming::new(&target).unwrap();
        incoming.write(b"new").unwrap();
        assert_eq!(incoming.summary().0, 3);
        incoming
            .finish(&target, Some((dir.path(), "2026-12-06T00:00:00Z")))
            .unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"new");
        let archived = fs::read_dir(dir.path().join("archive/replaced"))
            .unwrap()
            .count();
        assert_eq!(archived, 1, "the old file was kept");
    }
}
