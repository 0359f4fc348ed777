//! `export.*` handlers: gather a selection from the store, hash its files and write the package
//! on a blocking thread (`exports::pack`), record it; list, show, verify and delete exports.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use kroma_protocol as protocol;
use protocol::export::ExportPhase;
use protocol::export::{Export, ExportFormat, ExportList, Selection, VerifyReport};
use protocol::{Action, ErrorCode, ErrorKind};

use super::find_project;
use crate::Daemon;
use crate::error::{Hint, Problem};
use crate::exports::{self, pack};
use crate::store::StoreError;
use crate::store::exports::{self as rows, ExportRow};

fn internal(err: impl std::fmt::Display) -> Problem {
    Problem::new(ErrorKind::Internal, ErrorCode::Internal, err.to_string())
}

fn not_found(id: &str) -> Problem {
    Problem::new(
        ErrorKind::NotFound,
        ErrorCode::ExportNotFound,
        format!("no export has the id `{id}`"),
    )
    .with_hint(Hint::new(
        "the export list shows the ids",
        Action::call::<protocol::export::List>([], &[]),
    ))
}

fn to_proto(row: &ExportRow) -> Result<Export, Problem> {
    Ok(Export {
        id: row.id.clone(),
        project: row.project_slug.clone(),
        selection: serde_json::from_str(&row.selection_json)
            .map_err(|err| StoreError::Corrupt(format!("export {}: {err}", row.id)))?,
        format: if row.format == ExportFormat::Folder.as_str() {
            ExportFormat::Folder
        } else {
            ExportFormat::TarGz
        },
        path: Path::new(&row.project_root)
            .join(&row.rel_path)
            .display()
            .to_string(),
        files: row.files,
        bytes: row.bytes,
        sha256: row.sha256.clone(),
        created_at: row.created_at.clone(),
    })
}

pub async fn create(
    daemon: Arc<Daemon>,
    params: protocol::export::CreateParams,
) -> Result<Export, Problem> {
    let project = find_project(&daemon, &params.project).await?;
    if let Selection::Assets { assets } = &params.selection
        && assets.is_empty()
    {
        return Err(Problem::validation(
            ErrorCode::EmptyExport,
            "name at least one asset to export",
        ));
    }
    let items = {
        let (project, selection) = (project.clone(), params.selection.clone());
        daemon
            .store
            .read(move |conn| exports::gather(conn, &project, &selection))
            .await?
    };
    if items.is_empty() {
        return Err(Problem::validation(
            ErrorCode::EmptyExport,
            format!(
                "the selection holds no file in project `{}` (nothing approved, no winner, or no asset)",
                project.slug
            ),
        )
        .with_hint("approve baselines (run.approve), or export a run or the whole project"));
    }
    let id = uuid::Uuid::new_v4().to_string();
    let name = exports::name(&project.slug, &params.selection, &id);
    let rel_path = match params.format {
        ExportFormat::TarGz => format!("exports/{name}.tar.gz"),
        ExportFormat::Folder => format!("exports/{name}"),
    };
    let target = Path::new(&project.root).join(&rel_path);
    let stop = daemon.shutdown.child_token();
    let _stop_when_dropped = stop.clone().drop_guard();
    let (format, selection) = (params.format, params.selection.clone());
    let runtime = tokio::runtime::Handle::current();
    let worker = daemon.clone();
    let packed = {
        let project = project.clone();
        tokio::task::spawn_blocking(move || {
            let bytes_total = items
                .iter()
                .map(|item| std::fs::metadata(&item.source).map(|m| m.len()).unwrap_or(0))
                .sum::<u64>();
            let mut progress = Progress {
                daemon: &worker,
                runtime: &runtime,
                project: &project.slug,
                target: &target,
                total: items.len() as u32,
                bytes_total,
                last: None,
            };
            let mut hashed = Vec::with_capacity(items.len());
            let mut entries = Vec::with_capacity(items.len());
            let mut bytes_done = 0u64;
            for item in &items {
                crate::postprocess::budget::check(&stop)?;
                let (size, sha256) = pack::hash_file(&item.source).map_err(|err| {
                    Problem::new(
                        ErrorKind::Infra,
                        ErrorCode::IoError,
                        format!("reading {}: {err}", item.source.display()),
                    )
                    .with_hint("a file of the selection is missing or unreadable; check the project folder")
                })?;
                let provenance = crate::files::png::read_provenance_of(&item.source);
                entries.push(pack::Entry {
                    source: item.source.clone(),
                    path: item.path.clone(),
                    size,
                    sha256: sha256.clone(),
                });
                hashed.push((size, sha256, provenance));
                bytes_done += size;
                progress.report(ExportPhase::Hashing, hashed.len(), bytes_done, false);
            }
            progress.report(ExportPhase::Hashing, hashed.len(), bytes_done, true);
            let manifest = exports::manifest(&project, &selection, &items, &hashed);
            let mut json = serde_json::to_vec_pretty(&manifest).map_err(internal)?;
            json.push(b'\n');
            let sizes: Vec<u64> = entries.iter().map(|entry| entry.size).collect();
            let mut packed = |done: usize| {
                let bytes = sizes[..done].iter().sum();
                progress.report(ExportPhase::Packing, done, bytes, done == sizes.len());
            };
            let written = match format {
                ExportFormat::TarGz => pack::write_tar_gz(&target, &json, &entries, &mut packed),
                ExportFormat::Folder => pack::write_folder(&target, &json, &entries, &mut packed),
            };
            written.map_err(|err| {
                Problem::new(
                    ErrorKind::Infra,
                    ErrorCode::IoError,
                    format!("writing {}: {err}", target.display()),
                )
                .with_hint("check that the project folder is writable and the disk is not full")
            })?;
            let sha256 = match format {
                ExportFormat::TarGz => pack::hash_file(&target).map_err(internal)?.1,
                ExportFormat::Folder => crate::runs::planner::hex_sha256(&json),
            };
            let bytes = hashed.iter().map(|(size, ..)| size).sum::<u64>();
            Ok::<_, Problem>((manifest.files.len() as u32, bytes, sha256, target))
        })
        .await
        .map_err(internal)??
    };
    let (files, bytes, sha256, target) = packed;
    let row = ExportRow {
        id: id.clone(),
        project_id: project.id.clone(),
        project_slug: project.slug.clone(),
        project_root: project.root.clone(),
        selection_json: serde_json::to_string(&params.selection).map_err(internal)?,
        format: params.format.as_str().to_owned(),
        rel_path,
        files,
        bytes,
        sha256,
        created_at: daemon.clock.now(),
    };
    let stored = row.clone();
    let inserted = daemon
        .store
        .write(move |tx| rows::insert(tx, &stored).map(|()| ((), Vec::new())))
        .await;
    if let Err(err) = inserted {
        remove_export(&target);
        return Err(err.into());
    }
    to_proto(&row)
}

