//! `postprocess.*` handlers: one-off local steps on files, no project needed. Files are processed
//! in parallel on the local-work slots; one file's failure is reported and the rest go on.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use kroma_protocol as protocol;
use protocol::ErrorKind;
use protocol::postprocess::{FileResult, StepReport};

use crate::error::ApiError;
use crate::postprocess::color::{self, ColorProfile};
use crate::runs::output::{self, Provenance};
use crate::store::NewEvent;
use crate::{Daemon, clock};

/// Image files a folder contributes.
const IMAGE_EXTENSIONS: [&str; 4] = ["png", "jpg", "jpeg", "webp"];

/// Most files one call may name or find.
const MAX_FILES: usize = 10_000;

pub async fn color(
    daemon: Arc<Daemon>,
    params: protocol::postprocess::ColorParams,
) -> Result<StepReport, ApiError> {
    let (resolved, _) = super::runs::resolve_settings(&daemon, None, None).await?;
    let profile = match resolved.settings.color_profiles.get(&params.profile) {
        Some(profile) => profile.clone(),
        None => color::builtin().remove(&params.profile).ok_or_else(|| {
            let mut known: Vec<String> = color::builtin().into_keys().collect();
            known.extend(resolved.settings.color_profiles.keys().cloned());
            ApiError::validation(
                "unknown_profile",
                format!("there is no colour profile `{}`", params.profile),
            )
            .with_hint(format!(
                "known: {}; add your own under [color_profiles.<name>] in the settings",
                known.join(", ")
            ))
        })?,
    };
    let output_dir = params
        .output_dir
        .as_deref()
        .map(|dir| {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                Ok(dir)
            } else {
                Err(ApiError::validation(
                    "invalid_output_dir",
                    format!("output_dir `{}` must be an absolute path", dir.display()),
                ))
            }
        })
        .transpose()?;
    let files = find_files(params.paths, params.profile.clone(), output_dir).await?;
    let settings = serde_json::json!({ "profile": params.profile, "values": profile });
    let step = Step {
        name: "color",
        settings: settings.to_string(),
        profile,
    };
    run_step(daemon, files, Arc::new(step)).await
}

/// One file to process and where its output goes.
struct Work {
    input: PathBuf,
    target: PathBuf,
}

/// The files named by `paths` and their outputs. A file named directly is written next to itself
/// as `<stem>_<suffix>.png` (or into `output_dir`); a folder's image files are written below
/// `<folder>_<suffix>/` (or `output_dir`) mirroring their paths, so outputs never land among the
/// sources and a second run finds the same inputs.
async fn find_files(
    paths: Vec<String>,
    suffix: String,
    output_dir: Option<PathBuf>,
) -> Result<Vec<Result<Work, (String, ApiError)>>, ApiError> {
    if paths.is_empty() || paths.len() > MAX_FILES {
        return Err(ApiError::validation(
            "invalid_paths",
            format!("name between 1 and {MAX_FILES} files or folders"),
        ));
    }
    let found = tokio::task::spawn_blocking(move || {
        let mut found = Vec::new();
        for named in &paths {
            let root = PathBuf::from(named);
            for entry in crate::import::expand(std::slice::from_ref(named)) {
                let candidate = match entry {
                    Ok(candidate) => candidate,
                    Err((path, err)) => {
                        found.push(Err((path.display().to_string(), err)));
                        continue;
                    }
                };
                let stem = candidate
                    .shown
                    .file_stem()
                    .map(|stem| stem.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "image".to_owned());
                let target = if candidate.shown == root {
                    let folder = output_dir
                        .clone()
                        .unwrap_or_else(|| root.parent().map(Path::to_owned).unwrap_or_default());
                    folder.join(format!("{stem}_{suffix}.png"))
                } else {
                    if !crate::import::has_extension(&candidate.shown, &IMAGE_EXTENSIONS) {
                        continue;
                    }
                    let rel = candidate
                        .shown
                        .strip_prefix(&root)
                        .unwrap_or(&candidate.shown);
                    let base = output_dir.clone().unwrap_or_else(|| {
                        let name = root
                            .file_name()
                            .map(|name| name.to_string_lossy().into_owned())
                            .unwrap_or_default();
                        root.with_file_name(format!("{name}_{suffix}"))
                    });
                    base.join(rel).with_extension("png")
                };
                found.push(Ok(Work {
                    input: candidate.real,
                    target,
                }));
            }
        }
        found
    })
    .await
    .map_err(|err| ApiError::new(ErrorKind::Internal, "internal", err.to_string()))?;
    if found.len() > MAX_FILES {
        return Err(ApiError::validation(
            "too_many_files",
            format!(
                "the folders hold {} files; at most {MAX_FILES} per call",
                found.len()
            ),
        ));
    }
    Ok(found)
}

