//! `postprocess.*` handlers: one-off local steps on files, no project needed. Files are processed
//! in parallel on the local-work slots; one file's failure is reported and the rest go on.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use kroma_protocol as protocol;
use protocol::postprocess::{FileResult, StepReport};
use protocol::watch::LocalStep;
use protocol::{ErrorCode, ErrorKind};
use tokio_util::sync::CancellationToken;

use crate::Daemon;
use crate::error::Problem;
use crate::files::png::Provenance;
use crate::files::write;
use crate::postprocess::budget;
use crate::postprocess::chain::{self, Step};
use crate::postprocess::onnx::Model;
use crate::postprocess::{bg_remove, upscale};
use crate::store::NewEvent;

/// Most files one call may name or find.
const MAX_FILES: usize = 10_000;

pub async fn color(
    daemon: Arc<Daemon>,
    params: protocol::postprocess::ColorParams,
) -> Result<StepReport, Problem> {
    let step = prepare(
        &daemon,
        &LocalStep::Color {
            profile: params.profile.clone(),
        },
    )
    .await?;
    let output_dir = output_dir(&daemon, params.output_dir.as_deref())?;
    let files = find_files(&daemon, params.paths, params.profile, output_dir).await?;
    run_step(daemon, files, Arc::new(step)).await
}

pub async fn bg_remove(
    daemon: Arc<Daemon>,
    params: protocol::postprocess::BgRemoveParams,
) -> Result<StepReport, Problem> {
    let suffix = if params.mask_only { "mask" } else { "nobg" };
    let step = prepare(
        &daemon,
        &LocalStep::BgRemove {
            model: params.model,
            mask_only: params.mask_only,
            matting: params.matting,
            background: params.background,
        },
    )
    .await?;
    let output_dir = output_dir(&daemon, params.output_dir.as_deref())?;
    let files = find_files(&daemon, params.paths, suffix.to_owned(), output_dir).await?;
    run_step(daemon, files, Arc::new(step)).await
}

pub async fn upscale(
    daemon: Arc<Daemon>,
    params: protocol::postprocess::UpscaleParams,
) -> Result<StepReport, Problem> {
    let scale = params.scale.unwrap_or(4);
    let step = prepare(
        &daemon,
        &LocalStep::Upscale {
            scale: params.scale,
            model: params.model,
            tile: params.tile,
        },
    )
    .await?;
    let output_dir = output_dir(&daemon, params.output_dir.as_deref())?;
    let files = find_files(&daemon, params.paths, format!("x{scale}"), output_dir).await?;
    run_step(daemon, files, Arc::new(step)).await
}

/// A step as a one-off call or a drop-folder chain names it, checked, with its model loaded.
pub(crate) async fn prepare(daemon: &Daemon, step: &LocalStep) -> Result<Prepared, Problem> {
    let step = match step {
        LocalStep::Color { profile } => {
            let (resolved, _) = crate::runs::inputs::resolve_settings(daemon, None, None).await?;
            Step::Color {
                profile: chain::find_profile(&resolved.settings, profile)?,
                profile_name: profile.clone(),
            }
        }
        LocalStep::BgRemove {
            model,
            mask_only,
            matting,
            background,
        } => {
            let colour = background
                .as_deref()
                .map(bg_remove::parse_colour)
                .transpose()?;
            if *mask_only && colour.is_some() {
                return Err(Problem::validation(
                    ErrorCode::InvalidOptions,
                    "a mask has no background to colour: pass mask_only or background, not both",
                ));
            }
            Step::BgRemove {
                model: model.clone(),
                options: bg_remove::Options {
                    mask_only: *mask_only,
                    matting: *matting,
                    background: colour,
                },
                background: background.clone(),
            }
        }
        LocalStep::Upscale { scale, model, tile } => {
            let scale = scale.unwrap_or(4);
            if scale != 2 && scale != 4 {
                return Err(Problem::validation(
                    ErrorCode::InvalidScale,
                    format!("scale {scale} is not 2 or 4"),
                ));
            }
            let tile = match tile {
                None => upscale::DEFAULT_TILE,
                Some(tile @ 32..=1024) => *tile as usize,
                Some(tile) => {
                    return Err(Problem::validation(
                        ErrorCode::InvalidTile,
                        format!("tile {tile} is not between 32 and 1024"),
                    ));
                }
            };
            Step::Upscale {
                model: model.clone(),
                scale,
                tile,
            }
        }
    };
    Prepared::load(daemon, step).await
}

