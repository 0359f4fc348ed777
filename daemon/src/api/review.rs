//! `run.approve`, `run.baselines`, `run.sheet` and the drifted retry: a person reviewing a
//! run's results. Approving makes a candidate its scene's baseline, which later stages start
//! from; a candidate that drifted from it can be asked for again.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use kroma_protocol as protocol;
use protocol::run::{CandidateStatus, RunDetail, RunStatus, RunSummary};
use protocol::{Action, ErrorCode, ErrorKind};

use super::find_project;
use super::runs::parse_run_id;
use crate::error::{Hint, Problem};
use crate::providers::image_models as models;
use crate::runs::gates::{check_budgets, check_confirmation, spend_gate};
use crate::runs::planner;
use crate::runs::settings;
use crate::store::StoreError;
use crate::store::runs::{self as rows};
use crate::{Daemon, runs};

/// `run.approve`: a person's choice of a candidate as its scene's baseline. The candidate must
/// have an output the QA guard did not fail; it may differ from the ranked winner.
pub async fn approve(
    daemon: Arc<Daemon>,
    params: protocol::run::ApproveParams,
) -> Result<protocol::run::Baseline, Problem> {
    let id = parse_run_id(&params.run)?;
    let at = daemon.clock.now();
    let baseline = daemon
        .store
        .write(move |tx| {
            let run = rows::get_run(tx, &id)?;
            let plan = runs::plan_of(&run)?;
            let candidates = rows::candidates(tx, &id)?;
            let Some((job_index, job)) = plan
                .jobs
                .iter()
                .enumerate()
                .find(|(_, job)| job.key == params.job)
            else {
                return Err(not_found(&run.id, &params.job, None));
            };
            let Some(row) = candidates
                .iter()
                .find(|c| c.job_index as usize == job_index && c.index == params.candidate)
            else {
                return Err(not_found(&run.id, &params.job, Some(params.candidate)));
            };
            let root = Path::new(&run.project_root);
            let candidate = runs::candidate_detail(row, root)?;
            if let Err(why) = approvable(&candidate) {
                return Err(Problem::new(
                    ErrorKind::Conflict,
                    ErrorCode::NotApprovable,
                    format!(
                        "candidate {} of job {} cannot be a baseline: {why}",
                        params.candidate, params.job
                    ),
                )
                .with_hint(
                    "approve a candidate that passed or only warned (run.show lists the verdicts)",
                ));
            }
            let scene_asset = job
                .baseline
                .as_ref()
                .map(|baseline| baseline.scene_asset.clone())
                .or_else(|| {
                    job.input_images
                        .iter()
                        .find(|image| image.role == protocol::run::InputRole::Scene)
                        .and_then(|image| image.asset.clone())
                });
            let Some(scene_asset) = scene_asset else {
                return Err(Problem::new(
                    ErrorKind::Conflict,
                    ErrorCode::NotApprovable,
                    format!("job {} has no scene image to hold a baseline", params.job),
                ));
            };
            let asset = row.final_asset_id.clone().or(row.asset_id.clone());
            let Some(asset) = asset else {
                return Err(Problem::new(
                    ErrorKind::Conflict,
                    ErrorCode::NotApprovable,
                    "the candidate's output is not an asset".to_owned(),
                ));
            };
            let stored = rows::BaselineRow {
                scene_asset_id: scene_asset,
                asset_id: asset.clone(),
                rel_path: String::new(),
                run_id: run.id.clone(),
                job_key: job.key.clone(),
                candidate_index: params.candidate,
                stage: plan.stage.as_str().to_owned(),
                approved_at: at.clone(),
            };
            rows::set_baseline(tx, &run.project_id, &stored)?;
            let image = crate::store::asset_queries::get(tx, &run.project_id, &asset)?;
            let path = root.join(&image.rel_path).display().to_string();
            let baseline = crate::runs::inputs::baseline_to_proto(&stored, &path)?;
            Ok::<_, Problem>((baseline, Vec::new()))
        })
        .await?;
    Ok(baseline)
}

