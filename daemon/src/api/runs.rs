//! `run.*`, `settings.effective`, `image_model.list` and `cost.summary` handlers.
//!
//! The handlers gather what planning needs (settings files, project knowledge, assets, scene
//! files), hand it to the pure planner, and own the spend gates: `run.start` and `run.retry`
//! check the confirmation and reserve the budgets in the same transaction that starts the run.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use kroma_protocol as protocol;
use protocol::run::{CandidateStatus, Plan, PlanParams, RunDetail, RunStatus, RunSummary};
use protocol::{Action, ErrorCode, ErrorKind};

use super::find_project;
use crate::error::{Hint, Problem};
use crate::providers::image_models as models;
use crate::runs::gates::{check_budgets, check_confirmation, parse_confirmation, spend_gate};
use crate::runs::inputs::{make_plan, resolve_settings};
use crate::runs::planner::{self};
use crate::runs::settings::{self};
use crate::store::runs::{self as rows, NewCandidate, RunRow};
use crate::store::{NewEvent, StoreError};
use crate::{Daemon, clock, runs};

pub async fn plan(daemon: Arc<Daemon>, params: PlanParams) -> Result<Plan, Problem> {
    let project = find_project(&daemon, &params.project).await?;
    make_plan(&daemon, &project, &params, false).await
}

pub async fn create(
    daemon: Arc<Daemon>,
    params: protocol::run::CreateParams,
) -> Result<RunDetail, Problem> {
    let project = find_project(&daemon, &params.plan.project).await?;
    let plan = make_plan(&daemon, &project, &params.plan, true).await?;
    let id = uuid::Uuid::new_v4().to_string();
    let at = daemon.clock.now();
    let status = if params.dry_run {
        RunStatus::DryRun
    } else {
        RunStatus::Planned
    };
    let record = crate::projects::layout::run_record(Path::new(&project.root), &id);
    let run = RunRow {
        id: id.clone(),
        project_id: project.id.clone(),
        project_slug: project.slug.clone(),
        project_root: project.root.clone(),
        status: status.as_str().to_owned(),
        stage: plan.stage.as_str().to_owned(),
        model: plan.model.clone(),
        provider: plan.provider.clone(),
        plan_json: runs::stored::StoredPlan::from(&plan)
            .to_json()
            .map_err(|err| {
                Problem::new(
                    ErrorKind::Internal,
                    ErrorCode::Internal,
                    format!("plan: {err}"),
                )
            })?,
        max_cost_usd: plan.cost.max_usd,
        confirmed_cost_usd: None,
        record_path: record.display().to_string(),
        created_at: at.clone(),
        started_at: None,
        finished_at: None,
    };
    let mut candidates = Vec::new();
    for (job_index, job) in plan.jobs.iter().enumerate() {
        for index in 1..=job.candidates {
            candidates.push(NewCandidate {
                id: uuid::Uuid::new_v4().to_string(),
                job_index: job_index as u32,
                job_key: job.key.clone(),
                index,
                idempotency_key: uuid::Uuid::new_v4().to_string(),
                reserved_usd: planner::per_call_usd(job),
            });
        }
    }
    let jobs = plan.jobs.clone();
    let event = NewEvent::of(
        at.clone(),
        Some(project.slug.clone()),
        &protocol::events::RunCreated {
            run: id.clone(),
            status,
            jobs: plan.jobs.len() as u32,
            max_cost_usd: plan.cost.max_usd,
        },
    );
    let detail = daemon
        .store
        .write(move |tx| {
            rows::insert_run(tx, &run, &jobs, &candidates)?;
            let candidates = rows::candidates(tx, &run.id)?;
            let detail = runs::detail(&run, &candidates, 0.0, &[])?;
            Ok::<_, StoreError>((detail, vec![event]))
        })
        .await?;
    write_record(&daemon, detail.clone()).await?;
    Ok(detail)
}

async fn write_record(daemon: &Daemon, detail: RunDetail) -> Result<(), Problem> {
    let at = daemon.clock.now();
    tokio::task::spawn_blocking(move || runs::write_record(&detail, at))
        .await
        .map_err(|err| Problem::new(ErrorKind::Internal, ErrorCode::Internal, err.to_string()))?
}

