//! The post-process chain of a run: after a candidate's image is recorded, its local steps run in
//! the fixed order background removal → upscale → colour (each on if the run's settings say so)
//! on the local-work slots. Each step's output is a new asset `derived_from` the previous one and
//! carries the candidate id and its source's sha256 in PNG text chunks.
//!
//! The chain runs after the paid result is safe: if it fails, the candidate keeps its image and
//! records why; if kromad stops during it, the next start runs it again (an output already in
//! place for this candidate is taken as it is).

use std::path::Path;

use kroma_protocol as protocol;
use protocol::ErrorKind;
use protocol::asset::{AssetKind, Relation};
use protocol::events::kind;

use super::output::{self, Provenance};
use super::runner::{self, Books, Context};
use crate::Daemon;
use crate::clock;
use crate::error::ApiError;
use crate::local_models::ModelKind;
use crate::postprocess::{bg_remove, color, upscale};
use crate::store::runs as rows;
use crate::store::{NewAsset, StoreError, asset_queries};

/// Runs the chain of candidate `id` if it is pending, and records how it ended.
pub async fn run(daemon: &Daemon, id: &str) -> Result<(), ApiError> {
    let lookup = id.to_owned();
    let candidate = daemon
        .store
        .read(move |conn| rows::pending_candidate(conn, &lookup))
        .await?;
    let Some(candidate) = candidate else {
        return Ok(());
    };
    let context = runner::load(daemon, candidate).await?;
    let _local = daemon
        .runner
        .local_slots()
        .acquire_owned()
        .await
        .map_err(|err| ApiError::new(ErrorKind::Internal, "internal", err.to_string()))?;
    match steps(daemon, &context).await {
        Ok(last) => record(daemon, &context, Ok(last)).await,
        // Stopped by a shutdown: the chain stays pending and the next start runs it again.
        Err(err) if err.code == crate::budget::stopped().code => {
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

/// One step of the chain, with what it needs.
enum Step {
    BgRemove {
        model: Option<String>,
        options: bg_remove::Options,
    },
    Upscale {
        model: Option<String>,
        scale: u32,
    },
    Color {
        name: String,
        profile: color::ColorProfile,
    },
}

impl Step {
    /// The steps the settings turn on, in the fixed order.
    fn all(settings: &crate::settings::Settings) -> Result<Vec<Step>, ApiError> {
        let chain = &settings.postprocess;
        let named = |name: &str| (!name.is_empty()).then(|| name.to_owned());
        let mut steps = Vec::new();
        if chain.bg_remove {
            let background = named(&chain.background)
                .map(|colour| bg_remove::parse_colour(&colour))
                .transpose()?;
            steps.push(Step::BgRemove {
                model: named(&chain.bg_model),
                options: bg_remove::Options {
                    mask_only: false,
                    matting: chain.matting,
                    background,
                },
            });
        }
        if chain.upscale != 0 {
            steps.push(Step::Upscale {
                model: named(&chain.upscale_model),
                scale: chain.upscale,
            });
        }
        if !chain.color.is_empty() {
            let profile = settings
                .color_profiles
                .get(&chain.color)
                .cloned()
                .or_else(|| color::builtin().remove(&chain.color))
                .ok_or_else(|| {
                    ApiError::validation(
                        "unknown_profile",
                        format!("there is no colour profile `{}`", chain.color),
                    )
                })?;
            steps.push(Step::Color {
                name: chain.color.clone(),
                profile,
            });
        }
        Ok(steps)
    }

    /// What the step costs in memory per image.
    fn cost(&self) -> crate::budget::StepCost {
        match self {
            Step::BgRemove { options, .. } => crate::budget::StepCost::BgRemove {
                matting: options.matting,
            },
            Step::Upscale { .. } => crate::budget::StepCost::Upscale {
                tile: upscale::DEFAULT_TILE as u32,
            },
            Step::Color { .. } => crate::budget::StepCost::Color,
        }
    }

    /// Where its output goes, from the generated image's file stem, and the asset kind.
    fn target(&self, stem: &str) -> (String, AssetKind) {
        match self {
            Step::BgRemove { .. } => (
                format!("background_removed/{stem}_nobg.png"),
                AssetKind::BgRemoved,
            ),
            Step::Upscale { scale, .. } => {
                (format!("upscaled/{stem}_x{scale}.png"), AssetKind::Upscaled)
            }
            Step::Color { name, .. } => (
                format!("color_corrected/{stem}_{name}.png"),
                AssetKind::ColorCorrected,
            ),
        }
    }

    /// The step's name and settings, for the output's text chunks.
    fn describe(&self) -> (&'static str, serde_json::Value) {
        match self {
            Step::BgRemove { model, options } => (
                "bg_remove",
                serde_json::json!({
                    "model": model,
                    "matting": options.matting,
                    "background": options.background,
                }),
            ),
            Step::Upscale { model, scale } => (
                "upscale",
                serde_json::json!({ "model": model, "scale": scale }),
            ),
            Step::Color { name, profile } => (
                "color",
                serde_json::json!({ "profile": name, "values": profile }),
            ),
        }
    }
}

/// Runs every step, each on the previous one's output; answers the outputs, in order.
async fn steps(daemon: &Daemon, context: &Context) -> Result<Vec<Written>, ApiError> {
    let generated = context.candidate.output_path.clone().ok_or_else(|| {
        ApiError::new(
            ErrorKind::Internal,
            "internal",
            "succeeded without an output",
        )
    })?;
    let stem = Path::new(&generated)
        .file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_else(|| "image".to_owned());
    let mut written: Vec<Written> = Vec::new();
    for step in Step::all(&context.settings)? {
        let source_rel = written
            .last()
            .map(|w| w.rel_path.clone())
            .unwrap_or_else(|| generated.clone());
        let root = context.root().to_owned();
        let ids = (context.candidate.id.clone(), context.run.id.clone());
        let engine = daemon.engine.clone();
        let memory = daemon.memory.clone();
        let max_pixels = daemon.config.limits.max_image_pixels;
        let stop = daemon.shutdown.clone();
        let stem = stem.clone();
        let name = step.describe().0;
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
                    let mut data = runner::candidate_data(context, "postprocessing");
                    data["step"] = name.into();
                    data["candidate"] = context.candidate.id.clone().into();
                    data["tiles_done"] = done.into();
                    data["tiles"] = total.into();
                    let event = runner::event(context, kind::POSTPROCESS_PROGRESS, data, &clock::now());
                    if let Err(err) = daemon.store.append_events(vec![event]).await {
                        tracing::warn!(%err, "could not record a postprocess.progress event");
                    }
                }
            }
        };
        let output = output
            .map_err(|err| ApiError::new(ErrorKind::Internal, "internal", err.to_string()))??;
        written.push(output);
    }
    if let Some(first) = written.first_mut() {
        first.parent_asset = context.candidate.asset_id.clone();
    }
    Ok(written)
}

