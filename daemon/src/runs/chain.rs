//! The post-process chain of a run: after a candidate's image is recorded, its local steps run in
//! the fixed order background removal → upscale → colour (each on if the run's settings say so)
//! on the local-work slots. Each step's output is a new asset `derived_from` the previous one and
//! carries the candidate id and its source's sha256 in PNG text chunks.
//!
//! The chain runs after the paid result is safe: if it fails, the candidate keeps its image and
//! records why; if kromad stops during it, the next start runs it again (an output already in
//! place for this candidate is taken as it is).

use std::path::Path;

use futures::FutureExt;

use kroma_protocol as protocol;
use protocol::asset::{AssetKind, Relation};
use protocol::{ErrorCode, ErrorKind};

use super::context::{self, Context};
use super::outcomes::Books;
use crate::Services;
use crate::error::Problem;
use crate::files::png::{self, Provenance};
use crate::files::write;
use crate::postprocess::chain::Step;
use crate::projects::layout;
use crate::store::runs as rows;
use crate::store::{NewAsset, StoreError, asset_queries};

/// Runs the chain of candidate `id` if it is pending, and records how it ended.
pub async fn run(daemon: &Services, id: &str) -> Result<(), Problem> {
    let lookup = id.to_owned();
    let candidate = daemon
        .store
        .read(move |conn| rows::pending_candidate(conn, &lookup))
        .await?;
    let Some(candidate) = candidate else {
        return Ok(());
    };
    let context = context::load(daemon, candidate).await?;
    let _local = daemon
        .runner
        .local_slots()
        .acquire_owned()
        .await
        .map_err(|err| Problem::new(ErrorKind::Internal, ErrorCode::Internal, err.to_string()))?;
    // A panic in a step (a bug) fails this chain with the reason instead of leaving it pending.
    let ran = std::panic::AssertUnwindSafe(steps(daemon, &context))
        .catch_unwind()
        .await
        .unwrap_or_else(|panic| {
            Err(Problem::new(
                ErrorKind::Internal,
                ErrorCode::Internal,
                format!(
                    "a post-process step panicked: {}",
                    super::panic_message(panic.as_ref())
                ),
            )
            .with_hint("this is a bug in kromad; the log has the details"))
        });
    match ran {
        Ok(last) => record(daemon, &context, Ok(last)).await,
        // Stopped by a shutdown: the chain stays pending and the next start runs it again.
        Err(err) if err.code == ErrorCode::Stopped => {
            tracing::info!(candidate = %context.candidate.id, "post-process chain stopped; it runs again at the next start");
            Ok(())
        }
        Err(err) => {
            tracing::warn!(candidate = %context.candidate.id, message = %err.message, "post-process chain failed");
            record(daemon, &context, Err(err)).await
        }
    }
}

/// An output of the chain, written and ready to record.
struct Written {
    rel_path: String,
    bytes: Vec<u8>,
    width: u32,
    height: u32,
    parent_asset: Option<String>,
    kind: AssetKind,
}

/// Every file the chain of `settings` writes for the generated image at `generated_rel`, in
/// order.
pub(crate) fn outputs(
    settings: &crate::runs::settings::Settings,
    generated_rel: &str,
) -> Result<Vec<String>, Problem> {
    let stem = Path::new(generated_rel)
        .file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_else(|| "image".to_owned());
    Ok(Step::chain(settings)?
        .iter()
        .map(|step| target(step, &stem).0)
        .collect())
}

/// Where a step of a run's chain writes its output, from the generated image's file stem, and
/// the output's asset kind.
fn target(step: &Step, stem: &str) -> (String, AssetKind) {
    match step {
        Step::BgRemove { .. } => (layout::bg_removed_output(stem), AssetKind::BgRemoved),
        Step::Upscale { scale, .. } => (layout::upscaled_output(stem, *scale), AssetKind::Upscaled),
        Step::Color { profile_name, .. } => (
            layout::color_output(stem, profile_name),
            AssetKind::ColorCorrected,
        ),
    }
}

