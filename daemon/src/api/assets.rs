//! `asset.*` handlers: import (read, check, copy, record, one file at a time), read, delete, link
//! and lineage.

use std::path::Path;
use std::sync::Arc;

use kroma_protocol as protocol;
use protocol::asset::{AssetKind, ImportOutcome};
use protocol::{ErrorCode, ErrorKind};

use super::find_project;
use crate::Daemon;
use crate::error::Problem;
use crate::projects::import::{self, Candidate};
use crate::projects::layout::folder_of;
use crate::store::{AssetRow, LinkRow, NewAsset, NewEvent, ProjectRow, StoreError, asset_queries};

const IMPORTABLE: [AssetKind; 4] = [
    AssetKind::Input,
    AssetKind::Reference,
    AssetKind::Mask,
    AssetKind::Other,
];

/// Most paths one import may name.
const MAX_NAMED_PATHS: usize = 10_000;

pub async fn import(
    daemon: Arc<Daemon>,
    params: protocol::asset::ImportParams,
) -> Result<protocol::asset::ImportReport, Problem> {
    if !IMPORTABLE.contains(&params.kind) {
        return Err(Problem::validation(
            ErrorCode::KindNotImportable,
            format!(
                "assets of kind `{}` are made by the pipeline, not imported",
                params.kind.as_str()
            ),
        )
        .with_hint("import as input, reference, mask or other"));
    }
    if params.paths.is_empty() || params.paths.len() > MAX_NAMED_PATHS {
        return Err(Problem::validation(
            ErrorCode::InvalidPaths,
            format!("name between 1 and {MAX_NAMED_PATHS} files or folders"),
        ));
    }
    let project = find_project(&daemon, &params.project).await?;
    let paths = params.paths;
    let found = tokio::task::spawn_blocking(move || import::expand(&paths))
        .await
        .map_err(|err| Problem::new(ErrorKind::Internal, ErrorCode::Internal, err.to_string()))?;
    let mut report = protocol::asset::ImportReport {
        results: Vec::with_capacity(found.len()),
        imported: 0,
        existing: 0,
        failed: 0,
    };
    for entry in found {
        let (shown, result) = match entry {
            Ok(candidate) => {
                let shown = candidate.shown.display().to_string();
                (
                    shown,
                    import_one(&daemon, &project, candidate, params.kind).await,
                )
            }
            Err((path, err)) => (path.display().to_string(), Err(err)),
        };
        let result = match result {
            Ok((outcome, row)) => {
                match outcome {
                    ImportOutcome::Imported => report.imported += 1,
                    ImportOutcome::Existing => report.existing += 1,
                    ImportOutcome::Failed => report.failed += 1,
                }
                protocol::asset::ImportResult {
                    path: shown,
                    outcome,
                    asset: Some(to_proto(&row)),
                    error: None,
                }
            }
            Err(err) => {
                report.failed += 1;
                protocol::asset::ImportResult {
                    path: shown,
                    outcome: ImportOutcome::Failed,
                    asset: None,
                    error: Some(err.to_data()),
                }
            }
        };
        report.results.push(result);
    }
    tracing::info!(project = %project.slug, imported = report.imported, existing = report.existing, failed = report.failed, "import finished");
    Ok(report)
}

/// Imports one file: read and check it (an image, or for `audio` a recording), then, unless the bytes are already an asset, write the
/// copy and record the row in one transaction (the copy is removed if the row does not commit).
pub(crate) async fn import_one(
    daemon: &Daemon,
    project: &ProjectRow,
    candidate: Candidate,
    kind: AssetKind,
) -> Result<(ImportOutcome, AssetRow), Problem> {
    let max_pixels = daemon.config.limits.max_image_pixels;
    let checked = tokio::task::spawn_blocking(move || match kind {
        AssetKind::Audio => import::read_and_check_audio(&candidate),
        _ => import::read_and_check(&candidate, max_pixels),
    })
    .await
    .map_err(|err| Problem::new(ErrorKind::Internal, ErrorCode::Internal, err.to_string()))??;
    let project_id = project.id.clone();
    let root = project.root.clone();
    let slug = project.slug.clone();
    let at = daemon.clock.now();
    daemon
        .store
        .write(move |tx| {
            if let Some(existing) = asset_queries::find_by_sha(tx, &project_id, &checked.sha256)? {
                return Ok(((ImportOutcome::Existing, existing), Vec::new()));
            }
            let rel_path = import::relative_path(
                folder_of(kind),
                &checked.original_name,
                &checked.sha256,
                checked.info.extension,
            );
            let written = import::write_new(&Path::new(&root).join(&rel_path), &checked.bytes)?;
            let new = NewAsset {
                id: uuid::Uuid::new_v4().to_string(),
                project_id,
                kind,
                rel_path,
                sha256: checked.sha256,
                width: checked.info.width,
                height: checked.info.height,
                format: checked.info.format.to_owned(),
                mime: checked.info.mime.to_owned(),
                bytes: checked.bytes.len() as u64,
                original_name: checked.original_name,
                at: at.clone(),
            };
            let row = asset_queries::insert(tx, &new)?.ok_or_else(|| {
                StoreError::Corrupt("asset row vanished inside its transaction".into())
            })?;
            written.keep();
            let event = NewEvent::of(
                at,
                Some(slug),
                &protocol::events::AssetImported {
                    id: row.id.clone(),
                    path: row.rel_path.clone(),
                    kind: row.kind,
                },
            );
            Ok::<_, Problem>(((ImportOutcome::Imported, row), vec![event]))
        })
        .await
}