/// What one step runs on and within: the models, the pixel budget, the shared memory budget and
/// the daemon's stop.
struct Resources<'a> {
    engine: &'a crate::onnx::Engine,
    max_pixels: u64,
    memory: &'a crate::budget::MemoryBudget,
    stop: &'a tokio_util::sync::CancellationToken,
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
) -> Result<Written, ApiError> {
    let source = root.join(source_rel);
    let io = |doing: &str, err: std::io::Error| {
        ApiError::new(
            ErrorKind::Infra,
            "io_error",
            format!("{doing} {}: {err}", source.display()),
        )
        .with_hint("check that the project folder is readable and writable")
    };
    let internal = |err: String| ApiError::new(ErrorKind::Internal, "internal", err);
    let (rel_path, kind) = step.target(stem);
    let target = root.join(&rel_path);
    if let Some(bytes) = output::holds_candidate(&target, candidate) {
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
    let loaded = crate::budget::load_image(
        &source,
        limits.max_pixels,
        limits.memory,
        step.cost(),
        limits.stop,
    )?;
    let image = &loaded.image;
    let source_sha256 = loaded.sha256.clone();
    // The model actually used goes in by name and hash, so the record says exactly what ran.
    let provenance = |model: Option<&crate::local_models::Installed>| {
        let (name, mut settings) = step.describe();
        if let Some(model) = model {
            settings["model"] = model.name.clone().into();
            settings["model_sha256"] = model.sha256.clone().into();
        }
        Provenance::from([
            ("candidate", candidate.clone()),
            ("run", run.clone()),
            ("source_sha256", source_sha256.clone()),
            ("step", name.to_owned()),
            ("settings", settings.to_string()),
        ])
    };
    let encode = |out: image::DynamicImage, provenance: &Provenance| -> Result<Vec<u8>, ApiError> {
        let png = output::encode_png(&out).map_err(internal)?;
        output::with_provenance(png, provenance).map_err(internal)
    };
    let (png, width, height) = match step {
        Step::Color { profile, .. } => {
            let out = color::apply(image, profile);
            let (width, height) = out.dimensions();
            (encode(out.into(), &provenance(None))?, width, height)
        }
        Step::BgRemove { model, options } => {
            let model = limits
                .engine
                .model(ModelKind::BgRemoval, model.as_deref())?;
            let out = bg_remove::remove(&model, image, *options)?;
            let png = encode(out, &provenance(Some(&model.installed)))?;
            (png, image.width(), image.height())
        }
        Step::Upscale { model, scale } => {
            let model = limits.engine.model(ModelKind::Upscale, model.as_deref())?;
            let tiling = upscale::Tiling {
                tile: upscale::DEFAULT_TILE,
                overlap: upscale::overlap_for(&model.installed.name),
            };
            // The compressed output is kept in memory to record it; the pixels never are.
            let mut png = Vec::new();
            let provenance = provenance(Some(&model.installed));
            upscale::encode_png(
                &model,
                image,
                *scale,
                tiling,
                &provenance,
                progress,
                limits.stop,
                &mut png,
            )?;
            (png, image.width() * scale, image.height() * scale)
        }
    };
    output::place(root, &rel_path, &png, &clock::now()).map_err(|err| io("writing after", err))?;
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
    daemon: &Daemon,
    context: &Context,
    outcome: Result<Vec<Written>, ApiError>,
) -> Result<(), ApiError> {
    let id = context.candidate.id.clone();
    let project_id = context.run.project_id.clone();
    let books = Books::of(context);
    let provider_limit = daemon.runner.provider_limit;
    let at = clock::now();
    let mut data = runner::candidate_data(context, "succeeded");
    let root = context.root().to_owned();
    daemon
        .store
        .write(move |tx| {
            let (final_asset, final_path, error_json) = match outcome {
                Ok(outputs) => {
                    let mut parent = None;
                    let mut last = None;
                    for written in outputs {
                        let sha256 = crate::planner::hex_sha256(&written.bytes);
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
                Err(err) => (None, None, serde_json::to_string(&err.to_data()).ok()),
            };
            data["status"] = if error_json.is_some() {
                "failed"
            } else {
                "done"
            }
            .into();
            if let Some(path) = &final_path {
                data["final_output"] = root.join(path).display().to_string().into();
            }
            if let Some(error) = &error_json {
                data["error"] = serde_json::from_str(error).unwrap_or_default();
            }
            rows::finish_postprocess(
                tx,
                &id,
                final_asset.as_deref(),
                final_path.as_deref(),
                error_json,
            )?;
            let mut events = vec![books.event(kind::CANDIDATE_POSTPROCESSED, data, &at)];
            events.extend(books.after_candidate(tx, provider_limit, &at)?);
            Ok::<_, StoreError>(((), events))
        })
        .await?;
    Ok(())
}
