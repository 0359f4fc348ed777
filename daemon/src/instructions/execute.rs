//! Carrying out a queued instruction: a `pipeline_run` becomes a run (created, linked to the
//! instruction, then started with the approved cost), a `postprocess` runs its local step in the
//! background, a `custom` one is acknowledged. A run's end settles its instruction in the
//! transaction that closes the run ([`after_run_finished`]); [`recover`] picks up what a restart
//! interrupted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use tokio_util::sync::CancellationToken;

use kroma_protocol as protocol;
use protocol::instruction::{InstructionOutcome, InstructionPayload, InstructionState};
use protocol::postprocess::StepReport;
use protocol::run::{Plan, RunStatus};
use protocol::{ErrorCode, ErrorKind};

use super::state::Step;
use super::{apply, stored_plan};
use crate::Daemon;
use crate::error::Problem;
use crate::store::instructions::{self as rows, Change, InstructionRow};
use crate::store::{NewEvent, StoreError};

/// Carries out instruction `id`, which must be `queued`. Errors of the work itself are recorded
/// on the instruction (it fails); only a failure to record that comes back as `Err`.
pub async fn execute(daemon: Arc<Daemon>, id: String) -> Result<(), Problem> {
    let row = {
        let id = id.clone();
        daemon.store.read(move |conn| rows::get(conn, &id)).await?
    };
    let Some(row) = row else {
        return Err(super::not_found(&id));
    };
    if row.state()? != InstructionState::Queued {
        return Ok(());
    }
    let payload: InstructionPayload = serde_json::from_str(&row.payload_json)
        .map_err(|err| Problem::from(StoreError::Corrupt(format!("instruction {id}: {err}"))))?;
    match payload {
        InstructionPayload::PipelineRun(params) => {
            if let Err(err) = start_run(&daemon, &row, *params).await {
                fail(&daemon, &id, &err).await?;
            }
            Ok(())
        }
        InstructionPayload::Postprocess(request) => {
            let worker = daemon.clone();
            spawn_local(&daemon, id, async move {
                let report = run_step(worker, request).await?;
                Ok(InstructionOutcome::Postprocess { report })
            })
            .await
        }
        InstructionPayload::QaCheck(mut params) => {
            // An asset is looked up in the instruction's own project.
            if params.asset.is_some() {
                params.project = Some(row.project_slug.clone());
            }
            let worker = daemon.clone();
            spawn_local(&daemon, id, async move {
                let report = crate::api::qa::check(worker, params).await?;
                Ok(InstructionOutcome::QaCheck { report })
            })
            .await
        }
        InstructionPayload::Export(params) => {
            let worker = daemon.clone();
            spawn_local(&daemon, id, async move {
                let export = crate::api::exports::create(worker, params).await?;
                Ok(InstructionOutcome::Export { export })
            })
            .await
        }
        InstructionPayload::StorageSync(params) => {
            // Checked when proposed, and again here: an agent's sync never deletes.
            let params = protocol::storage::SyncParams {
                delete: false,
                confirmed_deletes: Some(Vec::new()),
                ..params
            };
            let worker = daemon.clone();
            spawn_local(&daemon, id, async move {
                let report = crate::api::storage::sync(worker, params).await?;
                Ok(InstructionOutcome::StorageSync { report })
            })
            .await
        }
        InstructionPayload::Custom(_) => {
            move_to(&daemon, &id, Step::Start, Change::default(), None).await?;
            let change = Change {
                outcome_json: Some(json(&InstructionOutcome::Acknowledged)?),
                ..Change::default()
            };
            move_to(&daemon, &id, Step::Finish, change, None).await
        }
    }
}

/// The stops of instructions whose local work runs, by id: `instruction.cancel` stops it.
fn running_local() -> std::sync::MutexGuard<'static, HashMap<String, CancellationToken>> {
    static RUNNING: OnceLock<Mutex<HashMap<String, CancellationToken>>> = OnceLock::new();
    RUNNING
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Stops instruction `id`'s local work, if it runs here; answers whether it did. The work is
/// dropped where it stands: files already written stay, a sync's multipart uploads stay
/// journaled for the next sync. The caller records the cancel.
pub fn stop_local(id: &str) -> bool {
    match running_local().remove(id) {
        Some(stop) => {
            stop.cancel();
            true
        }
        None => false,
    }
}

