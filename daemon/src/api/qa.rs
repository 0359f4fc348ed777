//! `qa.check`, `qa.archive_bad` and `file.inspect` handlers: the QA guard on files, folders, an
//! asset or a run's outputs, moving bad files to a project's archive, and what Kroma wrote into a
//! file. Files are checked in parallel on the local-work slots; a file that cannot be read is a
//! verdict, never a failed call.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use kroma_protocol as protocol;
use protocol::qa::{
    ArchiveBadParams, ArchiveReport, CheckParams, FileVerdict, InspectParams, Inspection, Moved,
    QaSettings, Reason, Report,
};
use protocol::{ErrorCode, ErrorKind};
use tokio_util::sync::CancellationToken;

use super::find_project;
use crate::Daemon;
use crate::error::Problem;
use crate::files::write;
use crate::projects::import;
use crate::review::qa;
use crate::runs::review::{Limits, judge_file};
use crate::store::runs as rows;
use crate::store::{self, ProjectRow, StoreError, asset_queries};

/// Most files one call may name or find.
const MAX_FILES: usize = 10_000;

pub async fn check(daemon: Arc<Daemon>, params: CheckParams) -> Result<Report, Problem> {
    let named = usize::from(!params.paths.is_empty())
        + usize::from(params.asset.is_some())
        + usize::from(params.run.is_some());
    if named != 1 {
        return Err(Problem::validation(
            ErrorCode::InvalidPaths,
            "name exactly one of: paths, an asset (with its project), or a run",
        ));
    }
    let (settings, inputs, files) = if let Some(run) = &params.run {
        run_files(&daemon, run).await?
    } else {
        let project = match &params.project {
            Some(slug) => Some(find_project(&daemon, slug).await?),
            None => None,
        };
        let root = project.as_ref().map(|p| PathBuf::from(&p.root));
        let (resolved, _) = crate::runs::inputs::resolve_settings(&daemon, root, None).await?;
        let settings = resolved.settings.qa.guard();
        if let Some(asset) = &params.asset {
            let Some(project) = project else {
                return Err(Problem::validation(
                    ErrorCode::InvalidPaths,
                    "an asset is looked up in a project: name the project too",
                ));
            };
            let path = asset_path(&daemon, &project, asset).await?;
            let shown = path.display().to_string();
            (settings, vec![shown], vec![Ok(path)])
        } else {
            let files = find_files(params.paths.clone()).await?;
            (settings, params.paths.clone(), files)
        }
    };
    let settings = with_overrides(settings, &params)?;
    let files = judge_all(&daemon, files, settings).await?;
    Ok(Report {
        inputs,
        settings,
        summary: qa::summary(&files),
        files,
    })
}

/// The call's own values over the settings'.
fn with_overrides(mut settings: QaSettings, params: &CheckParams) -> Result<QaSettings, Problem> {
    if let Some(max) = params.max_chroma_delta {
        if !(max.is_finite() && max >= 0.0) {
            return Err(Problem::validation(
                ErrorCode::InvalidSettings,
                format!("max_chroma_delta {max} must be a number ≥ 0"),
            ));
        }
        settings.max_chroma_delta = max;
    }
    if let Some(enforce) = params.enforce_grayscale {
        settings.enforce_grayscale = enforce;
    }
    if let Some(fail) = params.fail_on_chroma_exceed {
        settings.fail_on_chroma_exceed = fail;
    }
    Ok(settings)
}

/// A run's settings and the final output of each succeeded candidate whose chain is done.
async fn run_files(
    daemon: &Daemon,
    run: &str,
) -> Result<
    (
        QaSettings,
        Vec<String>,
        Vec<Result<PathBuf, Box<FileVerdict>>>,
    ),
    Problem,
> {
    let id = uuid::Uuid::parse_str(run)
        .map_err(|_| {
            Problem::validation(
                ErrorCode::InvalidRun,
                format!("`{run}` is not a run id (a UUID)"),
            )
        })?
        .to_string();
    let (run, candidates) = daemon
        .store
        .read(move |conn| {
            let run = rows::get_run(conn, &id)?;
            let candidates = rows::candidates(conn, &id)?;
            Ok::<_, StoreError>((run, candidates))
        })
        .await?;
    let plan = crate::runs::plan_of(&run)?;
    let settings: crate::runs::settings::Settings = serde_json::from_value(plan.settings)
        .map_err(|err| StoreError::Corrupt(format!("settings of run {}: {err}", run.id)))?;
    let root = Path::new(&run.project_root);
    let files: Vec<Result<PathBuf, Box<FileVerdict>>> = candidates
        .iter()
        .filter(|c| c.status == protocol::run::CandidateStatus::Succeeded.as_str())
        .filter(|c| c.postprocess != "pending" && c.postprocess != "failed")
        .filter_map(|c| c.final_path.as_ref().or(c.output_path.as_ref()))
        .map(|rel| Ok(root.join(rel)))
        .collect();
    Ok((settings.qa.guard(), vec![run.record_path.clone()], files))
}