/// `export.progress` events from the blocking packer: at most four a second, and the last of
/// each phase.
struct Progress<'a> {
    daemon: &'a Daemon,
    runtime: &'a tokio::runtime::Handle,
    project: &'a str,
    target: &'a Path,
    total: u32,
    bytes_total: u64,
    last: Option<std::time::Instant>,
}

impl Progress<'_> {
    fn report(&mut self, phase: ExportPhase, done: usize, bytes_done: u64, last: bool) {
        let now = std::time::Instant::now();
        if !last
            && self
                .last
                .is_some_and(|at| now.duration_since(at) < std::time::Duration::from_millis(250))
        {
            return;
        }
        self.last = Some(now);
        let event = crate::store::NewEvent::of(
            self.daemon.clock.now(),
            Some(self.project.to_owned()),
            &protocol::export::ExportProgress {
                project: self.project.to_owned(),
                target: self.target.display().to_string(),
                phase,
                done: done as u32,
                total: self.total,
                bytes_done,
                bytes_total: self.bytes_total,
            },
        );
        if let Err(err) = self
            .runtime
            .block_on(self.daemon.store.append_events(vec![event]))
        {
            tracing::warn!(%err, "could not record an export.progress event");
        }
    }
}

/// Removes an export's file or folder (only a `.tar.gz` file or a folder in `exports/`).
fn remove_export(target: &Path) {
    let removed = if target.is_dir() {
        std::fs::remove_dir_all(target)
    } else {
        std::fs::remove_file(target)
    };
    if let Err(err) = removed
        && err.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(path = %target.display(), %err, "could not remove an export");
    }
}

pub async fn list(
    daemon: Arc<Daemon>,
    params: protocol::export::ListParams,
) -> Result<ExportList, Problem> {
    let project = match &params.project {
        Some(slug) => Some(find_project(&daemon, slug).await?.id),
        None => None,
    };
    let rows = daemon
        .store
        .read(move |conn| rows::list(conn, project.as_deref()))
        .await?;
    Ok(ExportList {
        exports: rows.iter().map(to_proto).collect::<Result<_, _>>()?,
    })
}

async fn load(daemon: &Daemon, id: &str) -> Result<ExportRow, Problem> {
    let lookup = id.to_owned();
    daemon
        .store
        .read(move |conn| rows::get(conn, &lookup))
        .await?
        .ok_or_else(|| not_found(id))
}

pub async fn get(
    daemon: Arc<Daemon>,
    params: protocol::export::ExportRef,
) -> Result<Export, Problem> {
    to_proto(&load(&daemon, &params.id).await?)
}

pub async fn verify(
    daemon: Arc<Daemon>,
    params: protocol::export::ExportRef,
) -> Result<VerifyReport, Problem> {
    let row = load(&daemon, &params.id).await?;
    let path = PathBuf::from(&row.project_root).join(&row.rel_path);
    let read = tokio::task::spawn_blocking(move || pack::read_export(&path))
        .await
        .map_err(internal)?;
    let (manifest, found) = read.map_err(|why| {
        Problem::validation(ErrorCode::BadManifest, format!("export {}: {why}", row.id))
    })?;
    Ok(protocol::export::compare(&manifest, &found))
}

pub async fn delete(
    daemon: Arc<Daemon>,
    params: protocol::export::DeleteParams,
) -> Result<Export, Problem> {
    let row = load(&daemon, &params.id).await?;
    if !params.confirm {
        return Err(super::unconfirmed_delete::<protocol::export::Delete>(
            &format!("export `{}`", row.id),
            [("id", row.id.as_str().into())],
        ));
    }
    let id = row.id.clone();
    let deleted = daemon
        .store
        .write(move |tx| rows::delete(tx, &id).map(|deleted| (deleted, Vec::new())))
        .await?;
    if !deleted {
        return Err(not_found(&row.id));
    }
    let target = PathBuf::from(&row.project_root).join(&row.rel_path);
    if row.rel_path.starts_with("exports/") {
        tokio::task::spawn_blocking(move || remove_export(&target))
            .await
            .map_err(internal)?;
    }
    to_proto(&row)
}
