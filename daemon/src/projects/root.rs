//! The project root folder on disk: creating its layout, and removing it when a project is purged.
//!
//! A root is only ever created empty and marked with `.kroma/project.json` naming its project;
//! purging checks that marker first, so a mistyped or shared folder is never deleted.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::error::Problem;
use crate::files::write;
use crate::projects::layout::{FOLDERS as LAYOUT, MARKER};

#[derive(serde::Serialize, serde::Deserialize)]
struct Marker {
    id: String,
    slug: String,
}

/// What `create` made. Dropping it undoes the creation unless [`CreatedRoot::keep`] was called
/// first, so a project row that fails to commit leaves no folder behind.
#[derive(Debug)]
pub struct CreatedRoot {
    root: PathBuf,
    root_existed: bool,
    kept: bool,
}

/// Creates the layout under `root`, which must be absent or an empty folder.
pub fn create(root: &Path, id: &str, slug: &str) -> Result<CreatedRoot, Problem> {
    let root_existed = match fs::read_dir(root) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(Problem::new(
                    kroma_protocol::ErrorKind::Conflict,
                    kroma_protocol::ErrorCode::RootNotEmpty,
                    format!("project root {} exists and is not empty", root.display()),
                )
                .with_hint("pick a new or empty folder as the root, or move the old folder away"));
            }
            true
        }
        Err(err) if err.kind() == io::ErrorKind::NotFound => false,
        Err(err) => return Err(io_error("reading project root", root, &err)),
    };
    let created = CreatedRoot {
        root: root.to_owned(),
        root_existed,
        kept: false,
    };
    write_layout(root, id, slug)?;
    Ok(created)
}

fn write_layout(root: &Path, id: &str, slug: &str) -> Result<(), Problem> {
    for folder in LAYOUT {
        let path = root.join(folder);
        fs::create_dir_all(&path).map_err(|err| io_error("creating folder", &path, &err))?;
    }
    let marker = serde_json::to_vec_pretty(&Marker {
        id: id.to_owned(),
        slug: slug.to_owned(),
    })
    .map_err(|err| {
        Problem::new(
            kroma_protocol::ErrorKind::Internal,
            kroma_protocol::ErrorCode::Internal,
            err.to_string(),
        )
    })?;
    let path = root.join(MARKER);
    write::replace(&path, &marker).map_err(|err| io_error("writing", &path, &err))
}

impl CreatedRoot {
    /// The project row committed: keep the folder.
    pub fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for CreatedRoot {
    /// Removes what `create` made: the whole root if it did not exist before, else its content.
    fn drop(&mut self) {
        if self.kept {
            return;
        }
        let result = if self.root_existed {
            LAYOUT
                .iter()
                .filter(|folder| !folder.contains('/'))
                .chain(["archive"].iter())
                .try_for_each(|folder| match fs::remove_dir_all(self.root.join(folder)) {
                    Err(err) if err.kind() != io::ErrorKind::NotFound => Err(err),
                    _ => Ok(()),
                })
        } else {
            fs::remove_dir_all(&self.root)
        };
        if let Err(err) = result {
            tracing::warn!(root = %self.root.display(), %err, "could not undo a project root");
        }
    }
}

/// A project root moved aside while its project row is being deleted. Dropping it moves the root
/// back; [`DetachedRoot::purge`] deletes it once the deletion has committed.
#[derive(Debug)]
pub struct DetachedRoot {
    root: PathBuf,
    aside: Option<PathBuf>,
}

impl DetachedRoot {
    /// Deletes the files. Blocking.
    pub fn purge(mut self) -> Result<(), Problem> {
        let Some(aside) = self.aside.take() else {
            return Ok(());
        };
        fs::remove_dir_all(&aside).map_err(|err| io_error("removing", &aside, &err))
    }
}

impl Drop for DetachedRoot {
    fn drop(&mut self) {
        if let Some(aside) = self.aside.take()
            && let Err(err) = fs::rename(&aside, &self.root)
        {
            tracing::error!(aside = %aside.display(), root = %self.root.display(), %err, "could not move a project root back");
        }
    }
}

/// Moves a project root aside so the caller can commit the row deletion, then purge the files.
/// Refuses roots whose marker does not name project `id`. A root that is already gone is fine.
pub fn detach(root: &Path, id: &str) -> Result<DetachedRoot, Problem> {
    let marker_path = root.join(MARKER);
    let marker = match fs::read(&marker_path) {
        Ok(bytes) => serde_json::from_slice::<Marker>(&bytes).ok(),
        Err(err) if err.kind() == io::ErrorKind::NotFound && !root.exists() => {
            return Ok(DetachedRoot {
                root: root.to_owned(),
                aside: None,
            });
        }
        Err(_) => None,
    };
    if marker.as_ref().map(|marker| marker.id.as_str()) != Some(id) {
        return Err(Problem::new(
            kroma_protocol::ErrorKind::Policy,
            kroma_protocol::ErrorCode::RootNotOwned,
            format!(
                "{} is not marked as this project's root ({} missing or for another project), so its files were not removed",
                root.display(),
                MARKER
            ),
        )
        .with_hint("delete without purge_files and remove the folder by hand if you are sure"));
    }
    let file_name = root
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "root".to_owned());
    let aside = root.with_file_name(format!(".{file_name}.deleting-{id}"));
    fs::rename(root, &aside).map_err(|err| io_error("moving aside", root, &err))?;
    Ok(DetachedRoot {
        root: root.to_owned(),
        aside: Some(aside),
    })
}