pub(super) async fn load_detail(daemon: &Daemon, run_id: String) -> Result<RunDetail, Problem> {
    Ok(daemon
        .store
        .read(move |conn| {
            let run = rows::get_run(conn, &run_id)?;
            let candidates = rows::candidates(conn, &run_id)?;
            let spent = rows::run_spent(conn, &run_id)?;
            let baselines = crate::store::runs::baselines(conn, &run.project_id)?;
            runs::detail(&run, &candidates, spent, &baselines)
        })
        .await?)
}

pub(super) fn parse_run_id(id: &str) -> Result<String, Problem> {
    uuid::Uuid::parse_str(id)
        .map(|uuid| uuid.to_string())
        .map_err(|_| {
            Problem::validation(
                ErrorCode::InvalidRun,
                format!("`{id}` is not a run id (a UUID)"),
            )
            .with_hint(Hint::new(
                "the run list shows the ids",
                Action::call::<protocol::run::List>([], &[]),
            ))
        })
}

pub async fn show(
    daemon: Arc<Daemon>,
    params: protocol::run::RunRef,
) -> Result<RunDetail, Problem> {
    load_detail(&daemon, parse_run_id(&params.run)?).await
}

pub async fn list(
    daemon: Arc<Daemon>,
    params: protocol::run::ListParams,
) -> Result<protocol::run::RunList, Problem> {
    let limit = match params.limit.unwrap_or(50) {
        limit @ 1..=1000 => limit,
        _ => {
            return Err(Problem::validation(
                ErrorCode::InvalidLimit,
                "limit must be between 1 and 1000",
            ));
        }
    };
    let project_id = match &params.project {
        Some(slug) => Some(find_project(&daemon, slug).await?.id),
        None => None,
    };
    let status = params.status.map(|status| status.as_str().to_owned());
    let runs = daemon
        .store
        .read(move |conn| {
            rows::list_runs(conn, project_id.as_deref(), status.as_deref(), limit)?
                .iter()
                .map(|run| {
                    let candidates = rows::candidates(conn, &run.id)?;
                    let spent = rows::run_spent(conn, &run.id)?;
                    runs::summary(run, &candidates, spent)
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .await?;
    Ok(protocol::run::RunList { runs })
}

pub async fn start(
    daemon: Arc<Daemon>,
    params: protocol::run::StartParams,
) -> Result<RunSummary, Problem> {
    let id = parse_run_id(&params.plan_id)?;
    let confirmed = parse_confirmation(params.confirm_cost_usd)?;
    let detail = load_detail(&daemon, id.clone()).await?;
    match detail.run.status {
        RunStatus::Planned => {}
        RunStatus::DryRun => {
            return Err(Problem::new(
                ErrorKind::Conflict,
                ErrorCode::DryRun,
                "a dry run is a record only and cannot be started",
            )
            .with_hint("create the run again without --dry-run"));
        }
        other => {
            return Err(Problem::new(
                ErrorKind::Conflict,
                ErrorCode::AlreadyStarted,
                format!("run {id} is {}, not planned", other.as_str()),
            )
            .with_hint(Hint::new(
                "retrying the run calls again for what did not succeed",
                crate::runs::decide::retry_action(&id),
            )));
        }
    }
    let max = detail.plan.cost.max_usd;
    check_confirmation(
        confirmed,
        max,
        "the run",
        Action::call::<protocol::run::Start>(
            [("plan_id", id.as_str().into())],
            &["confirm_cost_usd"],
        ),
    )?;
    let budget = spend_gate(&daemon, &detail).await?;
    let at = daemon.clock.now();
    let summary = daemon
        .store
        .write(move |tx| {
            let run = rows::get_run(tx, &id)?;
            if run.status != "planned" {
                return Err(Problem::new(
                    ErrorKind::Conflict,
                    ErrorCode::AlreadyStarted,
                    format!("run {id} was started meanwhile"),
                ));
            }
            check_budgets(tx, &run.project_id, &budget, run.max_cost_usd, &at[..10])?;
            rows::start_run(tx, &id, confirmed, &at)?;
            let run = rows::get_run(tx, &id)?;
            let candidates = rows::candidates(tx, &id)?;
            let summary = runs::summary(&run, &candidates, 0.0)?;
            let event = NewEvent::of(
                at.clone(),
                Some(run.project_slug.clone()),
                &protocol::events::RunStarted {
                    run: id.clone(),
                    retry: false,
                    candidates: candidates.len() as u32,
                    chains: None,
                    confirmed_cost_usd: confirmed,
                    max_cost_usd: run.max_cost_usd,
                },
            );
            Ok::<_, Problem>((summary, vec![event]))
        })
        .await?;
    daemon.runner.wake();
    Ok(summary)
}

pub async fn cancel(
    daemon: Arc<Daemon>,
    params: protocol::run::RunRef,
) -> Result<RunSummary, Problem> {
    let id = parse_run_id(&params.run)?;
    let at = daemon.clock.now();
    let run_id = id.clone();
    daemon
        .store
        .write(move |tx| {
            let run = rows::get_run(tx, &run_id)?;
            match run.state()? {
                RunStatus::Planned => {
                    rows::cancel_planned(tx, &run_id, &at)?;
                    rows::set_run_status(tx, &run_id, RunStatus::Canceled, Some(&at))?;
                }
                RunStatus::Running => {
                    rows::cancel_planned(tx, &run_id, &at)?;
                    rows::set_run_status(tx, &run_id, RunStatus::Canceling, None)?;
                }
                RunStatus::Canceling => {}
                other => {
                    let other = other.as_str();
                    return Err(Problem::new(
                        ErrorKind::Conflict,
                        ErrorCode::NotCancelable,
                        format!(
                            "run {run_id} is {other}; only planned or running runs can be canceled"
                        ),
                    ));
                }
            }
            Ok::<_, Problem>(((), Vec::new()))
        })
        .await?;
    // Closes the run now if nothing is in flight, else when the last call is recorded.
    crate::runs::outcomes::finish_run_if_done(&daemon, &id).await?;
    let detail = load_detail(&daemon, id).await?;
    if detail.run.status == RunStatus::Canceled {
        write_record(&daemon, detail.clone()).await?;
    }
    Ok(detail.run)
}

pub async fn retry(
    daemon: Arc<Daemon>,
    params: protocol::run::RetryParams,
) -> Result<RunSummary, Problem> {
    let id = parse_run_id(&params.run)?;
    let confirmed = parse_confirmation(params.confirm_cost_usd)?;
    let detail = load_detail(&daemon, id.clone()).await?;
    if !matches!(
        detail.run.status,
        RunStatus::Done | RunStatus::Partial | RunStatus::Failed | RunStatus::Canceled
    ) {
        return Err(Problem::new(
            ErrorKind::Conflict,
            ErrorCode::NotRetryable,
            format!(
                "run {id} is {}; retry a finished run",
                detail.run.status.as_str()
            ),
        )
        .with_hint(Hint::new(
            "wait for the run to finish, or cancel it first",
            Action::call::<protocol::run::Show>([("run", id.as_str().into())], &[]),
        )));
    }
    if params.only_drifted && params.only_failed {
        return Err(Problem::validation(
            ErrorCode::InvalidOptions,
            "only_failed and only_drifted exclude each other",
        ));
    }
    if params.only_drifted {
        return super::review::retry_drifted(daemon, id, confirmed, detail).await;
    }
    let statuses: &'static [&'static str] = if params.only_failed {
        &["failed"]
    } else {
        &["failed", "unknown", "canceled"]
    };
    let per_call: Vec<f64> = detail.plan.jobs.iter().map(planner::per_call_usd).collect();
    let retried: Vec<(u32, u32)> = detail
        .jobs
        .iter()
        .enumerate()
        .flat_map(|(job_index, job)| {
            job.candidates
                .iter()
                .filter(|c| statuses.contains(&c.status.as_str()))
                .map(move |c| (job_index as u32, c.index))
        })
        .collect();
    // Chains that failed on a generated image run again too: that costs nothing.
    let chains = detail
        .jobs
        .iter()
        .flat_map(|job| &job.candidates)
        .filter(|c| {
            c.status == CandidateStatus::Succeeded && c.postprocess.as_deref() == Some("failed")
        })
        .count();
    if retried.is_empty() && chains == 0 {
        return Err(Problem::new(
            ErrorKind::Conflict,
            ErrorCode::NothingToRetry,
            format!(
                "run {id} has no {} candidates and no failed post-process chain",
                statuses.join(" or ")
            ),
        ));
    }
    let max = models::round_usd(retried.iter().map(|(job, _)| per_call[*job as usize]).sum());
    check_confirmation(
        confirmed,
        max,
        &format!("retrying {} calls", retried.len()),
        Action::call::<protocol::run::Retry>(
            [("run", id.as_str().into())]
                .into_iter()
                .chain(params.only_failed.then(|| ("only_failed", true.into()))),
            &["confirm_cost_usd"],
        ),
    )?;
    // Chains alone spend nothing: no key, model or budget check for them.
    let budget = if retried.is_empty() {
        settings::Budget::default()
    } else {
        spend_gate(&daemon, &detail).await?
    };
    let at = daemon.clock.now();
    let run_id = id.clone();
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
            check_budgets(tx, &run.project_id, &budget, max, &at[..10])?;
            let reset = rows::reset_for_retry(tx, &run_id, statuses, |job| per_call[job as usize])?;
            let chains = rows::reset_failed_chains(tx, &run_id)?;
            let restart = Restart {
                run_id: &run_id,
                confirmed,
                max,
                candidates: reset.len() as u32,
                chains: Some(chains.len() as u32),
                at: &at,
            };
            let (summary, event) = restart_for_retry(tx, &restart)?;
            Ok::<_, Problem>(((summary, chains), vec![event]))
        })
        .await?;
    let (summary, chains) = summary;
    for candidate in chains {
        daemon.runner.run_chain(daemon.services.clone(), candidate);
    }
    daemon.runner.wake();
    Ok(summary)
}

/// A retry about to start: the run, what the person confirmed, and what is called again.
pub(super) struct Restart<'a> {
    pub(super) run_id: &'a str,
    pub(super) confirmed: f64,
    pub(super) max: f64,
    pub(super) candidates: u32,
    /// Failed chains run again, when the retry resets them.
    pub(super) chains: Option<u32>,
    pub(super) at: &'a str,
}