/// Runs every step, each on the previous one's output; answers the outputs, in order.
async fn steps(daemon: &Services, context: &Context) -> Result<Vec<Written>, Problem> {
    let generated = context.candidate.output_path.clone().ok_or_else(|| {
        Problem::new(
            ErrorKind::Internal,
            ErrorCode::Internal,
            "succeeded without an output",
        )
    })?;
    let stem = Path::new(&generated)
        .file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_else(|| "image".to_owned());
    let mut written: Vec<Written> = Vec::new();
    for step in Step::chain(&context.settings)? {
        let source_rel = written
            .last()
            .map(|w| w.rel_path.clone())
            .unwrap_or_else(|| generated.clone());
        let root = context.root().to_owned();
        let ids = (context.candidate.id.clone(), context.run.id.clone());
        let engine = daemon.engine.clone();
        let memory = daemon.memory.clone();
        let max_pixels = daemon.max_image_pixels;
        let stop = daemon.shutdown.clone();
        let clock = daemon.clock;
        let stem = stem.clone();
        let step_name = step.to_proto();
        // Tiles come from the blocking step through a channel (a few a second, see encode_png).
        let (tiles_tx, mut tiles) = tokio::sync::mpsc::unbounded_channel();
        let work = tokio::task::spawn_blocking(move || {
            let mut progress = |done: usize, total: usize| {
                let _ = tiles_tx.send((done, total));
            };
            let limits = Resources {
                engine: &engine,
                max_pixels,
                memory: &memory,
                stop: &stop,
                clock,
            };
            run_step(
                &root,
                &source_rel,
                &stem,
                &ids,
                &step,
                &limits,
                &mut progress,
            )
        });
        tokio::pin!(work);
        let output = loop {
            tokio::select! {
                output = &mut work => break output,
                Some((done, total)) = tiles.recv() => {
                    record_tile(daemon, context, step_name, done, total).await;
                }
            }
        };
        // Tiles sent just before the step ended are still in the channel: they count too.
        while let Ok((done, total)) = tiles.try_recv() {
            record_tile(daemon, context, step_name, done, total).await;
        }
        let output = output.map_err(|err| {
            Problem::new(ErrorKind::Internal, ErrorCode::Internal, err.to_string())
        })??;
        written.push(output);
    }
    if let Some(first) = written.first_mut() {
        first.parent_asset = context.candidate.asset_id.clone();
    }
    Ok(written)
}

/// Records a `postprocess.progress` event for the tiles of a candidate's step.
async fn record_tile(
    daemon: &Services,
    context: &Context,
    step: protocol::postprocess::Step,
    done: usize,
    total: usize,
) {
    let progress =
        protocol::events::PostprocessProgress::Chain(protocol::events::ChainTileProgress {
            run: context.run.id.clone(),
            job: context.job.key.clone(),
            index: context.candidate.index,
            status: protocol::events::ChainProgressStatus::Postprocessing,
            step,
            candidate: context.candidate.id.clone(),
            tiles_done: done as u32,
            tiles: total as u32,
        });
    let event = context::event(context, &progress, &daemon.clock.now());
    if let Err(err) = daemon.store.append_events(vec![event]).await {
        tracing::warn!(%err, "could not record a postprocess.progress event");
    }
}

/// What one step runs on and within: the models, the pixel budget, the shared memory budget and
/// the daemon's stop.
struct Resources<'a> {
    engine: &'a crate::postprocess::onnx::Engine,
    max_pixels: u64,
    memory: &'a crate::postprocess::budget::MemoryBudget,
    stop: &'a tokio_util::sync::CancellationToken,
    clock: crate::clock::Clock,
}

/// One step on the file at `source_rel`: written at its target, or taken as it is when the
/// target already holds this candidate's output from before a stop. `ids` are the candidate's
/// and the run's. Blocking.
fn run_step(
    root: &Path,
    source_rel: &str,
    stem: &str,
    (candidate, run): &(String, String),
    step: &Step,
    limits: &Resources<'_>,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Written, Problem> {
    let source = root.join(source_rel);
    let io = |doing: &str, err: std::io::Error| {
        Problem::new(
            ErrorKind::Infra,
            ErrorCode::IoError,
            format!("{doing} {}: {err}", source.display()),
        )
        .with_hint("check that the project folder is readable and writable")
    };
    let internal = |err: String| Problem::new(ErrorKind::Internal, ErrorCode::Internal, err);
    let (rel_path, kind) = target(step, stem);
    let target = root.join(&rel_path);
    if let Some(bytes) = png::holds_candidate(&target, candidate) {
        let (width, height) = image::ImageReader::new(std::io::Cursor::new(&bytes))
            .with_guessed_format()
            .map_err(|err| io("reading", err))?
            .into_dimensions()
            .map_err(|err| internal(err.to_string()))?;
        return Ok(Written {
            rel_path,
            bytes,
            width,
            height,
            parent_asset: None,
            kind,
        });
    }
    let loaded = crate::postprocess::budget::load_image(
        &source,
        limits.max_pixels,
        limits.memory,
        step.cost(),
        limits.stop,
    )?;
    let model = step.load_model(limits.engine)?;
    // The model actually used goes in by name and hash, so the record says exactly what ran.
    let settings = step.describe(model.as_ref().map(|model| &model.installed));
    let provenance = Provenance::from([
        ("candidate", candidate.clone()),
        ("run", run.clone()),
        ("source_sha256", loaded.sha256.clone()),
        ("step", step.name().to_owned()),
        ("settings", settings.to_string()),
    ]);
    // The compressed output is kept in memory to record it; an upscale's pixels never are.
    let mut png = Vec::new();
    step.render(
        model.as_deref(),
        &loaded.image,
        &provenance,
        progress,
        limits.stop,
        &mut png,
    )?;
    let (width, height) = step.output_size(loaded.image.width(), loaded.image.height());
    write::place(root, &rel_path, &png, &limits.clock.now())
        .map_err(|err| io("writing after", err))?;
    Ok(Written {
        rel_path,
        bytes: png,
        width,
        height,
        parent_asset: None,
        kind,
    })
}