/// The absolute path of asset `id` of `project`.
async fn asset_path(daemon: &Daemon, project: &ProjectRow, id: &str) -> Result<PathBuf, Problem> {
    let (project_id, asset) = (project.id.clone(), id.to_owned());
    let row = daemon
        .store
        .read(move |conn| asset_queries::get(conn, &project_id, &asset))
        .await?;
    Ok(Path::new(&project.root).join(row.rel_path))
}

/// The image files of the named paths, in order (each folder sorted): a missing path is an
/// `input_not_found` verdict, a folder without images a `no_images_found` one, any other
/// problem an `image_read_failed` one.
async fn find_files(paths: Vec<String>) -> Result<Vec<Result<PathBuf, Box<FileVerdict>>>, Problem> {
    if paths.len() > MAX_FILES {
        return Err(Problem::validation(
            ErrorCode::InvalidPaths,
            format!("name at most {MAX_FILES} files or folders"),
        ));
    }
    let found = tokio::task::spawn_blocking(move || {
        let mut found = Vec::new();
        for named in &paths {
            let path = Path::new(named);
            if path.is_absolute() && std::fs::symlink_metadata(path).is_err() {
                found.push(Err(Box::new(qa::unjudged(
                    named.clone(),
                    Reason::InputNotFound,
                    None,
                ))));
                continue;
            }
            let before = found.len();
            for entry in import::expand(std::slice::from_ref(named)) {
                match entry {
                    Ok(candidate) => {
                        let named_directly = candidate.shown == path;
                        if named_directly
                            || import::has_extension(
                                &candidate.shown,
                                &crate::files::images::EXTENSIONS,
                            )
                        {
                            found.push(Ok(candidate.real));
                        }
                    }
                    Err((shown, err)) => found.push(Err(Box::new(qa::unjudged(
                        shown.display().to_string(),
                        Reason::ImageReadFailed,
                        Some(err.to_data()),
                    )))),
                }
            }
            if found.len() == before {
                found.push(Err(Box::new(qa::unjudged(
                    named.clone(),
                    Reason::NoImagesFound,
                    None,
                ))));
            }
        }
        found
    })
    .await
    .map_err(|err| Problem::new(ErrorKind::Internal, ErrorCode::Internal, err.to_string()))?;
    if found.len() > MAX_FILES {
        return Err(Problem::validation(
            ErrorCode::TooManyFiles,
            format!(
                "the folders hold {} files; at most {MAX_FILES} per call",
                found.len()
            ),
        ));
    }
    Ok(found)
}

/// Judges every file on the local-work slots, answering the verdicts in the files' order. Stops
/// when kromad stops or the caller leaves.
async fn judge_all(
    daemon: &Arc<Daemon>,
    files: Vec<Result<PathBuf, Box<FileVerdict>>>,
    settings: QaSettings,
) -> Result<Vec<FileVerdict>, Problem> {
    let stop = daemon.shutdown.child_token();
    let _stop_when_dropped = stop.clone().drop_guard();
    let mut verdicts: Vec<Option<FileVerdict>> = vec![None; files.len()];
    let mut tasks = tokio::task::JoinSet::new();
    for (index, file) in files.into_iter().enumerate() {
        match file {
            Err(verdict) => verdicts[index] = Some(*verdict),
            Ok(path) => {
                let daemon = daemon.clone();
                let stop = stop.clone();
                let local = daemon.runner.local_slots();
                tasks.spawn(async move {
                    let _permit = local.acquire_owned().await;
                    let judged = tokio::task::spawn_blocking(move || {
                        judge_one(&daemon, &path, &settings, &stop)
                    })
                    .await
                    .map_err(|err| {
                        Problem::new(ErrorKind::Internal, ErrorCode::Internal, err.to_string())
                    })
                    .and_then(|judged| judged);
                    (index, judged)
                });
            }
        }
    }
    while let Some(joined) = tasks.join_next().await {
        let (index, judged) = joined.map_err(|err| {
            Problem::new(ErrorKind::Internal, ErrorCode::Internal, err.to_string())
        })?;
        verdicts[index] = Some(judged?);
    }
    Ok(verdicts.into_iter().flatten().collect())
}