/// `local_model.list`: the installed runtime and models, which are loaded now, and with `verify` the
/// hashes checked and the runtime loaded (a whole file may still not load).
pub async fn models_list(
    daemon: Arc<Daemon>,
    params: protocol::local_model::ListParams,
) -> Result<protocol::local_model::LocalModels, Problem> {
    let dir = daemon.config.models_dir.clone();
    let engine = daemon.engine.clone();
    tokio::task::spawn_blocking(move || {
        let mut local = crate::postprocess::local_models::list(&dir, params.verify);
        let runtime = local.models.iter().find(|m| m.kind == "runtime");
        if let (true, true, Some(runtime)) = (params.verify, local.ok, runtime)
            && let Err(err) = engine.check_runtime(Path::new(&runtime.path))
        {
            local.ok = false;
            local.problem = Some(err.message);
            local.hint = err.hint;
            local.action = err.action.map(|action| *action);
        }
        let loaded = engine.loaded();
        for model in &mut local.models {
            model.loaded = loaded.contains(&model.name);
        }
        local
    })
    .await
    .map_err(|err| Problem::new(ErrorKind::Internal, ErrorCode::Internal, err.to_string()))
}

/// A step with its model loaded before any file is touched (a missing or broken runtime or
/// model fails the call once, not every file) and its settings as the outputs record them.
pub(crate) struct Prepared {
    pub(crate) step: Step,
    model: Option<Arc<Model>>,
    /// JSON, recorded in each output's `kroma:settings` chunk.
    settings: String,
}

impl Prepared {
    async fn load(daemon: &Daemon, step: Step) -> Result<Prepared, Problem> {
        let engine = daemon.engine.clone();
        tokio::task::spawn_blocking(move || {
            let model = step.load_model(&engine)?;
            let settings = step
                .describe(model.as_ref().map(|model| &model.installed))
                .to_string();
            Ok(Prepared {
                step,
                model,
                settings,
            })
        })
        .await
        .map_err(|err| Problem::new(ErrorKind::Internal, ErrorCode::Internal, err.to_string()))?
    }
}

fn output_dir(daemon: &Daemon, dir: Option<&str>) -> Result<Option<PathBuf>, Problem> {
    dir.map(|dir| {
        let dir = PathBuf::from(dir);
        if !dir.is_absolute() {
            return Err(Problem::validation(
                ErrorCode::InvalidOutputDir,
                format!("output_dir `{}` must be an absolute path", dir.display()),
            ));
        }
        check_outside_data_dir(&daemon.real_data_dir, &dir)?;
        Ok(dir)
    })
    .transpose()
}

/// Refuses a folder inside kromad's data dir (`real_data_dir`, links resolved on both sides):
/// one-off outputs never go among its database, logs or project folders. Blocking.
pub(crate) fn check_outside_data_dir(real_data_dir: &Path, folder: &Path) -> Result<(), Problem> {
    let resolved = crate::projects::root::resolve(folder).unwrap_or_else(|_| folder.to_owned());
    if resolved.starts_with(real_data_dir) {
        return Err(Problem::validation(
            ErrorCode::OutputInDataDir,
            format!(
                "{} is inside kromad's data dir ({})",
                folder.display(),
                real_data_dir.display()
            ),
        )
        .with_hint("pass an output_dir of your own"));
    }
    Ok(())
}

/// One file to process and where its output goes.
pub(crate) struct Work {
    pub(crate) input: PathBuf,
    pub(crate) target: PathBuf,
}

