//! Recording how candidates and runs end, each in one transaction: a candidate's output, asset
//! and cost event (`record_success`), an end without output (`record_end`), the run's books
//! (reservations released, progress, finishing the run).

use kroma_protocol as protocol;
use protocol::asset::{AssetKind, Relation};
use protocol::events::EventData;
use protocol::run::{CandidateStatus, JobStatus, RunStatus};
use protocol::{ErrorCode, ErrorKind};

use super::context::{Context, event};
use crate::Services;
use crate::error::Problem;
use crate::files::{png, write};
use crate::providers::Generated;
use crate::providers::image_models::{self, Usage};
use crate::store::runs::{self as rows, CandidateRow, NewCost, Outcome};
use crate::store::{NewAsset, NewEvent, StoreError, asset_queries};

pub(crate) struct Cost {
    pub(crate) usd: f64,
    pub(crate) source: &'static str,
    pub(crate) usage: Option<Usage>,
}

/// The actual cost from the usage when the model has token prices, else the price table's.
pub(crate) fn cost_of(context: &Context, usage: Option<&Usage>) -> Cost {
    if let (Some(usage), Some(pricing)) = (usage, context.pricing())
        && let Some(usd) = image_models::usage_usd(&pricing, usage)
    {
        return Cost {
            usd,
            source: "usage",
            usage: Some(*usage),
        };
    }
    Cost {
        usd: context.estimated_usd(),
        source: "price_table",
        usage: usage.copied(),
    }
}

/// Records a candidate that ended without an output.
pub(crate) async fn record_end(
    daemon: &Services,
    context: &Context,
    status: CandidateStatus,
    error: &Problem,
    cost: Option<Cost>,
) -> Result<(), Problem> {
    let id = context.candidate.id.clone();
    let at = daemon.clock.now();
    let error = error.to_data();
    let error_json = serde_json::to_string(&error).ok();
    let (run, job, index) = (
        context.run.id.clone(),
        context.job.key.clone(),
        context.candidate.index,
    );
    let cost_usd = cost.as_ref().map(|cost| cost.usd);
    // A canceled candidate finished without an image; the others failed.
    let ended = if status == CandidateStatus::Canceled {
        event(
            context,
            &protocol::events::CandidateFinished {
                run,
                job,
                index,
                status,
                cost_usd,
                output: None,
                error: Some(error),
            },
            &at,
        )
    } else {
        event(
            context,
            &protocol::events::CandidateFailed {
                run,
                job,
                index,
                status,
                error,
                cost_usd,
            },
            &at,
        )
    };
    let events = vec![ended];
    let books = Books::of(context);
    let provider_limit = daemon.runner.provider_limit;
    daemon
        .store
        .write(move |tx| {
            rows::finish_candidate(
                tx,
                &id,
                &Outcome {
                    status: status.as_str(),
                    postprocess: "none",
                    asset_id: None,
                    output_path: None,
                    request_id: None,
                    error_json,
                    at: &at,
                },
            )?;
            if let Some(cost) = &cost {
                books.insert_cost(tx, &id, cost, &at)?;
            }
            let mut events = events;
            events.extend(books.after_candidate(tx, provider_limit, &at)?);
            Ok::<_, StoreError>(((), events))
        })
        .await?;
    Ok(())
}

/// What the finishing transactions need to know about the run, owned so it can move into them.
#[derive(Clone)]
pub(crate) struct Books {
    project_id: String,
    project_slug: String,
    run_id: String,
    provider: String,
    model: String,
    job_index: u32,
    job_key: String,
    jobs: u32,
}

impl Books {
    pub(super) fn of(context: &Context) -> Books {
        Books {
            project_id: context.run.project_id.clone(),
            project_slug: context.run.project_slug.clone(),
            run_id: context.run.id.clone(),
            provider: context.plan.provider.clone(),
            model: context.plan.model.clone(),
            job_index: context.candidate.job_index,
            job_key: context.job.key.clone(),
            jobs: context.plan.jobs.len() as u32,
        }
    }

    fn insert_cost(
        &self,
        tx: &rusqlite::Connection,
        candidate_id: &str,
        cost: &Cost,
        at: &str,
    ) -> Result<(), StoreError> {
        rows::insert_cost(
            tx,
            &NewCost {
                project_id: &self.project_id,
                run_id: &self.run_id,
                candidate_id,
                provider: &self.provider,
                model: &self.model,
                operation: "image_generation",
                usd: cost.usd,
                source: cost.source,
                usage_json: cost
                    .usage
                    .and_then(|usage| serde_json::to_string(&usage).ok()),
                at,
            },
        )
    }