/// Starts local work for instruction `id` in the background: it is `running` at once, and
/// `done` with the work's outcome (`failed` when a local step could process no file) or
/// `failed` with its error when the work ends; [`stop_local`] stops it.
async fn spawn_local(
    daemon: &Arc<Daemon>,
    id: String,
    work: impl std::future::Future<Output = Result<InstructionOutcome, Problem>> + Send + 'static,
) -> Result<(), Problem> {
    move_to(daemon, &id, Step::Start, Change::default(), None).await?;
    let stop = CancellationToken::new();
    running_local().insert(id.clone(), stop.clone());
    let worker = daemon.clone();
    daemon.runner.spawn(async move {
        let ended = tokio::select! {
            ended = work => Some(ended),
            _ = stop.cancelled() => None,
        };
        running_local().remove(&id);
        let settled = match ended {
            // Canceled: `instruction.cancel` records it.
            None => Ok(()),
            Some(Ok(outcome)) => finish_local(&worker, &id, outcome).await,
            Some(Err(err)) => fail(&worker, &id, &err).await,
        };
        if let Err(err) = settled {
            tracing::error!(instruction = %id, message = %err.message, "could not record the instruction's end");
        }
    });
    Ok(())
}

/// Picks up instructions a restart interrupted: queued ones are carried out (a run already
/// linked is started, never created twice), local work that was running is failed (its outputs
/// so far are kept; running it again writes new files).
pub async fn recover(daemon: Arc<Daemon>) {
    let unfinished = match daemon.store.read(rows::unfinished).await {
        Ok(rows) => rows,
        Err(err) => {
            tracing::error!(%err, "could not read the unfinished instructions");
            return;
        }
    };
    for row in unfinished {
        let outcome = match (row.state(), row.run_id.as_deref()) {
            (Ok(InstructionState::Queued), _) => execute(daemon.clone(), row.id.clone()).await,
            (Ok(InstructionState::Running), None) => {
                let err = Problem::new(
                    ErrorKind::Infra,
                    ErrorCode::Stopped,
                    "kromad stopped while the instruction's local work ran; the files written so far are kept",
                );
                fail(&daemon, &row.id, &err).await
            }
            (Ok(InstructionState::Running), Some(run_id)) => {
                settle_if_run_ended(&daemon, run_id).await
            }
            _ => Ok(()),
        };
        if let Err(err) = outcome {
            tracing::error!(instruction = %row.id, message = %err.message, "could not pick the instruction up again");
        }
    }
}

/// Settles the instruction that started `run_id`, in the transaction that closes the run.
pub fn after_run_finished(
    tx: &rusqlite::Transaction,
    run_id: &str,
    status: RunStatus,
    spent_usd: f64,
    at: &str,
) -> Result<Option<NewEvent>, StoreError> {
    let Some(row) = rows::by_run(tx, run_id)? else {
        return Ok(None);
    };
    let from = row.state()?;
    let step = match status {
        RunStatus::Done | RunStatus::Partial => Step::Finish,
        RunStatus::Canceled => Step::Cancel,
        _ => Step::Fail,
    };
    let Ok(to) = super::state::next(from, step) else {
        return Ok(None);
    };
    let outcome = InstructionOutcome::Run {
        run: run_id.to_owned(),
        status,
        spent_usd,
    };
    let outcome = serde_json::to_string(&outcome)
        .map_err(|err| StoreError::Corrupt(format!("instruction outcome: {err}")))?;
    let change = Change {
        spent_usd: Some(spent_usd),
        outcome_json: Some(outcome),
        ..Change::default()
    };
    if !rows::transition(tx, &row.id, from, to, &change, at)? {
        return Ok(None);
    }
    let reason = format!("its run ended {}", status.as_str());
    Ok(Some(super::changed_event(
        at,
        &row,
        Some(from),
        to,
        Some(&reason),
    )))
}