/// `path` with every symbolic link resolved, also when its last parts do not exist yet: the
/// deepest existing ancestor is resolved and the rest appended. `path` must be absolute and free
/// of `..` (as `project::parse_root` makes sure). Roots are compared in this form, so a link
/// cannot make two projects share files.
pub fn resolve(path: &Path) -> io::Result<PathBuf> {
    let mut missing = Vec::new();
    let mut existing = path;
    loop {
        match fs::canonicalize(existing) {
            Ok(real) => {
                let mut resolved = real;
                for part in missing.iter().rev() {
                    resolved.push(part);
                }
                return Ok(resolved);
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                // A link to nothing yet would be followed by whatever creates the folder later,
                // to a place this function never saw.
                if fs::symlink_metadata(existing).is_ok_and(|meta| meta.file_type().is_symlink()) {
                    return Err(io::Error::other(format!(
                        "{} is a link to something that does not exist",
                        existing.display()
                    )));
                }
                let (Some(parent), Some(name)) = (existing.parent(), existing.file_name()) else {
                    return Err(err);
                };
                missing.push(name.to_owned());
                existing = parent;
            }
            Err(err) => return Err(err),
        }
    }
}

/// Every other project's root, resolved; a root that cannot be resolved is taken as written.
pub fn resolve_all<'a>(roots: impl IntoIterator<Item = &'a str>) -> Vec<PathBuf> {
    roots
        .into_iter()
        .map(|root| resolve(Path::new(root)).unwrap_or_else(|_| PathBuf::from(root)))
        .collect()
}

fn io_error(doing: &str, path: &Path, err: &io::Error) -> Problem {
    Problem::new(
        kroma_protocol::ErrorKind::Infra,
        kroma_protocol::ErrorCode::IoError,
        format!("{doing} {}: {err}", path.display()),
    )
    .with_hint("check that the folder exists, is writable and the disk is not full")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_makes_the_layout_and_undo_removes_it() {
        let temp = tempfile::tempdir().unwrap();
        let root = temp.path().join("night-harbor");
        let created = create(&root, "id-1", "night-harbor").unwrap();
        for folder in LAYOUT {
            assert!(root.join(folder).is_dir(), "{folder}");
        }
        assert!(root.join(MARKER).is_file());
        drop(created);
        assert!(!root.exists());
        create(&root, "id-1", "night-harbor").unwrap().keep();
        assert!(root.join(MARKER).is_file());
    }

    #[test]
    fn create_in_an_empty_folder_keeps_the_folder_on_undo() {
        let temp = tempfile::tempdir().unwrap();
        drop(create(temp.path(), "id-1", "x").unwrap());
        assert!(temp.path().is_dir());
        assert_eq!(fs::read_dir(temp.path()).unwrap().count(), 0);
    }

    #[test]
    fn create_refuses_a_folder_with_files() {
        let temp = tempfile::tempdir().unwrap();
        fs::write(temp.path().join("notes.txt"), "mine").unwrap();
        let err = create(temp.path(), "id-1", "x").unwrap_err();
        assert_eq!(err.code, kroma_protocol::ErrorCode::RootNotEmpty);
        assert_eq!(fs::read(temp.path().join("notes.txt")).unwrap(), b"mine");
    }

    #[test]
    fn detach_refuses_roots_of_other_projects() {
        let temp = tempfile::tempdir().unwrap();
        let root = temp.path().join("p");
        create(&root, "id-1", "p").unwrap().keep();
        assert_eq!(
            detach(&root, "id-2").unwrap_err().code,
            kroma_protocol::ErrorCode::RootNotOwned
        );
        drop(detach(&root, "id-1").unwrap());
        assert!(
            root.join(MARKER).is_file(),
            "a dropped detach moves the root back"
        );
        detach(&root, "id-1").unwrap().purge().unwrap();
        assert!(!root.exists());
        assert_eq!(fs::read_dir(temp.path()).unwrap().count(), 0);
    }

    #[test]
    fn links_are_resolved_also_below_the_last_existing_folder() {
        let temp = tempfile::tempdir().unwrap();
        let real = resolve(temp.path()).unwrap();
        fs::create_dir(real.join("alpha")).unwrap();
        std::os::unix::fs::symlink(real.join("alpha"), real.join("link")).unwrap();
        assert_eq!(resolve(&real.join("link")).unwrap(), real.join("alpha"));
        assert_eq!(
            resolve(&real.join("link/new/deeper")).unwrap(),
            real.join("alpha/new/deeper")
        );
        assert_eq!(resolve(&real.join("plain")).unwrap(), real.join("plain"));
        std::os::unix::fs::symlink(real.join("nowhere"), real.join("dangling")).unwrap();
        assert!(resolve(&real.join("dangling/inner")).is_err());
    }
}