    /// `job.finished` when the candidate's job has nothing pending any more, and `run.progress`.
    pub(super) fn after_candidate(
        &self,
        tx: &rusqlite::Connection,
        provider_limit: usize,
        at: &str,
    ) -> Result<Vec<NewEvent>, StoreError> {
        let candidates = rows::candidates(tx, &self.run_id)?;
        let spent = rows::run_spent(tx, &self.run_id)?;
        let pending = |c: &&CandidateRow| is_pending(c);
        let mut events = Vec::new();
        let job: Vec<&CandidateRow> = candidates
            .iter()
            .filter(|c| c.job_index == self.job_index)
            .collect();
        if !job.iter().any(pending) {
            let succeeded: Vec<&&CandidateRow> = job
                .iter()
                .filter(|c| c.status == CandidateStatus::Succeeded.as_str())
                .collect();
            let failed_guard = |c: &&&CandidateRow| {
                c.qa_json
                    .as_deref()
                    .and_then(|qa| serde_json::from_str::<protocol::run::CandidateQa>(qa).ok())
                    .is_some_and(|qa| qa.verdict == protocol::qa::Verdict::Fail)
            };
            let status = if succeeded.is_empty() {
                JobStatus::Failed
            } else if succeeded.iter().all(failed_guard) {
                JobStatus::FailedOutputGuard
            } else {
                JobStatus::Done
            };
            events.push(self.event(
                &protocol::events::JobFinished {
                    run: self.run_id.clone(),
                    job: self.job_key.clone(),
                    status,
                },
                at,
            ));
        }
        let jobs_done = (0..self.jobs)
            .filter(|index| {
                !candidates
                    .iter()
                    .filter(|c| c.job_index == *index)
                    .any(|c| pending(&c))
            })
            .count();
        let count = |status: &str| candidates.iter().filter(|c| c.status == status).count() as u32;
        let remaining = candidates.iter().filter(pending).count();
        let progress = protocol::events::RunProgress {
            run: self.run_id.clone(),
            jobs: self.jobs,
            jobs_done: jobs_done as u32,
            candidates: candidates.len() as u32,
            succeeded: count("succeeded"),
            failed: count("failed") + count("unknown"),
            spent_usd: image_models::round_usd(spent),
            eta_secs: eta_secs(&candidates, remaining, provider_limit),
        };
        events.push(self.event(&progress, at));
        Ok(events)
    }

    /// The event of `payload`'s kind in the run's project.
    pub(super) fn event<T: EventData>(&self, payload: &T, at: &str) -> NewEvent {
        NewEvent::of(at.to_owned(), Some(self.project_slug.clone()), payload)
    }
}

/// Checks the answer, writes it with its provenance and records it.
pub(crate) async fn store_success(
    daemon: &Services,
    context: &Context,
    generated: Generated,
) -> Result<(), Problem> {
    let _local = daemon
        .runner
        .local
        .clone()
        .acquire_owned()
        .await
        .map_err(|err| Problem::new(ErrorKind::Internal, ErrorCode::Internal, err.to_string()))?;
    let cost = cost_of(context, generated.usage.as_ref());
    let info = match crate::files::images::inspect(&generated.bytes, daemon.max_image_pixels) {
        Ok(info) => info,
        Err(problem) => {
            let error = Problem::new(
                ErrorKind::Provider,
                ErrorCode::BadAnswer,
                format!("the provider's image is unusable: {problem}"),
            )
            .with_hint(super::decide::retry_hint(
                &context.run.id,
                "the provider billed this call; retrying the run tries again",
            ));
            return record_end(daemon, context, CandidateStatus::Failed, &error, Some(cost)).await;
        }
    };
    let mut provenance = png::Provenance::from([
        ("project", context.run.project_slug.clone()),
        ("run", context.run.id.clone()),
        ("job", context.job.key.clone()),
        ("candidate", context.candidate.id.clone()),
        ("candidate_index", context.candidate.index.to_string()),
        ("prompt_sha256", context.job.prompt_sha256.clone()),
        ("provider", context.plan.provider.clone()),
        ("model", context.plan.model.clone()),
        ("size", context.plan.size.clone()),
        ("quality", context.plan.quality.clone()),
        ("cost_usd", cost.usd.to_string()),
        ("cost_source", cost.source.to_owned()),
    ]);
    if let Some(request_id) = &generated.request_id {
        provenance.insert("request_id", request_id.clone());
    }
    if let Some(usage) = &cost.usage {
        provenance.insert("usage", serde_json::to_string(usage).unwrap_or_default());
    }
    let (bytes, rel_path) = if info.format == "png" {
        let tagged = png::with_provenance(generated.bytes, &provenance)
            .map_err(|err| Problem::new(ErrorKind::Internal, ErrorCode::Internal, err))?;
        (tagged, context.rel_path())
    } else {
        // Only PNG carries the provenance chunks; other formats keep their own extension.
        let rel = context.rel_path();
        let rel = format!("{}.{}", rel.trim_end_matches(".png"), info.extension);
        (generated.bytes, rel)
    };
    let root = context.root().to_owned();
    let stamp = daemon.clock.now();
    let write_rel = rel_path.clone();
    let written_bytes = bytes.clone();
    tokio::task::spawn_blocking(move || write::place(&root, &write_rel, &written_bytes, &stamp))
        .await
        .map_err(|err| Problem::new(ErrorKind::Internal, ErrorCode::Internal, err.to_string()))?
        .map_err(|err| {
            Problem::new(
                ErrorKind::Infra,
                ErrorCode::IoError,
                format!("writing the output {rel_path}: {err}"),
            )
            .with_hint("check that the project folder is writable and the disk is not full")
        })?;
    record_success(
        daemon,
        context,
        &bytes,
        info,
        rel_path,
        cost,
        generated.request_id,
    )
    .await
}