/// The files named by `paths` and their outputs. A file named directly is written next to itself
/// as `<stem>_<suffix>.png` (or into `output_dir`); a folder's image files are written below
/// `<folder>_<suffix>/` (or `output_dir`) mirroring their paths, so outputs never land among the
/// sources and a second run finds the same inputs.
async fn find_files(
    daemon: &Daemon,
    paths: Vec<String>,
    suffix: String,
    output_dir: Option<PathBuf>,
) -> Result<Vec<Result<Work, (String, Problem)>>, Problem> {
    if paths.is_empty() || paths.len() > MAX_FILES {
        return Err(Problem::validation(
            ErrorCode::InvalidPaths,
            format!("name between 1 and {MAX_FILES} files or folders"),
        ));
    }
    let real_data_dir = daemon.real_data_dir.clone();
    let found = tokio::task::spawn_blocking(move || {
        let mut found = Vec::new();
        for named in &paths {
            let root = PathBuf::from(named);
            for entry in crate::projects::import::expand(std::slice::from_ref(named)) {
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
                    if !crate::projects::import::has_extension(
                        &candidate.shown,
                        &crate::files::images::EXTENSIONS,
                    ) {
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
        let mut found = separate_targets(found);
        keep_outputs_out_of_data_dir(&real_data_dir, &mut found);
        found
    })
    .await
    .map_err(|err| Problem::new(ErrorKind::Internal, ErrorCode::Internal, err.to_string()))?;
    if found.is_empty() {
        return Err(Problem::validation(
            ErrorCode::NoImages,
            "the paths hold no image files (PNG, JPEG or WebP)",
        )
        .with_hint("name image files, or folders that hold some"));
    }
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

/// Refuses, file by file, outputs that would land in kromad's data dir: each output folder is
/// resolved once. Blocking.
fn keep_outputs_out_of_data_dir(
    real_data_dir: &Path,
    found: &mut [Result<Work, (String, Problem)>],
) {
    let mut checked = std::collections::HashMap::<PathBuf, Result<(), Problem>>::new();
    for entry in found.iter_mut() {
        let Ok(work) = entry else {
            continue;
        };
        let Some(folder) = work.target.parent() else {
            continue;
        };
        let verdict = checked
            .entry(folder.to_owned())
            .or_insert_with(|| check_outside_data_dir(real_data_dir, folder));
        if let Err(err) = verdict {
            *entry = Err((work.input.display().to_string(), err.clone()));
        }
    }
}

/// Gives files that would share an output name (`a.png` and `a.jpg` both make `a.png`) names
/// of their own, each with its source's extension (`a_png.png`, `a_jpg.png`), whatever their
/// order.
fn separate_targets(
    mut found: Vec<Result<Work, (String, Problem)>>,
) -> Vec<Result<Work, (String, Problem)>> {
    let mut count = std::collections::HashMap::<PathBuf, usize>::new();
    for work in found.iter().flatten() {
        *count.entry(work.target.clone()).or_default() += 1;
    }
    for work in found.iter_mut().flatten() {
        if count.get(&work.target).copied().unwrap_or(0) < 2 {
            continue;
        }
        let stem = work
            .target
            .file_stem()
            .map(|stem| stem.to_string_lossy().into_owned())
            .unwrap_or_default();
        let extension = work
            .input
            .extension()
            .map(|ext| ext.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        work.target = work
            .target
            .with_file_name(format!("{stem}_{extension}.png"));
    }
    found
}

async fn run_step(
    daemon: Arc<Daemon>,
    files: Vec<Result<Work, (String, Problem)>>,
    step: Arc<Prepared>,
) -> Result<StepReport, Problem> {
    // Cancelled when kromad stops, or when this call is dropped because its caller left: the
    // blocking work sees it between tiles and files.
    let stop = daemon.shutdown.child_token();
    let _stop_when_dropped = stop.clone().drop_guard();
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
                let daemon = daemon.clone();
                let local = daemon.runner.local_slots();
                let runtime = tokio::runtime::Handle::current();
                let stop = stop.clone();
                tasks.spawn(async move {
                    let _permit = local.acquire_owned().await;
                    let input = work.input.display().to_string();
                    let outcome = tokio::task::spawn_blocking(move || {
                        process_file(&daemon, &runtime, &work, &step, &stop)
                    })
                    .await
                    .map_err(|err| {
                        Problem::new(ErrorKind::Internal, ErrorCode::Internal, err.to_string())
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
        let (index, input, outcome) = joined.map_err(|err| {
            Problem::new(ErrorKind::Internal, ErrorCode::Internal, err.to_string())
        })?;
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
        let event = NewEvent::of(
            daemon.clock.now(),
            None,
            &protocol::events::PostprocessFile {
                step: step.step.to_proto(),
                input: result.input.clone(),
                output: result.output.clone(),
                error: result.error.clone(),
                done: done + failed,
                total: total as u32,
            },
        );
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

/// Reads, checks, transforms and writes one file; answers the output path. Blocking. Stops
/// between tiles once `stop` is cancelled, leaving nothing half-written.
pub(crate) fn process_file(
    daemon: &Daemon,
    runtime: &tokio::runtime::Handle,
    work: &Work,
    prepared: &Prepared,
    stop: &CancellationToken,
) -> Result<PathBuf, Problem> {
    let path = &work.input;
    let step = &prepared.step;
    let loaded = budget::load_image(
        path,
        daemon.config.limits.max_image_pixels,
        &daemon.memory,
        step.cost(),
        stop,
    )?;
    let provenance = Provenance::from([
        ("source_sha256", loaded.sha256.clone()),
        ("source", path.display().to_string()),
        ("step", step.name().to_owned()),
        ("settings", prepared.settings.clone()),
    ]);
    let target = &work.target;
    let mut progress = TileProgress::new(daemon, runtime, step.to_proto(), path);
    let mut render = |out: &mut dyn std::io::Write| {
        step.render(
            prepared.model.as_deref(),
            &loaded.image,
            &provenance,
            &mut |done, total| progress.tile(done, total),
            stop,
            out,
        )
    };
    // An upscale streams into the file as its tiles finish; the other steps are made first and
    // written after, so no partial file sits in the output folder while they work.
    let written = if step.streams() {
        write::new_file_with(target, |file| render(file))
    } else {
        let mut png = Vec::new();
        render(&mut png)
            .map_err(write::WriteError::Content)
            .and_then(|()| write::new_file(target, &png).map_err(write::WriteError::File))
    };
    match written {
        Ok(()) => Ok(target.clone()),
        Err(write::WriteError::File(err)) => Err(write_error(target, err)),
        Err(write::WriteError::Content(err)) => Err(err),
    }
}

/// `postprocess.progress` events for the tiles of one file.
struct TileProgress<'a> {
    daemon: &'a Daemon,
    runtime: &'a tokio::runtime::Handle,
    step: protocol::postprocess::Step,
    input: String,
}

impl<'a> TileProgress<'a> {
    fn new(
        daemon: &'a Daemon,
        runtime: &'a tokio::runtime::Handle,
        step: protocol::postprocess::Step,
        input: &Path,
    ) -> TileProgress<'a> {
        TileProgress {
            daemon,
            runtime,
            step,
            input: input.display().to_string(),
        }
    }

    fn tile(&mut self, done: usize, total: usize) {
        let progress =
            protocol::events::PostprocessProgress::File(protocol::events::FileTileProgress {
                step: self.step,
                input: self.input.clone(),
                tiles_done: done as u32,
                tiles: total as u32,
            });
        let event = NewEvent::of(self.daemon.clock.now(), None, &progress);
        if let Err(err) = self
            .runtime
            .block_on(self.daemon.store.append_events(vec![event]))
        {
            tracing::warn!(%err, "could not record a postprocess.progress event");
        }
    }
}

pub(crate) fn write_error(target: &Path, err: std::io::Error) -> Problem {
    if err.kind() == std::io::ErrorKind::AlreadyExists {
        Problem::new(
            ErrorKind::Conflict,
            ErrorCode::OutputExists,
            format!("{} exists; kroma never overwrites a file", target.display()),
        )
        .with_hint("move it away, or pass another output_dir")
    } else {
        Problem::new(
            ErrorKind::Infra,
            ErrorCode::IoError,
            format!("writing {}: {err}", target.display()),
        )
        .with_hint("check that the folder exists and is writable")
    }
}
