//! `export.*`: a package of a project's results that a person keeps or sends: the files, the run
//! records that made them, and `manifest.json` naming every file with its size, sha256 and what
//! produced it. A `.tar.gz` export is deterministic (sorted entries, fixed times and owners), so
//! the same selection gives the same bytes and two exports compare by hash. [`compare`] is the
//! one verification rule; kromad and `kromactl export verify` (which needs no daemon) both use it.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Method;

/// The manifest format this build writes and reads.
pub const MANIFEST_FORMAT: u32 = 1;

/// The manifest's name at the top of every export.
pub const MANIFEST: &str = "manifest.json";

/// What goes into an export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Selection {
    /// The approved baseline of every scene (`run.baselines`).
    Approved,
    /// One run: each job's winner (its final output) and the run record.
    Run { run: String },
    /// These assets of the project.
    Assets { assets: Vec<String> },
    /// Every asset of the project and every run record.
    Project,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExportFormat {
    /// One `.tar.gz` file.
    #[default]
    TarGz,
    /// A folder.
    Folder,
}

impl ExportFormat {
    pub const fn as_str(self) -> &'static str {
        match self {
            ExportFormat::TarGz => "tar_gz",
            ExportFormat::Folder => "folder",
        }
    }
}

/// What made a file, as far as Kroma knows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ProducedBy {
    /// The asset's kind, e.g. `generated`, `color_corrected`, `input`; `run_record` for a record.
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset: Option<String>,
    /// The `kroma:*` provenance the file carries (run, job, candidate, prompt hash, model, step,
    /// source sha256, …).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub provenance: BTreeMap<String, String>,
}

/// One file of an export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ManifestFile {
    /// Relative to the export's top, `/`-separated: `files/<project path>` or `runs/<id>.json`.
    pub path: String,
    pub size: u64,
    pub sha256: String,
    pub produced_by: ProducedBy,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ManifestProject {
    pub id: String,
    pub slug: String,
    pub name: String,
}

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Manifest {
    pub format_version: u32,
    pub project: ManifestProject,
    /// The newest time among the selected files' records (not the time of the export), so the
    /// same selection always gives the same manifest.
    pub created: String,
    pub selection: Selection,
    /// Sorted by path.
    pub files: Vec<ManifestFile>,
}

/// A file found in an export, to hold against its manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

/// What `export.verify` found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct VerifyReport {
    /// Every listed file is there with its size and hash, and nothing else is.
    pub ok: bool,
    pub checked: u32,
    /// Listed in the manifest, not in the export.
    pub missing: Vec<String>,
    /// In the export, not listed (the manifest itself aside).
    pub extra: Vec<String>,
    /// There, with another size or hash.
    pub changed: Vec<String>,
}

/// Holds what an export holds against its manifest. Pure; every list sorted.
pub fn compare(manifest: &Manifest, found: &[Found]) -> VerifyReport {
    let listed: BTreeMap<&str, &ManifestFile> = manifest
        .files
        .iter()
        .map(|file| (file.path.as_str(), file))
        .collect();
    let present: BTreeMap<&str, &Found> = found
        .iter()
        .filter(|file| file.path != MANIFEST)
        .map(|file| (file.path.as_str(), file))
        .collect();
    let mut report = VerifyReport::default();
    for (path, file) in &listed {
        match present.get(path) {
            None => report.missing.push((*path).to_owned()),
            Some(there) if there.size != file.size || there.sha256 != file.sha256 => {
                report.changed.push((*path).to_owned())
            }
            Some(_) => report.checked += 1,
        }
    }
    report.extra = present
        .keys()
        .filter(|path| !listed.contains_key(*path))
        .map(|path| (*path).to_owned())
        .collect();
    report.ok = report.missing.is_empty() && report.extra.is_empty() && report.changed.is_empty();
    report
}

/// What an export is doing: reading and hashing the files, then packing them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExportPhase {
    Hashing,
    Packing,
}

/// `export.progress`: an export advanced (at most a few a second, and at the end of each phase).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ExportProgress {
    /// The project's slug.
    pub project: String,
    /// Where the export is being written.
    pub target: String,
    pub phase: ExportPhase,
    /// Files done in this phase.
    pub done: u32,
    pub total: u32,
    pub bytes_done: u64,
    pub bytes_total: u64,
}