fn judge_one(
    daemon: &Daemon,
    path: &Path,
    settings: &QaSettings,
    stop: &CancellationToken,
) -> Result<FileVerdict, Problem> {
    let limits = Limits {
        memory: &daemon.memory,
        max_pixels: daemon.max_image_pixels,
        stop,
    };
    judge_file(path, settings, &limits).map(|(verdict, _)| verdict)
}

pub async fn archive_bad(
    daemon: Arc<Daemon>,
    params: ArchiveBadParams,
) -> Result<ArchiveReport, Problem> {
    if params.paths.is_empty() {
        return Err(Problem::validation(
            ErrorCode::InvalidPaths,
            "name the files or folders to move",
        ));
    }
    let into = match &params.into {
        Some(folder) => {
            let folder = PathBuf::from(folder);
            if !folder.is_absolute() {
                return Err(Problem::validation(
                    ErrorCode::InvalidOutputDir,
                    format!("{} is not an absolute path", folder.display()),
                ));
            }
            super::postprocess::check_outside_data_dir(&daemon.real_data_dir, &folder)?;
            Some(folder)
        }
        None => None,
    };
    let projects = daemon.store.read(store::list_projects).await?;
    let roots: Vec<(ProjectRow, PathBuf)> = projects
        .into_iter()
        .map(|project| {
            let real = crate::projects::root::resolve(Path::new(&project.root))
                .unwrap_or_else(|_| PathBuf::from(&project.root));
            (project, real)
        })
        .collect();
    let files = find_files(params.paths.clone()).await?;
    let stamp = daemon.clock.now();
    let mut report = ArchiveReport {
        files: Vec::new(),
        moved: 0,
        failed: 0,
    };
    for file in files {
        let moved = match file {
            Err(verdict) => Moved {
                from: verdict.file.clone(),
                to: None,
                error: Some(verdict.error.clone().unwrap_or_else(|| {
                    Problem::validation(
                        ErrorCode::NoImages,
                        format!(
                            "{}: {}",
                            verdict.file,
                            verdict
                                .hard_fail_reasons
                                .first()
                                .map_or("not an image file", |reason| reason.as_str())
                        ),
                    )
                    .to_data()
                })),
            },
            Ok(path) => match archive_one(&daemon, &roots, into.as_deref(), &path, &stamp).await {
                Ok(to) => Moved {
                    from: path.display().to_string(),
                    to: Some(to.display().to_string()),
                    error: None,
                },
                Err(err) => Moved {
                    from: path.display().to_string(),
                    to: None,
                    error: Some(err.to_data()),
                },
            },
        };
        if moved.error.is_some() {
            report.failed += 1;
        } else {
            report.moved += 1;
        }
        report.files.push(moved);
    }
    Ok(report)
}