/// Starts a retry whose candidates are reset, in the caller's transaction: summary and event.
pub(super) fn restart_for_retry(
    tx: &rusqlite::Transaction,
    restart: &Restart<'_>,
) -> Result<(RunSummary, NewEvent), StoreError> {
    rows::start_run(tx, restart.run_id, restart.confirmed, restart.at)?;
    let run = rows::get_run(tx, restart.run_id)?;
    let candidates = rows::candidates(tx, restart.run_id)?;
    let spent = rows::run_spent(tx, restart.run_id)?;
    let summary = runs::summary(&run, &candidates, spent)?;
    let event = NewEvent::of(
        restart.at.to_owned(),
        Some(run.project_slug.clone()),
        &protocol::events::RunStarted {
            run: restart.run_id.to_owned(),
            retry: true,
            candidates: restart.candidates,
            chains: restart.chains,
            confirmed_cost_usd: restart.confirmed,
            max_cost_usd: restart.max,
        },
    );
    Ok((summary, event))
}

pub async fn settings_effective(
    daemon: Arc<Daemon>,
    params: protocol::settings::EffectiveParams,
) -> Result<protocol::settings::EffectiveSettings, Problem> {
    let root = match &params.project {
        Some(slug) => Some(PathBuf::from(find_project(&daemon, slug).await?.root)),
        None => None,
    };
    let (resolved, files) = resolve_settings(&daemon, root, None).await?;
    Ok(protocol::settings::EffectiveSettings {
        settings: resolved.entries(),
        files,
    })
}