/// An export kromad made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Export {
    pub id: String,
    /// The project's slug.
    pub project: String,
    pub selection: Selection,
    pub format: ExportFormat,
    /// Absolute path of the `.tar.gz` or the folder, in the project's `exports/`.
    pub path: String,
    /// Files listed in the manifest.
    pub files: u32,
    /// Their bytes, summed.
    pub bytes: u64,
    /// The `.tar.gz`'s sha256 (the same for the same selection); the manifest's for a folder.
    pub sha256: String,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateParams {
    /// Project slug or UUID.
    pub project: String,
    pub selection: Selection,
    #[serde(default)]
    pub format: ExportFormat,
}

/// `export.create`.
pub enum Create {}

impl Method for Create {
    const NAME: &'static str = "export.create";
    const SUMMARY: &'static str = "Package files, their run records and a manifest as a deterministic .tar.gz or a folder in the project's exports/";
    const MUTATING: bool = true;
    const UNBOUNDED: bool = true;
    type Params = CreateParams;
    type Output = Export;
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Only this project's exports (slug or UUID).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ExportList {
    pub exports: Vec<Export>,
}

/// `export.list`.
pub enum List {}

impl Method for List {
    const NAME: &'static str = "export.list";
    const SUMMARY: &'static str = "List exports, newest first";
    const MUTATING: bool = false;
    const FOR_AGENTS: bool = true;
    type Params = ListParams;
    type Output = ExportList;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportRef {
    pub id: String,
}

/// `export.get`.
pub enum Get {}

impl Method for Get {
    const NAME: &'static str = "export.get";
    const SUMMARY: &'static str = "Show one export";
    const MUTATING: bool = false;
    const FOR_AGENTS: bool = true;
    type Params = ExportRef;
    type Output = Export;
}

/// `export.verify`.
pub enum Verify {}

impl Method for Verify {
    const NAME: &'static str = "export.verify";
    const SUMMARY: &'static str =
        "Re-hash an export against its manifest: every missing, extra or changed file by name";
    const MUTATING: bool = false;
    const UNBOUNDED: bool = true;
    const FOR_AGENTS: bool = true;
    type Params = ExportRef;
    type Output = VerifyReport;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteParams {
    pub id: String,
    /// The human's confirmation; without it nothing is deleted.
    #[serde(default)]
    pub confirm: bool,
}

/// `export.delete`.
pub enum Delete {}

impl Method for Delete {
    const NAME: &'static str = "export.delete";
    const SUMMARY: &'static str = "Delete an export and its file or folder (needs confirm: true)";
    const MUTATING: bool = true;
    type Params = DeleteParams;
    /// The export that was deleted.
    type Output = Export;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(files: &[(&str, u64, &str)]) -> Manifest {
        Manifest {
            format_version: MANIFEST_FORMAT,
            project: ManifestProject {
                id: "p".into(),
                slug: "noir".into(),
                name: "Noir".into(),
            },
            created: "2026-12-06T00:00:00.000Z".into(),
            selection: Selection::Project,
            files: files
                .iter()
                .map(|(path, size, sha)| ManifestFile {
                    path: (*path).into(),
                    size: *size,
                    sha256: (*sha).into(),
                    produced_by: ProducedBy::default(),
                })
                .collect(),
        }
    }

    fn found(path: &str, size: u64, sha: &str) -> Found {
        Found {
            path: path.into(),
            size,
            sha256: sha.into(),
        }
    }

    #[test]
    fn verification_names_every_missing_extra_and_changed_file() {
        let manifest = manifest(&[
            ("files/a.png", 3, "aa"),
            ("files/b.png", 4, "bb"),
            ("runs/r.json", 5, "rr"),
        ]);
        let intact = compare(
            &manifest,
            &[
                found("manifest.json", 9, "mm"),
                found("files/a.png", 3, "aa"),
                found("files/b.png", 4, "bb"),
                found("runs/r.json", 5, "rr"),
            ],
        );
        assert!(intact.ok);
        assert_eq!(intact.checked, 3);
        let tampered = compare(
            &manifest,
            &[
                found("files/a.png", 3, "ab"),
                found("runs/r.json", 6, "rr"),
                found("files/z.png", 1, "zz"),
            ],
        );
        assert!(!tampered.ok);
        assert_eq!(tampered.missing, vec!["files/b.png"]);
        assert_eq!(tampered.changed, vec!["files/a.png", "runs/r.json"]);
        assert_eq!(tampered.extra, vec!["files/z.png"]);
        assert_eq!(tampered.checked, 0);
    }
}