/// Why a candidate cannot be a scene's baseline, if it cannot.
fn approvable(candidate: &protocol::run::CandidateDetail) -> Result<(), &'static str> {
    if candidate.status != CandidateStatus::Succeeded {
        return Err("it has no output");
    }
    if candidate.postprocess.as_deref() == Some("failed") {
        return Err("its post-process chain failed");
    }
    match &candidate.qa {
        None => Err("the QA guard has not checked it yet"),
        Some(qa) if qa.verdict == protocol::qa::Verdict::Fail => Err("it failed the QA guard"),
        Some(_) => Ok(()),
    }
}

fn not_found(run: &str, job: &str, candidate: Option<u32>) -> Problem {
    let what = match candidate {
        Some(index) => format!("job {job} of run {run} has no candidate {index}"),
        None => format!("run {run} has no job {job}"),
    };
    Problem::new(ErrorKind::NotFound, ErrorCode::CandidateNotFound, what).with_hint(Hint::new(
        "the run's jobs and candidates are in its details",
        Action::call::<protocol::run::Show>([("run", run.into())], &[]),
    ))
}

/// `run.baselines`: a project's approved scene baselines.
pub async fn baselines(
    daemon: Arc<Daemon>,
    params: protocol::run::BaselinesParams,
) -> Result<protocol::run::BaselineList, Problem> {
    let project = find_project(&daemon, &params.project).await?;
    let baselines = daemon
        .store
        .read(move |conn| {
            let root = Path::new(&project.root);
            rows::baselines(conn, &project.id)?
                .iter()
                .map(|row| {
                    let path = root.join(&row.rel_path).display().to_string();
                    crate::runs::inputs::baseline_to_proto(row, &path)
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .await?;
    Ok(protocol::run::BaselineList { baselines })
}

/// `run.retry` with `only_drifted`: the candidates marked drifted are called again (paid, after
/// the confirmation and the budgets, like any retry). Their earlier outputs, the generated image
/// and every chain output, move to `archive/replaced/` first and their rows follow, so the new
/// call and chain write fresh files.
pub(super) async fn retry_drifted(
    daemon: Arc<Daemon>,
    id: String,
    confirmed: f64,
    detail: RunDetail,
) -> Result<RunSummary, Problem> {
    let per_call: Vec<f64> = detail.plan.jobs.iter().map(planner::per_call_usd).collect();
    let drifted: Vec<(usize, u32)> = detail
        .jobs
        .iter()
        .enumerate()
        .flat_map(|(job_index, job)| {
            job.candidates
                .iter()
                .filter(|c| {
                    c.status == CandidateStatus::Succeeded
                        && c.qa
                            .as_ref()
                            .and_then(|qa| qa.drift.as_ref())
                            .is_some_and(|drift| drift.drifted)
                })
                .map(move |c| (job_index, c.index))
        })
        .collect();
    if drifted.is_empty() {
        return Err(Problem::new(
            ErrorKind::Conflict,
            ErrorCode::NothingToRetry,
            format!("run {id} has no drifted candidate"),
        )
        .with_hint("run.show marks each candidate's drift from its baseline"));
    }
    let max = models::round_usd(drifted.iter().map(|(job, _)| per_call[*job]).sum());
    check_confirmation(
        confirmed,
        max,
        &format!("calling again for {} drifted candidates", drifted.len()),
        Action::call::<protocol::run::Retry>(
            [("run", id.as_str().into()), ("only_drifted", true.into())],
            &["confirm_cost_usd"],
        ),
    )?;
    let budget = spend_gate(&daemon, &detail).await?;
    let run_id = id.clone();
    let (run, rows_now) = daemon
        .store
        .read(move |conn| {
            Ok::<_, StoreError>((
                rows::get_run(conn, &run_id)?,
                rows::candidates(conn, &run_id)?,
            ))
        })
        .await?;
    let settings: settings::Settings = serde_json::from_value(detail.plan.settings.clone())
        .map_err(|err| StoreError::Corrupt(format!("settings of run {}: {err}", run.id)))?;
    let targets: Vec<&rows::CandidateRow> = rows_now
        .iter()
        .filter(|c| drifted.contains(&(c.job_index as usize, c.index)))
        .collect();
    let root = PathBuf::from(&run.project_root);
    let stamp = daemon.clock.now();
    let mut files: Vec<String> = Vec::new();
    for candidate in &targets {
        if let Some(generated) = &candidate.output_path {
            files.push(generated.clone());
            files.extend(crate::runs::chain::outputs(&settings, generated)?);
        }
    }
    let moved = {
        let root = root.clone();
        tokio::task::spawn_blocking(move || archive_replaced(&root, &files, &stamp))
            .await
            .map_err(|err| {
                Problem::new(ErrorKind::Internal, ErrorCode::Internal, err.to_string())
            })??
    };
    let ids: Vec<String> = targets.iter().map(|c| c.id.clone()).collect();
    let reserve: std::collections::HashMap<String, f64> = targets
        .iter()
        .map(|c| (c.id.clone(), per_call[c.job_index as usize]))
        .collect();
    let at = daemon.clock.now();
    let run_id = id.clone();
    let project_id = run.project_id.clone();
    let followed = moved.clone();
    let summary = daemon
        .store
        .write(move |tx| {
            let run = rows::get_run(tx, &run_id)?;
            if matches!(run.state()?, RunStatus::Running | RunStatus::Canceling) {
                return Err(Problem::new(
                    ErrorKind::Conflict,
                    ErrorCode::NotRetryable,
                    format!("run {run_id} was started again meanwhile"),
                ));
            }
            check_budgets(tx, &project_id, &budget, max, &at[..10])?;
            for (from, to) in &followed {
                rows::follow_move(tx, &project_id, from, to)?;
            }
            rows::reset_succeeded(tx, &ids, |id| reserve.get(id).copied().unwrap_or(0.0))?;
            let restart = super::runs::Restart {
                run_id: &run_id,
                confirmed,
                max,
                candidates: ids.len() as u32,
                chains: None,
                at: &at,
            };
            let (summary, event) = super::runs::restart_for_retry(tx, &restart)?;
            Ok::<_, Problem>((summary, vec![event]))
        })
        .await;
    let summary = match summary {
        Ok(summary) => summary,
        Err(err) => {
            // Nothing was reset: the files go back where the rows say they are.
            for (from, to) in moved {
                if let Err(back) = std::fs::rename(root.join(&to), root.join(&from)) {
                    tracing::error!(%from, %to, %back, "could not move an output back after a refused retry");
                }
            }
            return Err(err);
        }
    };
    daemon.runner.wake();
    Ok(summary)
}

/// Moves each existing file of `files` (relative to `root`) to `archive/replaced/`; answers
/// the moves as (from, to), relative. Blocking.
fn archive_replaced(
    root: &Path,
    files: &[String],
    stamp: &str,
) -> Result<Vec<(String, String)>, Problem> {
    let folder = root.join(crate::files::write::REPLACED_FOLDER);
    let mut moved = Vec::new();
    for rel in files {
        let path = root.join(rel);
        if !path.exists() {
            continue;
        }
        let to =
            crate::files::write::archive(&folder, &path, "replaced", stamp).map_err(|err| {
                Problem::new(
                    ErrorKind::Infra,
                    ErrorCode::IoError,
                    format!("moving {} to {}: {err}", path.display(), folder.display()),
                )
                .with_hint("check that the project folder is writable")
            })?;
        let to_rel = to
            .strip_prefix(root)
            .unwrap_or(&to)
            .to_string_lossy()
            .replace('\\', "/");
        moved.push((rel.clone(), to_rel));
    }
    Ok(moved)
}

/// `run.sheet`: every job's candidates as labelled thumbnails in one PNG. The images are read
/// one at a time under the local-work memory budget; only thumbnails are kept.
pub async fn sheet(
    daemon: Arc<Daemon>,
    params: protocol::run::SheetParams,
) -> Result<protocol::run::Sheet, Problem> {
    let thumb = params.thumb.unwrap_or(192);
    if !(64..=512).contains(&thumb) {
        return Err(Problem::validation(
            ErrorCode::InvalidOptions,
            format!("thumb {thumb} must be between 64 and 512 pixels"),
        ));
    }
    let detail = super::runs::load_detail(&daemon, parse_run_id(&params.run)?).await?;
    let _local = daemon
        .runner
        .local_slots()
        .acquire_owned()
        .await
        .map_err(|err| Problem::new(ErrorKind::Internal, ErrorCode::Internal, err.to_string()))?;
    let stop = daemon.shutdown.child_token();
    let _stop_when_dropped = stop.clone().drop_guard();
    let worker = daemon.clone();
    let png = tokio::task::spawn_blocking(move || render_sheet(&worker, &detail, thumb, &stop))
        .await
        .map_err(|err| Problem::new(ErrorKind::Internal, ErrorCode::Internal, err.to_string()))??;
    use base64::Engine;
    Ok(protocol::run::Sheet {
        png_base64: base64::engine::general_purpose::STANDARD.encode(&png.0),
        width: png.1,
        height: png.2,
    })
}

/// Renders and encodes the sheet: (PNG bytes, width, height). Blocking.
fn render_sheet(
    daemon: &Daemon,
    detail: &RunDetail,
    thumb: u32,
    stop: &tokio_util::sync::CancellationToken,
) -> Result<(Vec<u8>, u32, u32), Problem> {
    use crate::review::sheet::{Mark, Row, Tile};
    let mut rows = Vec::with_capacity(detail.jobs.len());
    for job in &detail.jobs {
        let mut tiles = Vec::with_capacity(job.candidates.len());
        for candidate in &job.candidates {
            crate::postprocess::budget::check(stop)?;
            let path = candidate
                .qa
                .as_ref()
                .map(|qa| qa.checked.clone())
                .or_else(|| candidate.final_output.clone())
                .or_else(|| candidate.output.clone());
            let image = match path {
                Some(path) => match crate::postprocess::budget::load_image(
                    Path::new(&path),
                    daemon.max_image_pixels,
                    &daemon.memory,
                    crate::postprocess::budget::StepCost::Qa,
                    stop,
                ) {
                    Ok(loaded) => Some(crate::review::sheet::thumbnail(&loaded.image, thumb)),
                    Err(err) if err.code == ErrorCode::Stopped => return Err(err),
                    Err(_) => None,
                },
                None => None,
            };
            let verdict = candidate
                .qa
                .as_ref()
                .map(|qa| qa.verdict.as_str())
                .unwrap_or(candidate.status.as_str());
            let mut lines = vec![format!("#{} {verdict}", candidate.index)];
            if let Some(chroma) = candidate.qa.as_ref().and_then(|qa| qa.chroma_delta) {
                lines.push(format!("chroma {chroma:.2}"));
            }
            let drift = candidate.qa.as_ref().and_then(|qa| qa.drift.as_ref());
            if let Some(drift) = drift {
                lines.push(format!(
                    "drift s{:.2} p{:.2}",
                    drift.structure, drift.palette
                ));
            }
            tiles.push(Tile {
                image,
                lines,
                mark: Mark {
                    winner: job.winner == Some(candidate.index),
                    approved: job.approved == Some(candidate.index),
                    failed: candidate
                        .qa
                        .as_ref()
                        .is_some_and(|qa| qa.verdict == protocol::qa::Verdict::Fail),
                    drifted: drift.is_some_and(|drift| drift.drifted),
                },
            });
        }
        rows.push(Row {
            title: format!(
                "{} ({})",
                job.key,
                serde_json::to_value(job.status)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            ),
            tiles,
        });
    }
    let title = format!(
        "run {} - {} - {} - {}",
        &detail.run.id[..8.min(detail.run.id.len())],
        detail.run.project,
        detail.run.stage.as_str(),
        detail.run.status.as_str()
    );
    let sheet = crate::review::sheet::render(&title, &rows, thumb).map_err(|why| {
        Problem::validation(ErrorCode::SheetTooLarge, format!("the contact sheet {why}"))
            .with_hint("ask for smaller thumbnails (thumb)")
    })?;
    let (width, height) = (sheet.width(), sheet.height());
    let png = crate::files::png::encode_png(&image::DynamicImage::ImageRgba8(sheet))
        .map_err(|err| Problem::new(ErrorKind::Internal, ErrorCode::Internal, err))?;
    Ok((png, width, height))
}