/// Creates the run (once), links it, checks it is still the plan that was approved, starts it.
async fn start_run(
    daemon: &Arc<Daemon>,
    row: &InstructionRow,
    params: protocol::run::PlanParams,
) -> Result<(), Problem> {
    let approved_max = row.approved_max_usd.unwrap_or(row.max_cost_usd);
    let run_id = match &row.run_id {
        Some(run_id) => run_id.clone(),
        None => {
            let detail = crate::api::runs::create(
                daemon.clone(),
                protocol::run::CreateParams {
                    plan: params,
                    dry_run: false,
                },
            )
            .await?;
            if let Some(reason) = plan_changed(row, &detail.plan, approved_max)? {
                let plan_json = crate::runs::stored::StoredPlan::from(&detail.plan)
                    .to_json()
                    .map_err(|err| {
                        Problem::new(ErrorKind::Internal, ErrorCode::Internal, err.to_string())
                    })?;
                reconfirm(daemon, &row.id, plan_json, detail.plan.cost.max_usd, reason).await?;
                return Ok(());
            }
            let id = row.id.clone();
            let run_id = detail.run.id.clone();
            let at = daemon.clock.now();
            daemon
                .store
                .write(move |tx| {
                    rows::link_run(tx, &id, &run_id, &at)?;
                    Ok::<_, Problem>(((), Vec::new()))
                })
                .await?;
            detail.run.id
        }
    };
    let started = crate::api::runs::start(
        daemon.clone(),
        protocol::run::StartParams {
            plan_id: run_id.clone(),
            confirm_cost_usd: approved_max,
        },
    )
    .await;
    match started {
        Ok(_) => {}
        // Started before a restart: the instruction only needs to say so.
        Err(err) if err.code == ErrorCode::AlreadyStarted => {}
        Err(err) => return Err(err),
    }
    let change = Change {
        run_id: Some(run_id.clone()),
        ..Change::default()
    };
    move_to(daemon, &row.id, Step::Start, change, None).await?;
    // A run that ended before the instruction said it started settles it now.
    settle_if_run_ended(daemon, &run_id).await
}

/// Why the plan made now is not the one approved, if it is not: a dearer maximum, another
/// model or provider, other jobs.
fn plan_changed(
    row: &InstructionRow,
    now: &Plan,
    approved_max: f64,
) -> Result<Option<String>, Problem> {
    if now.cost.max_usd > approved_max + 1e-9 {
        return Ok(Some(format!(
            "its maximum cost rose from ${approved_max:.6} to ${:.6} since it was approved",
            now.cost.max_usd
        )));
    }
    let Some(json) = row.plan_json.as_deref() else {
        return Ok(None);
    };
    let before = stored_plan(json).map_err(|err| {
        Problem::from(StoreError::Corrupt(format!(
            "instruction {}: {err}",
            row.id
        )))
    })?;
    let same = before.provider == now.provider
        && before.model == now.model
        && before.size == now.size
        && before.quality == now.quality
        && before.candidates == now.candidates
        && before.jobs.len() == now.jobs.len()
        && before
            .jobs
            .iter()
            .zip(&now.jobs)
            .all(|(before, now)| same_job(before, now));
    Ok((!same).then(|| {
        "its plan changed since it was approved (settings, knowledge or files)".to_owned()
    }))
}

/// Whether a job is the one approved. Scenes named by path become assets when the run is
/// created, so their ids and paths may differ; the prompt, the cost and each input's role (and
/// its content, where both plans know it) may not.
fn same_job(before: &protocol::run::PlannedJob, now: &protocol::run::PlannedJob) -> bool {
    before.key == now.key
        && before.scene == now.scene
        && before.prompt_sha256 == now.prompt_sha256
        && before.endpoint == now.endpoint
        && before.candidates == now.candidates
        && (before.max_cost_usd - now.max_cost_usd).abs() < 1e-9
        && before.input_images.len() == now.input_images.len()
        && before
            .input_images
            .iter()
            .zip(&now.input_images)
            .all(|(before, now)| {
                before.role == now.role
                    && match (&before.sha256, &now.sha256) {
                        (Some(before), Some(now)) => before == now,
                        _ => true,
                    }
            })
}