/// Moves one file into `into` or its project's `archive/bad/`; the project's rows follow it.
async fn archive_one(
    daemon: &Daemon,
    roots: &[(ProjectRow, PathBuf)],
    into: Option<&Path>,
    path: &Path,
    stamp: &str,
) -> Result<PathBuf, Problem> {
    let owner = roots.iter().find(|(_, root)| path.starts_with(root));
    // Project roots may lie in the data dir (the default); nothing else there is moved.
    if owner.is_none() && path.starts_with(&daemon.real_data_dir) {
        return Err(Problem::validation(
            ErrorCode::PathEscape,
            format!("{} is inside kromad's data dir", path.display()),
        )
        .with_hint("kromad's own files are never moved"));
    }
    if !import::has_extension(path, &crate::files::images::EXTENSIONS) {
        return Err(Problem::validation(
            ErrorCode::NotAnImage,
            format!("{} is not a PNG, JPEG or WebP file", path.display()),
        )
        .with_hint("only image files are moved to the archive"));
    }
    let folder = match (into, owner) {
        (Some(folder), _) => folder.to_owned(),
        (None, Some((_, root))) => root.join(write::BAD_FOLDER),
        (None, None) => {
            return Err(Problem::validation(
                ErrorCode::NoArchive,
                format!("{} is not inside a project's folder", path.display()),
            )
            .with_hint("name a folder to move it into (into)"));
        }
    };
    let (source, target_folder, why, stamp) = (
        path.to_owned(),
        folder.clone(),
        "bad".to_owned(),
        stamp.to_owned(),
    );
    let to =
        tokio::task::spawn_blocking(move || write::archive(&target_folder, &source, &why, &stamp))
            .await
            .map_err(|err| Problem::new(ErrorKind::Internal, ErrorCode::Internal, err.to_string()))?
            .map_err(|err| {
                Problem::new(
                    ErrorKind::Infra,
                    ErrorCode::IoError,
                    format!("moving {} to {}: {err}", path.display(), folder.display()),
                )
                .with_hint("check that both folders are writable")
            })?;
    if let Some((project, root)) = owner {
        let rel = |p: &Path| {
            p.strip_prefix(root)
                .ok()
                .map(|rel| rel.to_string_lossy().replace('\\', "/"))
        };
        if let (Some(from), Some(to_rel)) = (rel(path), rel(&to)) {
            let project_id = project.id.clone();
            let followed = daemon
                .store
                .write(move |tx| {
                    rows::follow_move(tx, &project_id, &from, &to_rel).map(|()| ((), Vec::new()))
                })
                .await;
            if let Err(err) = followed {
                // The rows could not follow: the file goes back where they say it is.
                if let Err(back) = std::fs::rename(&to, path) {
                    tracing::error!(from = %to.display(), to = %path.display(), %back, "could not move a file back after its rows failed to follow");
                }
                return Err(err.into());
            }
        }
    }
    Ok(to)
}

pub async fn inspect(daemon: Arc<Daemon>, params: InspectParams) -> Result<Inspection, Problem> {
    let path = PathBuf::from(&params.path);
    if !path.is_absolute() {
        return Err(Problem::validation(
            ErrorCode::RelativePath,
            format!("{} is not an absolute path", path.display()),
        )
        .with_hint("kromad does not share your working directory: pass an absolute path"));
    }
    let projects = daemon.store.read(store::list_projects).await?;
    let real = crate::projects::root::resolve(&path).unwrap_or_else(|_| path.clone());
    let owner = match &params.project {
        Some(slug) => Some(find_project(&daemon, slug).await?),
        None => projects.into_iter().find(|project| {
            crate::projects::root::resolve(Path::new(&project.root))
                .is_ok_and(|root| real.starts_with(root))
        }),
    };
    let root = owner.as_ref().map(|p| PathBuf::from(&p.root));
    let (resolved, _) = crate::runs::inputs::resolve_settings(&daemon, root, None).await?;
    let settings = resolved.settings.qa.guard();
    let bytes = {
        let path = path.clone();
        tokio::task::spawn_blocking(move || crate::postprocess::budget::read_image_file(&path))
            .await
            .map_err(|err| {
                Problem::new(ErrorKind::Internal, ErrorCode::Internal, err.to_string())
            })??
    };
    let sha256 = crate::runs::planner::hex_sha256(&bytes);
    let info = crate::files::images::size_for_processing(&bytes, u64::MAX).ok();
    let format = image::guess_format(&bytes)
        .ok()
        .map(|format| format!("{format:?}").to_ascii_lowercase());
    let provenance = crate::files::png::read_provenance(&bytes);
    let asset = match &owner {
        Some(project) => {
            let (project_id, sha) = (project.id.clone(), sha256.clone());
            daemon
                .store
                .read(move |conn| asset_queries::find_by_sha(conn, &project_id, &sha))
                .await?
                .map(|row| protocol::qa::InspectedAsset {
                    project: row.project_slug,
                    id: row.id,
                    kind: row.kind.as_str().to_owned(),
                })
        }
        None => None,
    };
    let verdicts = judge_all(&daemon, vec![Ok(path.clone())], settings).await?;
    let qa = verdicts
        .into_iter()
        .next()
        .ok_or_else(|| Problem::new(ErrorKind::Internal, ErrorCode::Internal, "no verdict"))?;
    Ok(Inspection {
        path: path.display().to_string(),
        sha256,
        bytes: bytes.len() as u64,
        format,
        width: info.map(|(width, _)| width),
        height: info.map(|(_, height)| height),
        provenance,
        asset,
        qa,
        settings,
    })
}