pub async fn list(
    daemon: Arc<Daemon>,
    params: protocol::asset::ListParams,
) -> Result<protocol::asset::AssetList, Problem> {
    let project = find_project(&daemon, &params.project).await?;
    let rows = daemon
        .store
        .read(move |conn| asset_queries::list(conn, &project.id, params.kind))
        .await?;
    Ok(protocol::asset::AssetList {
        assets: rows.iter().map(to_proto).collect(),
    })
}

pub async fn get(
    daemon: Arc<Daemon>,
    params: protocol::asset::AssetRef,
) -> Result<protocol::asset::Asset, Problem> {
    let project = find_project(&daemon, &params.project).await?;
    let row = daemon
        .store
        .read(move |conn| asset_queries::get(conn, &project.id, &params.id))
        .await?;
    Ok(to_proto(&row))
}

pub async fn delete(
    daemon: Arc<Daemon>,
    params: protocol::asset::DeleteParams,
) -> Result<protocol::asset::AssetDeleted, Problem> {
    if !params.confirm {
        return Err(super::unconfirmed_delete::<protocol::asset::Delete>(
            &format!("asset `{}`", params.id),
            [
                ("project", params.project.as_str().into()),
                ("id", params.id.as_str().into()),
            ],
        ));
    }
    let project = find_project(&daemon, &params.project).await?;
    let root = project.root.clone();
    let slug = project.slug.clone();
    let at = daemon.clock.now();
    let (row, links_removed) = daemon
        .store
        .write(move |tx| {
            let (row, links) = asset_queries::delete(tx, &project.id, &params.id)?;
            let event = NewEvent::of(
                at,
                Some(slug),
                &protocol::events::AssetDeleted {
                    id: row.id.clone(),
                    path: row.rel_path.clone(),
                },
            );
            Ok::<_, StoreError>(((row, links), vec![event]))
        })
        .await?;
    // The row is gone; the copy in the project goes too (the user's original was never touched).
    let path = Path::new(&root).join(&row.rel_path);
    if let Err(err) = std::fs::remove_file(&path)
        && err.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(path = %path.display(), %err, "could not remove a deleted asset's file");
    }
    Ok(protocol::asset::AssetDeleted {
        id: row.id,
        path: row.rel_path,
        links_removed,
    })
}

pub async fn link(
    daemon: Arc<Daemon>,
    params: protocol::asset::LinkParams,
) -> Result<protocol::asset::AssetLink, Problem> {
    if params.from == params.to {
        return Err(Problem::validation(
            ErrorCode::SelfLink,
            "an asset cannot be linked to itself",
        ));
    }
    let project = find_project(&daemon, &params.project).await?;
    let slug = project.slug.clone();
    let at = daemon.clock.now();
    let row = daemon
        .store
        .write(move |tx| {
            let row = asset_queries::link(
                tx,
                &project.id,
                &params.from,
                &params.to,
                params.relation,
                &at,
            )?;
            let event = NewEvent::of(
                at,
                Some(slug),
                &protocol::events::AssetLinked {
                    from: row.child_id.clone(),
                    to: row.parent_id.clone(),
                    relation: row.relation,
                },
            );
            Ok::<_, StoreError>((row, vec![event]))
        })
        .await?;
    Ok(link_to_proto(&row))
}

pub async fn lineage(
    daemon: Arc<Daemon>,
    params: protocol::asset::AssetRef,
) -> Result<protocol::asset::LineageGraph, Problem> {
    let project = find_project(&daemon, &params.project).await?;
    let root = params.id.clone();
    let (assets, links) = daemon
        .store
        .read(move |conn| asset_queries::lineage(conn, &project.id, &params.id))
        .await?;
    Ok(protocol::asset::LineageGraph {
        root,
        assets: assets.iter().map(to_proto).collect(),
        links: links.iter().map(link_to_proto).collect(),
    })
}

pub fn to_proto(row: &AssetRow) -> protocol::asset::Asset {
    protocol::asset::Asset {
        id: row.id.clone(),
        project: row.project_slug.clone(),
        kind: row.kind,
        path: row.rel_path.clone(),
        sha256: row.sha256.clone(),
        width: row.width,
        height: row.height,
        format: row.format.clone(),
        mime: row.mime.clone(),
        bytes: row.bytes,
        original_name: row.original_name.clone(),
        created_at: row.created_at.clone(),
    }
}

fn link_to_proto(row: &LinkRow) -> protocol::asset::AssetLink {
    protocol::asset::AssetLink {
        from: row.child_id.clone(),
        relation: row.relation,
        to: row.parent_id.clone(),
        created_at: row.created_at.clone(),
    }
}