/// Puts the instruction back before a person with its new plan and cost.
async fn reconfirm(
    daemon: &Daemon,
    id: &str,
    plan_json: String,
    max_cost_usd: f64,
    reason: String,
) -> Result<(), Problem> {
    let id = id.to_owned();
    let at = daemon.clock.now();
    daemon
        .store
        .write(move |tx| {
            rows::replan(tx, &id, &plan_json, max_cost_usd)?;
            let change = Change {
                waiting_for: Some(Some(reason.clone())),
                ..Change::default()
            };
            let (_, event) = apply(tx, &id, Step::Reconfirm, &change, Some(&reason), &at)?;
            Ok::<_, Problem>(((), vec![event]))
        })
        .await
}

async fn run_step(
    daemon: Arc<Daemon>,
    request: protocol::instruction::PostprocessRequest,
) -> Result<StepReport, Problem> {
    use protocol::instruction::PostprocessRequest as Request;
    match request {
        Request::Color(params) => crate::api::postprocess::color(daemon, params).await,
        Request::BgRemove(params) => crate::api::postprocess::bg_remove(daemon, params).await,
        Request::Upscale(params) => crate::api::postprocess::upscale(daemon, params).await,
    }
}

/// A local step ended: done when at least one file was written, failed otherwise.
async fn finish_local(
    daemon: &Daemon,
    id: &str,
    outcome: InstructionOutcome,
) -> Result<(), Problem> {
    let wrote = !matches!(&outcome, InstructionOutcome::Postprocess { report } if report.done == 0);
    let change = Change {
        outcome_json: Some(json(&outcome)?),
        spent_usd: Some(0.0),
        ..Change::default()
    };
    let step = if wrote { Step::Finish } else { Step::Fail };
    let reason = (!wrote).then_some("no file could be processed");
    move_to(daemon, id, step, change, reason).await
}

/// Records why the instruction failed.
async fn fail(daemon: &Daemon, id: &str, err: &Problem) -> Result<(), Problem> {
    tracing::warn!(instruction = %id, code = %err.code, message = %err.message, "instruction failed");
    let change = Change {
        error_json: Some(json(&err.to_data())?),
        ..Change::default()
    };
    move_to(daemon, id, Step::Fail, change, Some(&err.message)).await
}

async fn move_to(
    daemon: &Daemon,
    id: &str,
    step: Step,
    change: Change,
    reason: Option<&str>,
) -> Result<(), Problem> {
    let id = id.to_owned();
    let at = daemon.clock.now();
    let reason = reason.map(str::to_owned);
    daemon
        .store
        .write(move |tx| {
            let (_, event) = apply(tx, &id, step, &change, reason.as_deref(), &at)?;
            Ok::<_, Problem>(((), vec![event]))
        })
        .await
}

/// Settles the instruction of a run that already ended (before the instruction said it
/// started, or before a restart).
async fn settle_if_run_ended(daemon: &Daemon, run_id: &str) -> Result<(), Problem> {
    let run_id = run_id.to_owned();
    let at = daemon.clock.now();
    daemon
        .store
        .write(move |tx| {
            let run = crate::store::runs::get_run(tx, &run_id)?;
            let status = run.state()?;
            if !matches!(
                status,
                RunStatus::Done | RunStatus::Partial | RunStatus::Failed | RunStatus::Canceled
            ) {
                return Ok::<_, Problem>(((), Vec::new()));
            }
            let spent = crate::store::runs::run_spent(tx, &run_id)?;
            let event = after_run_finished(tx, &run_id, status, spent, &at)?;
            Ok(((), event.into_iter().collect()))
        })
        .await
}

fn json<T: serde::Serialize>(value: &T) -> Result<String, Problem> {
    serde_json::to_string(value)
        .map_err(|err| Problem::new(ErrorKind::Internal, ErrorCode::Internal, err.to_string()))
}