/// One transaction: the output asset, its lineage, the candidate's success and its cost event.
pub(crate) async fn record_success(
    daemon: &Services,
    context: &Context,
    bytes: &[u8],
    info: crate::files::images::ImageInfo,
    rel_path: String,
    cost: Cost,
    request_id: Option<String>,
) -> Result<(), Problem> {
    let sha256 = crate::runs::planner::hex_sha256(bytes);
    let at = daemon.clock.now();
    let id = context.candidate.id.clone();
    let books = Books::of(context);
    let scene_asset = context
        .job
        .input_images
        .first()
        .and_then(|image| image.asset.clone());
    let new_asset = NewAsset {
        id: uuid::Uuid::new_v4().to_string(),
        project_id: context.run.project_id.clone(),
        kind: AssetKind::Generated,
        rel_path: rel_path.clone(),
        sha256: sha256.clone(),
        width: info.width,
        height: info.height,
        format: info.format.to_owned(),
        mime: info.mime.to_owned(),
        bytes: bytes.len() as u64,
        original_name: rel_path.rsplit('/').next().unwrap_or(&rel_path).to_owned(),
        at: at.clone(),
    };
    let finished = event(
        context,
        &protocol::events::CandidateFinished {
            run: context.run.id.clone(),
            job: context.job.key.clone(),
            index: context.candidate.index,
            status: CandidateStatus::Succeeded,
            cost_usd: Some(cost.usd),
            output: Some(context.root().join(&rel_path).display().to_string()),
            error: None,
        },
        &at,
    );
    let provider_limit = daemon.runner.provider_limit;
    let has_chain = !context.plan.postprocess.is_empty();
    daemon
        .store
        .write(move |tx| {
            let asset = match asset_queries::find_by_sha(tx, &new_asset.project_id, &sha256)? {
                Some(existing) => existing,
                None => asset_queries::insert(tx, &new_asset)?.ok_or_else(|| {
                    StoreError::Corrupt(format!(
                        "output path {} is already an asset",
                        new_asset.rel_path
                    ))
                })?,
            };
            if let Some(scene) = &scene_asset
                && *scene != asset.id
            {
                match asset_queries::link(
                    tx,
                    &new_asset.project_id,
                    &asset.id,
                    scene,
                    Relation::DerivedFrom,
                    &at,
                ) {
                    Ok(_) | Err(StoreError::LinkExists) | Err(StoreError::AssetNotFound(_)) => {}
                    Err(err) => return Err(err),
                }
            }
            rows::finish_candidate(
                tx,
                &id,
                &Outcome {
                    status: "succeeded",
                    postprocess: if has_chain { "pending" } else { "none" },
                    asset_id: Some(&asset.id),
                    output_path: Some(&new_asset.rel_path),
                    request_id: request_id.as_deref(),
                    error_json: None,
                    at: &at,
                },
            )?;
            books.insert_cost(tx, &id, &cost, &at)?;
            let mut events = vec![finished];
            events.extend(books.after_candidate(tx, provider_limit, &at)?);
            Ok::<_, StoreError>(((), events))
        })
        .await?;
    Ok(())
}