pub async fn model_list(
    daemon: Arc<Daemon>,
    params: protocol::image_model::ListParams,
) -> Result<protocol::image_model::ModelList, Problem> {
    if let Some(name) = &params.refresh {
        let lookup = name.clone();
        let provider = daemon
            .store
            .read(move |conn| crate::store::providers::get(conn, &lookup))
            .await?;
        let secrets = daemon.secrets.get().await;
        let secret = provider.secret_name.clone();
        let key = tokio::task::spawn_blocking(move || secrets.get(&secret))
            .await
            .map_err(|err| Problem::new(ErrorKind::Internal, ErrorCode::Internal, err.to_string()))?
            .map_err(|err| {
                Problem::new(
                    ErrorKind::Provider,
                    ErrorCode::NoKey,
                    format!("the key of provider `{name}` cannot be read: {err}"),
                )
                .with_hint(Hint::new(
                    format!("store the key in secret `{}`", provider.secret_name),
                    Action::call::<protocol::secret::Set>(
                        [("name", provider.secret_name.as_str().into())],
                        &["value"],
                    ),
                ))
            })?
            .0;
        let account = crate::providers::Account {
            name: &provider.name,
            base_url: &provider.base_url,
            organization: provider.organization.as_deref(),
        };
        let listed = crate::providers::list_models(
            daemon.http()?,
            &account,
            &key,
            daemon.secrets.scrubber(),
        )
        .await
        .map_err(|message| {
            Problem::new(ErrorKind::Provider, ErrorCode::ProviderUnreachable, message).with_hint(
                Hint::new(
                    format!("check provider `{name}`"),
                    Action::call::<protocol::provider::Check>(
                        [("name", name.as_str().into())],
                        &[],
                    ),
                ),
            )
        })?;
        let at = daemon.clock.now();
        let provider_name = provider.name.clone();
        daemon
            .store
            .write(move |tx| {
                rows::put_reported_models(tx, &provider_name, &listed, &at)?;
                Ok::<_, StoreError>(((), Vec::new()))
            })
            .await?;
    }
    let (resolved, _) = resolve_settings(&daemon, None, None).await?;
    let reported = daemon.store.read(rows::reported_models).await?;
    let today = daemon.clock.today();
    Ok(protocol::image_model::ModelList {
        models: models::list(&resolved.settings, &reported, &today),
        today,
    })
}