struct Step {
    name: &'static str,
    /// JSON, recorded in the output's `kroma:settings` chunk.
    settings: String,
    profile: ColorProfile,
}

async fn run_step(
    daemon: Arc<Daemon>,
    files: Vec<Result<Work, (String, ApiError)>>,
    step: Arc<Step>,
) -> Result<StepReport, ApiError> {
    let total = files.len();
    let mut tasks = tokio::task::JoinSet::new();
    let mut results: Vec<Option<FileResult>> = vec![None; total];
    for (index, file) in files.into_iter().enumerate() {
        match file {
            Err((input, err)) => {
                results[index] = Some(FileResult {
                    input,
                    output: None,
                    error: Some(err.to_data()),
                });
            }
            Ok(work) => {
                let step = step.clone();
                let local = daemon.runner.local_slots();
                tasks.spawn(async move {
                    let _permit = local.acquire_owned().await;
                    let input = work.input.display().to_string();
                    let outcome = tokio::task::spawn_blocking(move || process_file(&work, &step))
                        .await
                        .map_err(|err| {
                            ApiError::new(ErrorKind::Internal, "internal", err.to_string())
                        })
                        .and_then(|result| result);
                    (index, input, outcome)
                });
            }
        }
    }
    let mut done = 0u32;
    let mut failed = results.iter().flatten().count() as u32;
    while let Some(joined) = tasks.join_next().await {
        let (index, input, outcome) = joined
            .map_err(|err| ApiError::new(ErrorKind::Internal, "internal", err.to_string()))?;
        let result = match outcome {
            Ok(output) => {
                done += 1;
                FileResult {
                    input,
                    output: Some(output.display().to_string()),
                    error: None,
                }
            }
            Err(err) => {
                failed += 1;
                FileResult {
                    input,
                    output: None,
                    error: Some(err.to_data()),
                }
            }
        };
        let event = NewEvent {
            at: clock::now(),
            kind: protocol::events::kind::POSTPROCESS_FILE,
            project: None,
            data: serde_json::json!({
                "step": step.name,
                "input": result.input,
                "output": result.output,
                "error": result.error,
                "done": done + failed,
                "total": total,
            }),
        };
        if let Err(err) = daemon.store.append_events(vec![event]).await {
            tracing::warn!(%err, "could not record a postprocess.file event");
        }
        results[index] = Some(result);
    }
    Ok(StepReport {
        results: results.into_iter().flatten().collect(),
        done,
        failed,
    })
}

/// Reads, checks, transforms and writes one file; answers the output path.
fn process_file(work: &Work, step: &Step) -> Result<PathBuf, ApiError> {
    let path = &work.input;
    let bytes = std::fs::read(path).map_err(|err| {
        ApiError::new(
            ErrorKind::Infra,
            "io_error",
            format!("reading {}: {err}", path.display()),
        )
    })?;
    let image = crate::image_check::decode_for_processing(&bytes)
        .map_err(|problem| {
            ApiError::validation(problem.code(), format!("{}: {problem}", path.display()))
        })?
        .to_rgba8();
    let out = color::apply(&image, &step.profile);
    let mut png = Vec::new();
    image::DynamicImage::ImageRgba8(out)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|err| {
            ApiError::new(
                ErrorKind::Internal,
                "internal",
                format!("encoding PNG: {err}"),
            )
        })?;
    let provenance = Provenance::from([
        ("source_sha256", crate::planner::hex_sha256(&bytes)),
        ("source", path.display().to_string()),
        ("step", step.name.to_owned()),
        ("settings", step.settings.clone()),
    ]);
    let png = output::with_provenance(png, &provenance)
        .map_err(|err| ApiError::new(ErrorKind::Internal, "internal", err))?;
    let target = &work.target;
    output::write_new(target, &png).map_err(|err| {
        if err.kind() == std::io::ErrorKind::AlreadyExists {
            ApiError::new(
                ErrorKind::Conflict,
                "output_exists",
                format!("{} exists; kroma never overwrites a file", target.display()),
            )
            .with_hint("move it away, or pass another output folder (-o)")
        } else {
            ApiError::new(
                ErrorKind::Infra,
                "io_error",
                format!("writing {}: {err}", target.display()),
            )
            .with_hint("check that the folder exists and is writable")
        }
    })?;
    Ok(target.clone())
}