/// Closes a run whose candidates are all settled, and rewrites its record.
pub async fn finish_run_if_done(daemon: &Services, run_id: &str) -> Result<(), Problem> {
    let id = run_id.to_owned();
    let at = daemon.clock.now();
    let finished = daemon
        .store
        .write(move |tx| {
            let run = rows::get_run(tx, &id)?;
            if !matches!(run.status.as_str(), "running" | "canceling") {
                return Ok::<_, StoreError>((None, Vec::new()));
            }
            let candidates = rows::candidates(tx, &id)?;
            if candidates.iter().any(is_pending) {
                return Ok((None, Vec::new()));
            }
            // A candidate whose chain failed keeps its paid image but is not fully done.
            let generated = candidates
                .iter()
                .filter(|c| c.status == CandidateStatus::Succeeded.as_str())
                .count();
            let complete = candidates
                .iter()
                .filter(|c| {
                    c.status == CandidateStatus::Succeeded.as_str() && c.postprocess != "failed"
                })
                .count();
            // Jobs without a candidate that may win (every output failed the QA guard) keep a
            // run from being done; a run where no job has one failed.
            let spent = rows::run_spent(tx, &id)?;
            let baselines = rows::baselines(tx, &run.project_id)?;
            let before = super::detail(&run, &candidates, spent, &baselines)?;
            let jobs_won = before
                .jobs
                .iter()
                .filter(|job| job.winner.is_some())
                .count();
            let status = if run.state()? == RunStatus::Canceling {
                RunStatus::Canceled
            } else if complete == candidates.len() && jobs_won == before.jobs.len() {
                RunStatus::Done
            } else if generated == 0
                || before
                    .jobs
                    .iter()
                    .all(|job| job.status == protocol::run::JobStatus::FailedOutputGuard)
            {
                RunStatus::Failed
            } else {
                RunStatus::Partial
            };
            rows::set_run_status(tx, &id, status, Some(&at))?;
            let run = rows::get_run(tx, &id)?;
            let baselines = rows::baselines(tx, &run.project_id)?;
            let detail = super::detail(&run, &candidates, spent, &baselines)?;
            let event = NewEvent::of(
                at.clone(),
                Some(run.project_slug.clone()),
                &protocol::events::RunFinished {
                    run: id.clone(),
                    status,
                    spent_usd: image_models::round_usd(spent),
                },
            );
            let mut events = vec![event];
            events.extend(crate::instructions::after_run_finished(
                tx, &id, status, spent, &at,
            )?);
            Ok((Some(detail), events))
        })
        .await?;
    if let Some(detail) = finished {
        let written_at = daemon.clock.now();
        let written = tokio::task::spawn_blocking(move || super::write_record(&detail, written_at))
            .await
            .map_err(|err| {
                Problem::new(ErrorKind::Internal, ErrorCode::Internal, err.to_string())
            })?;
        if let Err(err) = written {
            tracing::error!(run = %run_id, message = %err.message, "could not write the run record");
        }
    }
    Ok(())
}

/// Whether a candidate still has work: a call to make or finish, a chain to run, or an output
/// for the QA guard to check.
fn is_pending(candidate: &CandidateRow) -> bool {
    let waiting = [CandidateStatus::Planned, CandidateStatus::Calling];
    let awaiting_review = candidate.status == CandidateStatus::Succeeded.as_str()
        && matches!(candidate.postprocess.as_str(), "none" | "done")
        && candidate.qa_json.is_none();
    waiting
        .iter()
        .any(|status| candidate.status == status.as_str())
        || candidate.postprocess == "pending"
        || awaiting_review
}

/// Seconds left: the mean time of the finished calls, times the calls left, spread over the
/// provider-call slots.
fn eta_secs(candidates: &[CandidateRow], remaining: usize, slots: usize) -> Option<u64> {
    let parse = |at: &str| {
        time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339).ok()
    };
    let durations: Vec<f64> = candidates
        .iter()
        .filter_map(|c| {
            let started = parse(c.started_at.as_deref()?)?;
            let finished = parse(c.finished_at.as_deref()?)?;
            Some((finished - started).as_seconds_f64().max(0.0))
        })
        .collect();
    if durations.is_empty() {
        return None;
    }
    let mean = durations.iter().sum::<f64>() / durations.len() as f64;
    let waves = remaining.div_ceil(slots.max(1));
    Some((mean * waves as f64).ceil() as u64)
}
