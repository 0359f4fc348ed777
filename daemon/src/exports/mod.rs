//! Exports (SPEC §9): what a selection holds (`gather`, reading the store), the manifest
//! (`manifest`, pure: sorted, its time taken from the records so the same selection gives the
//! same bytes), and the package on disk (`pack`). The handlers are in `api/exports.rs`.

pub mod pack;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kroma_protocol as protocol;
use protocol::export::{Manifest, ManifestFile, ManifestProject, ProducedBy, Selection};

use crate::store::runs as run_rows;
use crate::store::{ProjectRow, StoreError, asset_queries};

/// One file a selection holds, before it is hashed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub source: PathBuf,
    /// Its path in the export.
    pub path: String,
    /// The asset's kind, or `run_record`.
    pub kind: String,
    pub asset: Option<String>,
    /// When the asset or run was recorded: the manifest's time is the newest.
    pub recorded_at: String,
}

/// The files `selection` holds in `project`, each once. Reads the store only.
pub fn gather(
    conn: &rusqlite::Connection,
    project: &ProjectRow,
    selection: &Selection,
) -> Result<Vec<Item>, StoreError> {
    let root = Path::new(&project.root);
    let asset_item = |asset: &crate::store::AssetRow| Item {
        source: root.join(&asset.rel_path),
        path: format!("files/{}", asset.rel_path),
        kind: asset.kind.as_str().to_owned(),
        asset: Some(asset.id.clone()),
        recorded_at: asset.created_at.clone(),
    };
    let record_item = |run: &run_rows::RunRow| Item {
        source: PathBuf::from(&run.record_path),
        path: format!("runs/{}.json", run.id),
        kind: "run_record".to_owned(),
        asset: None,
        recorded_at: run
            .finished_at
            .clone()
            .unwrap_or_else(|| run.created_at.clone()),
    };
    let mut items = Vec::new();
    match selection {
        Selection::Approved => {
            for baseline in run_rows::baselines(conn, &project.id)? {
                let asset = asset_queries::get(conn, &project.id, &baseline.asset_id)?;
                items.push(asset_item(&asset));
                let run = run_rows::get_run(conn, &baseline.run_id)?;
                items.push(record_item(&run));
            }
        }
        Selection::Run { run } => {
            let row = run_rows::get_run(conn, run)?;
            if row.project_id != project.id {
                return Err(StoreError::EntityNotFound {
                    what: "run",
                    key: run.clone(),
                });
            }
            let candidates = run_rows::candidates(conn, run)?;
            let baselines = run_rows::baselines(conn, &project.id)?;
            let detail = crate::runs::detail(&row, &candidates, 0.0, &baselines)?;
            for job in &detail.jobs {
                let Some(winner) = job.winner else {
                    continue;
                };
                let candidate = &job.candidates[winner as usize - 1];
                if let Some(id) = candidate.final_asset.as_ref().or(candidate.asset.as_ref()) {
                    items.push(asset_item(&asset_queries::get(conn, &project.id, id)?));
                }
            }
            items.push(record_item(&row));
        }
        Selection::Assets { assets } => {
            for id in assets {
                items.push(asset_item(&asset_queries::get(conn, &project.id, id)?));
            }
        }
        Selection::Project => {
            for asset in asset_queries::list(conn, &project.id, None)? {
                items.push(asset_item(&asset));
            }
            for run in run_rows::list_runs(conn, Some(&project.id), None, u32::MAX)? {
                items.push(record_item(&run));
            }
        }
    }
    items.sort_by(|a, b| a.path.cmp(&b.path));
    items.dedup_by(|a, b| a.path == b.path);
    Ok(items)
}

/// The manifest of `items`, each with its size, hash and provenance, in path order. Pure.
pub fn manifest(
    project: &ProjectRow,
    selection: &Selection,
    items: &[Item],
    hashed: &[(u64, String, BTreeMap<String, String>)],
) -> Manifest {
    let files = items
        .iter()
        .zip(hashed)
        .map(|(item, (size, sha256, provenance))| ManifestFile {
            path: item.path.clone(),
            size: *size,
            sha256: sha256.clone(),
            produced_by: ProducedBy {
                kind: item.kind.clone(),
                asset: item.asset.clone(),
                provenance: provenance.clone(),
            },
        })
        .collect();
    Manifest {
        format_version: protocol::export::MANIFEST_FORMAT,
        project: ManifestProject {
            id: project.id.clone(),
            slug: project.slug.clone(),
            name: project.name.clone(),
        },
        created: items
            .iter()
            .map(|item| item.recorded_at.as_str())
            .max()
            .unwrap_or_default()
            .to_owned(),
        selection: selection.clone(),
        files,
    }
}

/// The name of an export in the project's `exports/`: `<slug>-<selection>-<id prefix>`.
pub fn name(project_slug: &str, selection: &Selection, id: &str) -> String {
    let kind = match selection {
        Selection::Approved => "approved".to_owned(),
        Selection::Run { run } => format!("run-{}", run.get(..8).unwrap_or(run)),
        Selection::Assets { .. } => "assets".to_owned(),
        Selection::Project => "project".to_owned(),
    };
    format!("{project_slug}-{kind}-{}", id.get(..8).unwrap_or(id))
}