/// One transaction: the outputs as assets with their lineage, the chain's outcome, the events.
async fn record(
    daemon: &Services,
    context: &Context,
    outcome: Result<Vec<Written>, Problem>,
) -> Result<(), Problem> {
    let id = context.candidate.id.clone();
    let project_id = context.run.project_id.clone();
    let books = Books::of(context);
    let provider_limit = daemon.runner.provider_limit;
    let at = daemon.clock.now();
    let (run, job, index) = (
        context.run.id.clone(),
        context.job.key.clone(),
        context.candidate.index,
    );
    let root = context.root().to_owned();
    daemon
        .store
        .write(move |tx| {
            let (final_asset, final_path, error) = match outcome {
                Ok(outputs) => {
                    let mut parent = None;
                    let mut last = None;
                    for written in outputs {
                        let sha256 = crate::runs::planner::hex_sha256(&written.bytes);
                        let asset = match asset_queries::find_by_sha(tx, &project_id, &sha256)? {
                            Some(existing) => existing,
                            None => asset_queries::insert(
                                tx,
                                &NewAsset {
                                    id: uuid::Uuid::new_v4().to_string(),
                                    project_id: project_id.clone(),
                                    kind: written.kind,
                                    rel_path: written.rel_path.clone(),
                                    sha256,
                                    width: written.width,
                                    height: written.height,
                                    format: "png".to_owned(),
                                    mime: "image/png".to_owned(),
                                    bytes: written.bytes.len() as u64,
                                    original_name: written
                                        .rel_path
                                        .rsplit('/')
                                        .next()
                                        .unwrap_or(&written.rel_path)
                                        .to_owned(),
                                    at: at.clone(),
                                },
                            )?
                            .ok_or_else(|| {
                                StoreError::Corrupt(format!(
                                    "{} is already an asset",
                                    written.rel_path
                                ))
                            })?,
                        };
                        let from = parent.clone().or(written.parent_asset.clone());
                        if let Some(from) = from
                            && from != asset.id
                        {
                            match asset_queries::link(
                                tx,
                                &project_id,
                                &asset.id,
                                &from,
                                Relation::DerivedFrom,
                                &at,
                            ) {
                                Ok(_) | Err(StoreError::LinkExists) => {}
                                Err(err) => return Err(err),
                            }
                        }
                        parent = Some(asset.id.clone());
                        last = Some((asset.id, written.rel_path));
                    }
                    let (asset, path) = last.unzip();
                    (asset, path, None)
                }
                Err(err) => (None, None, Some(err.to_data())),
            };
            let error_json = error
                .as_ref()
                .and_then(|error| serde_json::to_string(error).ok());
            let postprocessed = protocol::events::CandidatePostprocessed {
                run,
                job,
                index,
                status: if error.is_some() {
                    protocol::events::ChainStatus::Failed
                } else {
                    protocol::events::ChainStatus::Done
                },
                final_output: final_path
                    .as_ref()
                    .map(|path| root.join(path).display().to_string()),
                error,
            };
            rows::finish_postprocess(
                tx,
                &id,
                final_asset.as_deref(),
                final_path.as_deref(),
                error_json,
            )?;
            let mut events = vec![books.event(&postprocessed, &at)];
            events.extend(books.after_candidate(tx, provider_limit, &at)?);
            Ok::<_, StoreError>(((), events))
        })
        .await?;
    Ok(())
}
