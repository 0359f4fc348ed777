//! The post-process chain of a run: after a candidate's image is recorded, its local steps run in
//! the fixed order (background removal → upscale → colour; only colour is built so far) on the
//! local-work slots. Each step's output is a new asset `derived_from` the previous one and
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
use crate::postprocess::color;
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
    match steps(&context).await {
        Ok(last) => record(daemon, &context, Ok(last)).await,
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

/// Runs every step; answers the outputs, in order.
async fn steps(context: &Context) -> Result<Vec<Written>, ApiError> {
    let generated = context.candidate.output_path.clone().ok_or_else(|| {
        ApiError::new(
            ErrorKind::Internal,
            "internal",
            "succeeded without an output",
        )
    })?;
    let mut written = Vec::new();
    let profile_name = context.settings.postprocess.color.clone();
    if !profile_name.is_empty() {
        let profile = context
            .settings
            .color_profiles
            .get(&profile_name)
            .cloned()
            .or_else(|| color::builtin().remove(&profile_name))
            .ok_or_else(|| {
                ApiError::validation(
                    "unknown_profile",
                    format!("there is no colour profile `{profile_name}`"),
                )
            })?;
        let root = context.root().to_owned();
        let source_rel = generated.clone();
        let candidate = context.candidate.id.clone();
        let run = context.run.id.clone();
        let parent = context.candidate.asset_id.clone();
        let step = tokio::task::spawn_blocking(move || {
            color_step(
                &root,
                &source_rel,
                &candidate,
                &run,
                &profile_name,
                &profile,
            )
        })
        .await
        .map_err(|err| ApiError::new(ErrorKind::Internal, "internal", err.to_string()))??;
        written.push(Written {
            parent_asset: parent,
            ..step
        });
    }
    Ok(written)
}

fn color_step(
    root: &Path,
    source_rel: &str,
    candidate: &str,
    run: &str,
    profile_name: &str,
    profile: &color::ColorProfile,
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
    let stem = Path::new(source_rel)
        .file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_else(|| "image".to_owned());
    let rel_path = format!("color_corrected/{stem}_{profile_name}.png");
    let target = root.join(&rel_path);
    if let Some(bytes) = output::holds_candidate(&target, candidate) {
        // Written before a stop, not yet recorded.
        let image = image::load_from_memory(&bytes)
            .map_err(|err| ApiError::new(ErrorKind::Infra, "io_error", err.to_string()))?;
        return Ok(Written {
            rel_path,
            width: image.width(),
            height: image.height(),
            bytes,
            parent_asset: None,
            kind: AssetKind::ColorCorrected,
        });
    }
    let bytes = std::fs::read(&source).map_err(|err| io("reading", err))?;
    let image = crate::image_check::decode_for_processing(&bytes)
        .map_err(|problem| ApiError::validation(problem.code(), problem.to_string()))?
        .to_rgba8();
    let out = color::apply(&image, profile);
    let (width, height) = out.dimensions();
    let mut png = Vec::new();
    image::DynamicImage::ImageRgba8(out)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|err| ApiError::new(ErrorKind::Internal, "internal", err.to_string()))?;
    let settings = serde_json::json!({ "profile": profile_name, "values": profile });
    let provenance = Provenance::from([
        ("candidate", candidate.to_owned()),
        ("run", run.to_owned()),
        ("source_sha256", crate::planner::hex_sha256(&bytes)),
        ("step", "color".to_owned()),
        ("settings", settings.to_string()),
    ]);
    let png = output::with_provenance(png, &provenance)
        .map_err(|err| ApiError::new(ErrorKind::Internal, "internal", err))?;
    output::place(root, &rel_path, &png, &clock::now()).map_err(|err| io("writing after", err))?;
    Ok(Written {
        rel_path,
        bytes: png,
        width,
        height,
        parent_asset: None,
        kind: AssetKind::ColorCorrected,
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