/// `YYYY-MM-DD` or an RFC 3339 time, as the `at >= since` bound.
fn parse_since(since: &str) -> Result<String, Problem> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(at) = time::OffsetDateTime::parse(since, &Rfc3339) {
        return Ok(clock::format(at));
    }
    let date_format = time::macros::format_description!("[year]-[month]-[day]");
    if let Ok(date) = time::Date::parse(since, &date_format) {
        return Ok(clock::format(date.midnight().assume_utc()));
    }
    Err(Problem::validation(
        ErrorCode::InvalidSince,
        format!("`{since}` is neither a date (YYYY-MM-DD) nor an RFC 3339 time"),
    ))
}

pub async fn cost_summary(
    daemon: Arc<Daemon>,
    params: protocol::cost::SummaryParams,
) -> Result<protocol::cost::CostSummary, Problem> {
    let project_id = match &params.project {
        Some(slug) => Some(find_project(&daemon, slug).await?.id),
        None => None,
    };
    let since = params.since.as_deref().map(parse_since).transpose()?;
    Ok(daemon
        .store
        .read(move |conn| {
            let project = project_id.as_deref();
            let since = since.as_deref();
            let lines = |group: &str| -> Result<Vec<protocol::cost::CostLine>, StoreError> {
                Ok(rows::cost_lines(conn, group, project, since)?
                    .into_iter()
                    .map(|(key, calls, usd)| protocol::cost::CostLine {
                        key,
                        calls,
                        usd: models::round_usd(usd),
                    })
                    .collect())
            };
            let (calls, usd, from_usage) = rows::cost_totals(conn, project, since)?;
            Ok(protocol::cost::CostSummary {
                calls,
                usd: models::round_usd(usd),
                usd_from_usage: models::round_usd(from_usage),
                by_project: lines("project")?,
                by_model: lines("model")?,
                by_day: lines("day")?,
                reserved_usd: models::round_usd(rows::total_reserved(conn, project)?),
            })
        })
        .await?)
}
