//! `kromactl run …` and `kromactl cost`: plan a run, create it, confirm its cost and start it,
//! follow it live, inspect, cancel and retry it; and sum what was spent.
//!
//! Money is never spent without a human agreeing to a maximum: `run start` and `run retry` ask
//! on the terminal, or take `--yes --max-cost USD`, and the daemon checks the amount again.

use std::io::IsTerminal;
use std::path::Path;

use clap::{Args, Subcommand};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use kroma_client::Client;
use kroma_client::follow::EventFollower;
use kroma_client::progress::{JobProgress, RunProgress};
use kroma_protocol as protocol;
use protocol::run as wire;

use crate::Global;
use crate::common::{max_cost_text, parse_usd};
use crate::output::{self, Failure, print, usd};
use crate::run_settings::{RunSettingsArgs, plan_params};

#[derive(Debug, Subcommand)]
pub enum RunCommand {
    /// Plan a run: jobs, composed prompts, provider calls and the cost (nothing is stored or spent)
    Plan(PlanArgs),
    /// Plan a run and store it with its run record, ready for `run start` (or as a dry run)
    Create {
        #[command(flatten)]
        plan: PlanArgs,
        /// Record the plan as a dry run that can never be started
        #[arg(long)]
        dry_run: bool,
    },
    /// Confirm a created run's maximum cost, start it and follow it until it finishes
    Start {
        /// The run's id, as `run create` printed it
        run: String,
        #[command(flatten)]
        confirm: ConfirmArgs,
    },
    /// Follow a run until it finishes (exit 1 unless every candidate succeeded; --json: events as JSON lines)
    Watch {
        /// The run's id
        run: String,
    },
    /// List runs, newest first
    List {
        /// Only this project's runs
        #[arg(long)]
        project: Option<String>,
        /// Only runs in this status
        #[arg(long, value_enum)]
        status: Option<RunStatusArg>,
        /// At most this many runs (1 to 1000)
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Show a run: its status, cost and every candidate's outcome
    Show {
        /// The run's id
        run: String,
    },
    /// Cancel a run between calls; calls in flight finish and are recorded
    Cancel {
        /// The run's id
        run: String,
    },
    /// Call again for the candidates that did not succeed (or that drifted), after confirming the cost
    Retry {
        /// The run's id
        run: String,
        /// Retry only failed candidates, not unknown or canceled ones
        #[arg(long)]
        only_failed: bool,
        /// Retry only candidates that drifted from their baseline (they succeeded: this pays again)
        #[arg(long, conflicts_with = "only_failed")]
        only_drifted: bool,
        #[command(flatten)]
        confirm: ConfirmArgs,
    },
    /// Approve a candidate as its scene's baseline: later stages of the scene start from it
    Approve {
        /// The run's id
        run: String,
        /// The job's key, e.g. style_1_harbor
        job: String,
        /// The candidate's number (1-based); it may differ from the ranked winner
        candidate: u32,
    },
    /// List a project's approved scene baselines
    Baselines {
        /// The project's slug
        project: String,
    },
    /// Write a run's contact sheet as a PNG: each candidate's verdict and drift, the winner (--json: path and size)
    Sheet(crate::run_review::SheetArgs),
}

/// What to plan; absent values come from the settings (`kromactl settings show`).
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The project's slug
    pub project: String,
    /// Scenes, one job each: asset ids, or image files or folders (walked, sorted by name)
    #[arg(required = true, value_name = "SCENE")]
    pub scenes: Vec<String>,
    #[command(flatten)]
    pub settings: RunSettingsArgs,
}

/// How a human agrees to spend.
#[derive(Debug, Args)]
pub struct ConfirmArgs {
    /// Do not ask; agree to spend up to --max-cost
    #[arg(long, short, requires = "max_cost")]
    pub yes: bool,
    /// The most you agree to spend, in USD; at least the run's maximum
    #[arg(long, value_name = "USD", value_parser = parse_usd)]
    pub max_cost: Option<f64>,
    /// Return once the run is started instead of following it
    #[arg(long)]
    pub detach: bool,
}

/// Run statuses as `run list` prints them.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum RunStatusArg {
    Planned,
    DryRun,
    Running,
    Canceling,
    Done,
    Partial,
    Failed,
    Canceled,
}

impl From<RunStatusArg> for wire::RunStatus {
    fn from(status: RunStatusArg) -> wire::RunStatus {
        match status {
            RunStatusArg::Planned => wire::RunStatus::Planned,
            RunStatusArg::DryRun => wire::RunStatus::DryRun,
            RunStatusArg::Running => wire::RunStatus::Running,
            RunStatusArg::Canceling => wire::RunStatus::Canceling,
            RunStatusArg::Done => wire::RunStatus::Done,
            RunStatusArg::Partial => wire::RunStatus::Partial,
            RunStatusArg::Failed => wire::RunStatus::Failed,
            RunStatusArg::Canceled => wire::RunStatus::Canceled,
        }
    }
}

#[derive(Debug, Args)]
pub struct CostArgs {
    /// Only this project
    #[arg(long)]
    pub project: Option<String>,
    /// Only spend at or after this date (YYYY-MM-DD, UTC) or RFC 3339 time
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,
}

pub async fn run(global: &Global, socket: &Path, command: RunCommand) -> Result<(), Failure> {
    match command {
        RunCommand::Plan(args) => {
            let params = plan_params(&args.project, &args.scenes, &args.settings)?;
            let client = Client::connect(socket).await?;
            let plan = client.call::<wire::PlanRun>(&params).await?;
            print(global, &plan, || plan_text(&plan, PromptDetail::Full));
        }
        RunCommand::Create { plan, dry_run } => {
            let params = wire::CreateParams {
                plan: plan_params(&plan.project, &plan.scenes, &plan.settings)?,
                dry_run,
            };
            let client = Client::connect(socket).await?;
            let detail = client.call::<wire::Create>(&params).await?;
            print(global, &detail, || created_text(&detail));
        }
        RunCommand::Start { run, confirm } => {
            let client = Client::connect(socket).await?;
            start(global, &client, &run, &confirm).await?;
        }
        RunCommand::Watch { run } => {
            let client = Client::connect(socket).await?;
            let events = events_from_now(&client).await?;
            watch(global, &client, &run, events, Follow::UntilShownFinished).await?;
        }
        RunCommand::List {
            project,
            status,
            limit,
        } => {
            let client = Client::connect(socket).await?;
            let list = client
                .call::<wire::List>(&wire::ListParams {
                    project,
                    status: status.map(Into::into),
                    limit: Some(limit),
                })
                .await?;
            print(global, &list, || {
                if list.runs.is_empty() {
                    "no runs; plan one with `kromactl run plan PROJECT SCENE…`".to_owned()
                } else {
                    run_table(&list.runs).to_string()
                }
            });
        }
        RunCommand::Show { run } => {
            let client = Client::connect(socket).await?;
            let detail = client.call::<wire::Show>(&wire::RunRef { run }).await?;
            print(global, &detail, || {
                let mut text = detail_text(&detail);
                if let Some(next) = next_step(&detail) {
                    text.push_str(&format!("\n\nhint: {next}"));
                }
                text
            });
        }
        RunCommand::Cancel { run } => {
            let client = Client::connect(socket).await?;
            let summary = client.call::<wire::Cancel>(&wire::RunRef { run }).await?;
            print(global, &summary, || canceled_text(&summary));
        }
        RunCommand::Retry {
            run,
            only_failed,
            only_drifted,
            confirm,
        } => {
            let retrying = match (only_failed, only_drifted) {
                (_, true) => Retrying::Drifted,
                (true, false) => Retrying::Failed,
                (false, false) => Retrying::NotSucceeded,
            };
            let client = Client::connect(socket).await?;
            retry(global, &client, &run, retrying, &confirm).await?;
        }
        RunCommand::Approve {
            run,
            job,
            candidate,
        } => {
            let params = wire::ApproveParams {
                run,
                job,
                candidate,
            };
            crate::run_review::approve(global, socket, params).await?;
        }
        RunCommand::Baselines { project } => {
            crate::run_review::baselines(global, socket, project).await?;
        }
        RunCommand::Sheet(args) => crate::run_review::sheet(global, socket, args).await?,
    }
    Ok(())
}

pub async fn cost(global: &Global, socket: &Path, args: CostArgs) -> Result<(), Failure> {
    let client = Client::connect(socket).await?;
    let summary = client
        .call::<protocol::cost::Summary>(&protocol::cost::SummaryParams {
            project: args.project,
            since: args.since,
        })
        .await?;
    print(global, &summary, || cost_text(&summary));
    Ok(())
}

/// Which candidates a retry calls again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retrying {
    /// Failed, unknown and canceled ones.
    NotSucceeded,
    /// `--only-failed`.
    Failed,
    /// `--only-drifted`: succeeded ones that drifted from their baseline.
    Drifted,
}

/// What a retry calls again and the most that can cost.
#[derive(Debug, Clone, Copy, PartialEq)]
struct RetryScope {
    failed: u32,
    unknown: u32,
    canceled: u32,
    drifted: u32,
    /// The candidates that will be called again.
    calls: u32,
    max_usd: f64,
    /// Succeeded candidates whose post-process chain failed: run again, at no cost.
    chains: u32,
}

/// The candidates `retrying` names; each costs at most the plan's per-call maximum.
fn retry_scope(detail: &wire::RunDetail, retrying: Retrying) -> RetryScope {
    let count = |matches: &dyn Fn(&wire::CandidateDetail) -> bool| {
        let n = detail
            .jobs
            .iter()
            .flat_map(|job| &job.candidates)
            .filter(|candidate| matches(candidate))
            .count();
        u32::try_from(n).unwrap_or(u32::MAX)
    };
    let failed = count(&|c| c.status == wire::CandidateStatus::Failed);
    let unknown = count(&|c| c.status == wire::CandidateStatus::Unknown);
    let canceled = count(&|c| c.status == wire::CandidateStatus::Canceled);
    let drifted =
        count(&|c| c.status == wire::CandidateStatus::Succeeded && crate::run_review::drifted(c));
    let calls = match retrying {
        Retrying::NotSucceeded => failed.saturating_add(unknown).saturating_add(canceled),
        Retrying::Failed => failed,
        Retrying::Drifted => drifted,
    };
    let chains = detail
        .jobs
        .iter()
        .flat_map(|job| &job.candidates)
        .filter(|c| {
            c.status == wire::CandidateStatus::Succeeded
                && c.postprocess.as_deref() == Some("failed")
        })
        .count();
    RetryScope {
        failed,
        unknown,
        canceled,
        drifted,
        calls,
        max_usd: f64::from(calls) * detail.plan.cost.per_call_max_usd,
        chains: u32::try_from(chains).unwrap_or(u32::MAX),
    }
}

async fn start(
    global: &Global,
    client: &Client,
    run_id: &str,
    confirm_args: &ConfirmArgs,
) -> Result<(), Failure> {
    let detail = show(client, run_id).await?;
    if detail.run.status != wire::RunStatus::Planned {
        return Err(not_startable(&detail));
    }
    let plan = &detail.plan;
    if !global.json && !global.quiet {
        println!(
            "run {}: {}, {} to {} at {}, at most {}",
            detail.run.id,
            plural(plan.jobs.len(), "job"),
            plural(plan.cost.calls as usize, "call"),
            plan.model,
            plan.provider,
            usd(plan.cost.max_usd)
        );
    }
    let confirm_cost_usd = confirm_spend(confirm_args, plan, plan.cost.max_usd, plan.cost.calls)?;
    let events = if confirm_args.detach {
        None
    } else {
        Some(events_from_now(client).await?)
    };
    let summary = client
        .call::<wire::Start>(&wire::StartParams {
            plan_id: detail.run.id.clone(),
            confirm_cost_usd,
        })
        .await?;
    follow_started(global, client, &summary, events, "started").await
}

async fn retry(
    global: &Global,
    client: &Client,
    run_id: &str,
    retrying: Retrying,
    confirm_args: &ConfirmArgs,
) -> Result<(), Failure> {
    let detail = show(client, run_id).await?;
    let id = &detail.run.id;
    match detail.run.status {
        wire::RunStatus::Planned | wire::RunStatus::DryRun => return Err(not_startable(&detail)),
        status if status.is_active() => {
            let hint = if status == wire::RunStatus::Canceling {
                format!("wait for it with `kromactl run watch {id}`, then retry")
            } else {
                format!(
                    "wait for it with `kromactl run watch {id}`, or stop it with `kromactl run cancel {id}`"
                )
            };
            return Err(Failure::other(
                format!("run {id} is still {}", status.as_str()),
                Some(&hint),
            ));
        }
        _ => {}
    }
    let scope = retry_scope(&detail, retrying);
    let confirm_cost_usd = if scope.calls == 0 && scope.chains > 0 {
        // Only post-process chains: no provider call, nothing to confirm.
        if !global.json && !global.quiet {
            println!(
                "run {id}: {} to run again (no spend)",
                plural(scope.chains as usize, "post-process chain")
            );
        }
        0.0
    } else if scope.calls == 0 {
        return Err(nothing_to_retry(id, &scope, retrying));
    } else {
        if !global.json && !global.quiet {
            let which = match retrying {
                Retrying::NotSucceeded => format!(
                    "{} failed, {} unknown, {} canceled",
                    scope.failed, scope.unknown, scope.canceled
                ),
                Retrying::Failed => format!("{} failed", scope.failed),
                Retrying::Drifted => format!("{} drifted", scope.drifted),
            };
            println!(
                "run {id}: {} to call again ({which}), at most {}",
                plural(scope.calls as usize, "candidate"),
                usd(scope.max_usd)
            );
            if scope.unknown > 0 && retrying == Retrying::NotSucceeded {
                println!(
                    "note: unknown candidates may already have been billed; calling them again may pay twice"
                );
            }
            if retrying == Retrying::Drifted {
                println!(
                    "note: drifted candidates succeeded and were paid for; calling them again pays again, and their outputs move to archive/replaced/"
                );
            }
        }
        confirm_spend(confirm_args, &detail.plan, scope.max_usd, scope.calls)?
    };
    let events = if confirm_args.detach {
        None
    } else {
        Some(events_from_now(client).await?)
    };
    let summary = client
        .call::<wire::Retry>(&wire::RetryParams {
            run: id.clone(),
            only_failed: retrying == Retrying::Failed,
            only_drifted: retrying == Retrying::Drifted,
            confirm_cost_usd,
        })
        .await?;
    follow_started(global, client, &summary, events, "retrying").await
}

/// Why a retry would call nothing, and the retry that would.
fn nothing_to_retry(id: &str, scope: &RetryScope, retrying: Retrying) -> Failure {
    let others = scope.unknown + scope.canceled;
    let not_succeeded = scope.failed + others;
    let them = |n: u32| if n == 1 { "it" } else { "them" };
    match retrying {
        Retrying::Failed if others > 0 => Failure::other(
            format!("run {id} has no failed candidates"),
            Some(&format!(
                "{others} unknown or canceled; retry without --only-failed to call {} again",
                them(others)
            )),
        ),
        Retrying::Drifted if not_succeeded > 0 => Failure::other(
            format!("run {id} has no drifted candidates"),
            Some(&format!(
                "{not_succeeded} did not succeed; retry without --only-drifted to call {} again",
                them(not_succeeded)
            )),
        ),
        Retrying::Drifted => Failure::other(
            format!("run {id} has no drifted candidates"),
            Some(
                "a candidate drifts when it strays from its baseline past qa.max_structure_drift or qa.max_palette_drift",
            ),
        ),
        _ => Failure::other(format!("run {id} has nothing to retry"), None),
    }
}

async fn show(client: &Client, run_id: &str) -> Result<wire::RunDetail, Failure> {
    Ok(client
        .call::<wire::Show>(&wire::RunRef {
            run: run_id.to_owned(),
        })
        .await?)
}

/// Why a run that is not `planned` cannot be started, and what to do instead.
fn not_startable(detail: &wire::RunDetail) -> Failure {
    let id = &detail.run.id;
    let status = detail.run.status;
    let hint = match status {
        wire::RunStatus::Planned => format!(
            "start it with `kromactl run start {id} --max-cost {}`",
            max_cost_text(detail.plan.cost.max_usd)
        ),
        wire::RunStatus::DryRun => {
            "a dry run never runs; create the run again without --dry-run".to_owned()
        }
        wire::RunStatus::Running | wire::RunStatus::Canceling => {
            format!("follow it with `kromactl run watch {id}`")
        }
        wire::RunStatus::Done => format!("see its results with `kromactl run show {id}`"),
        wire::RunStatus::Partial | wire::RunStatus::Failed | wire::RunStatus::Canceled => {
            format!("call the candidates that did not succeed again with `kromactl run retry {id}`")
        }
    };
    let message = match status {
        wire::RunStatus::Planned => format!("run {id} has not been started"),
        wire::RunStatus::DryRun => format!("run {id} is a dry run"),
        _ => format!("run {id} is {}, not planned", status.as_str()),
    };
    Failure::other(message, Some(&hint))
}

/// The amount to confirm: `--max-cost` with `--yes`, else what the human agrees to on the
/// terminal (`--max-cost`, or the maximum itself).
fn confirm_spend(
    args: &ConfirmArgs,
    plan: &wire::Plan,
    max_usd: f64,
    calls: u32,
) -> Result<f64, Failure> {
    crate::common::agree_to_spend(
        max_usd,
        args.yes,
        args.max_cost,
        |amount| {
            format!(
                "Spend up to ${} on {} to {} at {}?",
                max_cost_text(amount),
                plural(calls as usize, "call"),
                plan.model,
                plan.provider
            )
        },
        "not started; nothing was spent",
    )
}

/// Subscribes after the newest event in the log, before the caller reads or changes a run, so
/// every later event arrives, also when the subscription has to be made again.
async fn events_from_now(client: &Client) -> Result<EventFollower<'_>, Failure> {
    let page = client
        .call::<protocol::events::List>(&protocol::events::ListParams {
            since: None,
            limit: Some(1),
        })
        .await?;
    Ok(EventFollower::start(client, Some(page.last_id)).await?)
}

/// When a watch ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Follow {
    /// We just started the run: its `run.finished` event is still to come, even when `run.show`
    /// already says it finished.
    UntilFinishedEvent,
    /// Someone started the run earlier: a finished run is reported at once.
    UntilShownFinished,
}

/// Follows a run until it finishes, then reports how it ended: Ok only when it is `done`.
async fn watch(
    global: &Global,
    client: &Client,
    run_id: &str,
    mut events: EventFollower<'_>,
    follow: Follow,
) -> Result<(), Failure> {
    let detail = show(client, run_id).await?;
    let run_id = detail.run.id.clone();
    if follow == Follow::UntilShownFinished {
        match detail.run.status {
            wire::RunStatus::Planned | wire::RunStatus::DryRun => {
                return Err(not_startable(&detail));
            }
            status if !status.is_active() => return finish(global, &detail),
            _ => {}
        }
    }
    let mut progress = RunProgress::from_detail(&detail);
    let view = WatchView::new(global, &progress);
    let followed = follow_events(&mut events, &run_id, &mut progress, &view).await;
    view.finish();
    followed?;
    finish(global, &show(client, &run_id).await?)
}

async fn follow_events(
    events: &mut EventFollower<'_>,
    run_id: &str,
    progress: &mut RunProgress,
    view: &WatchView,
) -> Result<(), Failure> {
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    while progress.finished.is_none() {
        let event = tokio::select! {
            event = events.next() => event?,
            _ = &mut interrupted => {
                return Err(Failure::other(
                    format!("stopped watching; run {run_id} goes on in kromad"),
                    Some(&format!(
                        "follow it again with `kromactl run watch {run_id}`, or stop it with `kromactl run cancel {run_id}`"
                    )),
                ));
            }
        };
        if progress.apply(&event) {
            view.show(&event, progress);
        }
    }
    Ok(())
}

/// The end of a watch: the run's details for people, and the exit code from its status.
fn finish(global: &Global, detail: &wire::RunDetail) -> Result<(), Failure> {
    if !global.json && !global.quiet {
        println!("{}", detail_text(detail));
    }
    let run = &detail.run;
    match run.status {
        wire::RunStatus::Done => Ok(()),
        status => Err(Failure::other(
            format!(
                "run {} ended {}: {} of {} candidates succeeded",
                run.id,
                status.as_str(),
                run.succeeded,
                run.candidates
            ),
            Some(&format!(
                "call the candidates that did not succeed again with `kromactl run retry {}`",
                run.id
            )),
        )),
    }
}

/// How a watch shows progress: bars on a terminal, a line per finished candidate otherwise, a
/// JSON line per event with `--json`, nothing with `--quiet`.
enum WatchView {
    Bars {
        multi: MultiProgress,
        jobs: Vec<ProgressBar>,
        total: ProgressBar,
    },
    Lines,
    Json,
    Quiet,
}

impl WatchView {
    fn new(global: &Global, progress: &RunProgress) -> WatchView {
        if global.quiet {
            return WatchView::Quiet;
        }
        if global.json {
            return WatchView::Json;
        }
        if !std::io::stderr().is_terminal() {
            return WatchView::Lines;
        }
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let width = progress
            .jobs
            .iter()
            .map(|job| job.key.chars().count())
            .max()
            .unwrap_or(0)
            .max("total".len());
        let style = |color: &str| {
            ProgressStyle::with_template(&format!(
                "{{prefix}} [{{bar:30.{color}/white}}] {{pos}}/{{len}} {{msg}}"
            ))
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ")
        };
        let jobs = progress
            .jobs
            .iter()
            .map(|job| {
                let bar = multi.add(ProgressBar::new(job.candidates.len() as u64));
                bar.set_style(style("cyan"));
                bar.set_prefix(format!("{:<width$}", job.key));
                bar
            })
            .collect();
        let total = multi.add(ProgressBar::new(progress.total() as u64));
        total.set_style(style("green"));
        total.set_prefix(format!("{:<width$}", "total"));
        let view = WatchView::Bars { multi, jobs, total };
        view.draw(progress);
        view
    }

    fn draw(&self, progress: &RunProgress) {
        if let WatchView::Bars { jobs, total, .. } = self {
            for (bar, job) in jobs.iter().zip(&progress.jobs) {
                bar.set_length(job.candidates.len() as u64);
                bar.set_position(job.done() as u64);
                bar.set_message(job_message(job));
            }
            total.set_length(progress.total() as u64);
            total.set_position(progress.done() as u64);
            total.set_message(total_message(progress));
        }
    }

    /// Shows one event of the run, already applied to `progress`.
    fn show(&self, event: &protocol::events::Event, progress: &RunProgress) {
        match self {
            WatchView::Quiet => {}
            WatchView::Json => {
                println!("{}", serde_json::to_string(event).unwrap_or_default());
            }
            WatchView::Lines => {
                if let Some(line) = candidate_line(event) {
                    println!("{line}");
                }
            }
            WatchView::Bars { multi, .. } => {
                if event.kind == protocol::events::kind::CANDIDATE_FAILED
                    && let Some(line) = candidate_line(event)
                {
                    let _ = multi.println(line);
                }
                self.draw(progress);
            }
        }
    }

    /// Removes the bars. A bar dropped unfinished would draw itself once more.
    fn finish(&self) {
        if let WatchView::Bars { multi, jobs, total } = self {
            for bar in jobs.iter().chain([total]) {
                bar.finish_and_clear();
            }
            let _ = multi.clear();
        }
    }
}

/// `$0.42 spent, 1 failed, ETA 1m 20s`.
fn total_message(progress: &RunProgress) -> String {
    let mut message = format!("{} spent", usd(progress.spent_usd));
    let failed = progress.failed();
    if failed > 0 {
        message.push_str(&format!(", {failed} failed"));
    }
    if let Some(eta) = progress.eta_secs {
        message.push_str(&format!(", ETA {}", duration_text(eta)));
    }
    message
}

fn job_message(job: &JobProgress) -> String {
    let mut message = match job.failed() {
        0 => job.status_name().to_owned(),
        failed => format!("{}, {failed} failed", job.status_name()),
    };
    if let Some(chain) = &job.chain {
        message.push_str(&format!(", {chain}"));
    }
    message
}

/// `style_1_harbor #2 failed: the provider refused the prompt` for a finished candidate.
fn candidate_line(event: &protocol::events::Event) -> Option<String> {
    use protocol::events as wire_events;
    let (job, index, status, cost_usd, error) =
        match event.payload::<wire_events::CandidateFinished>() {
            Some(finished) => {
                let finished = finished.ok()?;
                let (job, index, status) = (finished.job, finished.index, finished.status);
                (job, index, status, finished.cost_usd, finished.error)
            }
            None => {
                let failed = event.payload::<wire_events::CandidateFailed>()?.ok()?;
                let (job, index, status) = (failed.job, failed.index, failed.status);
                (job, index, status, failed.cost_usd, Some(failed.error))
            }
        };
    let mut line = format!("{job} #{index} {}", status.as_str());
    if let Some(cost) = cost_usd {
        line.push_str(&format!(" {}", usd(cost)));
    }
    if let Some(error) = error {
        line.push_str(&format!(": {}", error.message));
    }
    Some(line)
}

/// `45s`, `3m 05s`, `2h 07m`.
fn duration_text(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m {:02}s", secs / 60, secs % 60),
        _ => format!("{}h {:02}m", secs / 3600, secs % 3600 / 60),
    }
}

/// `1 job`, `3 jobs`.
fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// Greedy word wrap at `width` characters; the text's own line breaks are kept and a word
/// longer than a line gets a line of its own.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    for paragraph in text.lines() {
        let mut line = String::new();
        for word in paragraph.split_whitespace() {
            if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
                lines.push(std::mem::take(&mut line));
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        lines.push(line);
    }
    lines
}

/// How much of each job's prompt a plan shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PromptDetail {
    Full,
    None,
}

/// The plan for people: settings, each job, warnings and the cost.
pub(crate) fn plan_text(plan: &wire::Plan, prompts: PromptDetail) -> String {
    let mut stage = plan.stage.as_str().to_owned();
    if let Some(time) = &plan.time {
        stage.push_str(&format!(", time {time}"));
    }
    if let Some(weather) = &plan.weather {
        stage.push_str(&format!(", weather {weather}"));
    }
    let mut rows = vec![
        ("project", plan.project.clone()),
        ("stage", stage),
        ("provider", format!("{} ({})", plan.provider, plan.base_url)),
        ("model", plan.model.clone()),
        ("size", plan.size.clone()),
        ("quality", plan.quality.clone()),
        ("candidates", format!("{} per scene", plan.candidates)),
    ];
    if !plan.postprocess.is_empty() {
        rows.push(("post-process", plan.postprocess.join(" → ")));
    }
    if let Some(guide) = &plan.style_guide {
        rows.push(("style guide", guide.clone()));
    }
    if !plan.characters.is_empty() {
        rows.push(("characters", plan.characters.join(", ")));
    }
    let mut text = output::details(&rows).to_string();
    text.push('\n');
    match prompts {
        PromptDetail::Full => {
            for job in &plan.jobs {
                text.push_str(&format!(
                    "\njob {}: scene {}, {}, {}, at most {} ({})\n",
                    job.key,
                    job.scene,
                    plural(job.input_images.len(), "input image"),
                    plural(job.candidates as usize, "candidate"),
                    usd(job.max_cost_usd),
                    endpoint(job.endpoint)
                ));
                if let Some(baseline) = crate::run_review::planned_baseline(plan.stage, job) {
                    text.push_str(&format!("    {baseline}\n"));
                }
                for line in wrap(&job.prompt, 92) {
                    text.push_str(&format!("    {line}\n"));
                }
            }
        }
        PromptDetail::None => {
            let starts_from = |job| crate::run_review::planned_baseline(plan.stage, job);
            let with_baselines = plan.jobs.iter().any(|job| starts_from(job).is_some());
            let mut header = vec!["job", "scene", "inputs", "candidates", "max"];
            header.extend(with_baselines.then_some("starts from"));
            let mut table = output::table(&header);
            for job in &plan.jobs {
                let mut row = vec![
                    job.key.clone(),
                    job.scene.clone(),
                    job.input_images.len().to_string(),
                    job.candidates.to_string(),
                    usd(job.max_cost_usd),
                ];
                row.extend(with_baselines.then(|| starts_from(job).unwrap_or_default()));
                table.add_row(row);
            }
            text.push_str(&format!("\n{table}\n"));
        }
    }
    for warning in &plan.warnings {
        text.push_str(&format!("\nwarning: {warning}"));
    }
    let cost = &plan.cost;
    text.push_str(&format!(
        "\ncost: {}, at most {} per call, at most {} in all (prices: {})",
        plural(cost.calls as usize, "call"),
        usd(cost.per_call_max_usd),
        usd(cost.max_usd),
        cost.price_source
    ));
    text
}

fn created_text(detail: &wire::RunDetail) -> String {
    let run = &detail.run;
    let mut text = if run.status == wire::RunStatus::DryRun {
        format!(
            "created dry run {} (it records the plan and never runs)",
            run.id
        )
    } else {
        format!("created run {} ({})", run.id, run.status.as_str())
    };
    text.push_str(&format!("\nrecord: {}\n\n", run.record));
    text.push_str(&plan_text(&detail.plan, PromptDetail::None));
    if run.status == wire::RunStatus::Planned {
        text.push_str(&format!(
            "\n\nnext: kromactl run start {} --max-cost {}",
            run.id,
            max_cost_text(detail.plan.cost.max_usd)
        ));
    }
    text
}

fn started_text(run: &wire::RunSummary) -> String {
    format!(
        "run {} is {}: {}, at most {}; follow it with `kromactl run watch {}`",
        run.id,
        run.status.as_str(),
        plural(run.candidates as usize, "candidate"),
        usd(run.confirmed_cost_usd.unwrap_or(run.max_cost_usd)),
        run.id
    )
}

fn canceled_text(run: &wire::RunSummary) -> String {
    let mut text = format!(
        "run {} is {}: {} of {} candidates succeeded, {} spent",
        run.id,
        run.status.as_str(),
        run.succeeded,
        run.candidates,
        usd(run.spent_usd)
    );
    if run.status == wire::RunStatus::Canceling {
        text.push_str("\ncalls in flight finish and are recorded");
    }
    text.push_str(&format!(
        "\ncall the rest later with `kromactl run retry {}`",
        run.id
    ));
    text
}

fn run_table(runs: &[wire::RunSummary]) -> comfy_table::Table {
    let mut table = output::table(&[
        "id",
        "project",
        "stage",
        "status",
        "model",
        "jobs",
        "ok/failed",
        "max $",
        "spent $",
        "created",
    ]);
    for run in runs {
        table.add_row(vec![
            run.id.clone(),
            run.project.clone(),
            run.stage.as_str().to_owned(),
            run.status.as_str().to_owned(),
            run.model.clone(),
            run.jobs.to_string(),
            format!("{}/{}", run.succeeded, run.failed),
            usd(run.max_cost_usd),
            usd(run.spent_usd),
            run.created_at.clone(),
        ]);
    }
    table
}

/// `run show`: the run, every candidate, the errors with their hints, and what to do next.
fn detail_text(detail: &wire::RunDetail) -> String {
    let run = &detail.run;
    let plan = &detail.plan;
    let mut stage = run.stage.as_str().to_owned();
    if let Some(time) = &plan.time {
        stage.push_str(&format!(", time {time}"));
    }
    if let Some(weather) = &plan.weather {
        stage.push_str(&format!(", weather {weather}"));
    }
    let mut cost = format!("at most {}", usd(run.max_cost_usd));
    if let Some(confirmed) = run.confirmed_cost_usd {
        cost.push_str(&format!(", confirmed {}", usd(confirmed)));
    }
    cost.push_str(&format!(", spent {}", usd(run.spent_usd)));
    let rows = [
        ("run", run.id.clone()),
        ("status", run.status.as_str().to_owned()),
        ("project", run.project.clone()),
        ("stage", stage),
        (
            "model",
            format!(
                "{} at {}, {}, quality {}",
                plan.model, plan.provider, plan.size, plan.quality
            ),
        ),
        (
            "candidates",
            format!(
                "{} in {}: {} succeeded, {} failed",
                run.candidates,
                plural(run.jobs as usize, "job"),
                run.succeeded,
                run.failed
            ),
        ),
        ("cost", cost),
        ("created", run.created_at.clone()),
        ("started", run.started_at.clone().unwrap_or_default()),
        ("finished", run.finished_at.clone().unwrap_or_default()),
        ("record", run.record.clone()),
    ];
    let rows: Vec<_> = rows
        .into_iter()
        .filter(|(_, value)| !value.is_empty())
        .collect();
    let mut text = output::details(&rows).to_string();
    let candidates = || detail.jobs.iter().flat_map(|job| &job.candidates);
    // The QA columns only once the guard has checked something, drift only against a baseline.
    let with_qa = candidates().any(|candidate| candidate.qa.is_some());
    let with_drift = candidates().any(|c| c.qa.as_ref().is_some_and(|qa| qa.drift.is_some()));
    let mut header = vec!["job", "#", "status", "cost"];
    header.extend(with_qa.then_some(["qa", "chroma"]).into_iter().flatten());
    header.extend(with_drift.then_some("drift"));
    header.push("output / error");
    let mut table = output::table(&header);
    let mut errors = Vec::new();
    let mut unknown = 0;
    for job in &detail.jobs {
        for candidate in &job.candidates {
            let outcome = match (crate::run_review::archived(candidate), &candidate.output) {
                (Some(archived), _) => format!("archived → {archived}"),
                (None, Some(output)) => output.clone(),
                (None, None) => match &candidate.error {
                    Some(error) => format!("error: {}", error.code),
                    None => String::new(),
                },
            };
            let mut row = vec![
                job.key.clone(),
                candidate.index.to_string(),
                candidate.status.as_str().to_owned(),
                candidate.cost_usd.map_or_else(|| "-".to_owned(), usd),
            ];
            if with_qa {
                row.extend(crate::run_review::qa_cells(candidate));
            }
            if with_drift {
                row.push(crate::run_review::drift_text(candidate));
            }
            row.push(outcome);
            table.add_row(row);
            if let Some(error) = &candidate.error {
                errors.push(format!(
                    "{} #{}: {} ({})",
                    job.key, candidate.index, error.message, error.code
                ));
                let hint = output::hint_lines(error.hint.as_deref(), error.action.as_ref());
                errors.extend(hint.iter().map(|line| format!("  {line}")));
            }
            if candidate.status == wire::CandidateStatus::Unknown {
                unknown += 1;
            }
        }
    }
    if !detail.jobs.is_empty() {
        text.push_str(&format!("\n\n{table}\n"));
        for job in &detail.jobs {
            text.push_str(&format!(
                "\n{}",
                crate::run_review::job_lines(job).join("\n")
            ));
        }
    }
    if !errors.is_empty() {
        text.push_str("\n\n");
        text.push_str(&errors.join("\n"));
    }
    if unknown > 0 {
        text.push_str(&format!(
            "\n\n{}: the daemon stopped during a call the provider may have billed; check the \
             provider's usage page (`kromactl run retry` calls again and may pay again)",
            if unknown == 1 {
                "1 candidate is unknown".to_owned()
            } else {
                format!("{unknown} candidates are unknown")
            }
        ));
    }
    let drifted = retry_scope(detail, Retrying::Drifted).drifted;
    if drifted > 0 {
        let (what, whose, them) = if drifted == 1 {
            ("1 candidate drifted".to_owned(), "its", "it")
        } else {
            (format!("{drifted} candidates drifted"), "their", "them")
        };
        text.push_str(&format!(
            "\n\n{what} from {whose} baseline; call {them} again with `kromactl run retry {} --only-drifted`",
            run.id
        ));
    }
    text
}

/// What to do next with a run, when there is something to do.
fn next_step(detail: &wire::RunDetail) -> Option<String> {
    let id = &detail.run.id;
    match detail.run.status {
        wire::RunStatus::Planned => Some(format!(
            "start it with `kromactl run start {id} --max-cost {}`",
            max_cost_text(detail.plan.cost.max_usd)
        )),
        wire::RunStatus::Running | wire::RunStatus::Canceling => {
            Some(format!("follow it with `kromactl run watch {id}`"))
        }
        wire::RunStatus::Partial | wire::RunStatus::Failed | wire::RunStatus::Canceled => {
            Some(format!(
                "call the candidates that did not succeed again with `kromactl run retry {id}`"
            ))
        }
        wire::RunStatus::DryRun | wire::RunStatus::Done => None,
    }
}

fn cost_text(summary: &protocol::cost::CostSummary) -> String {
    let mut text = format!(
        "total: {} in {} ({} from the responses' usage, the rest from the price table)\nreserved by runs still going: {}",
        usd(summary.usd),
        plural(summary.calls as usize, "call"),
        usd(summary.usd_from_usage),
        usd(summary.reserved_usd)
    );
    for (title, lines) in [
        ("project", &summary.by_project),
        ("model", &summary.by_model),
        ("day", &summary.by_day),
    ] {
        if lines.is_empty() {
            continue;
        }
        let mut table = output::table(&[title, "calls", "usd"]);
        for line in lines {
            table.add_row(vec![
                line.key.clone(),
                line.calls.to_string(),
                usd(line.usd),
            ]);
        }
        text.push_str(&format!("\n\n{table}"));
    }
    text
}

fn endpoint(endpoint: wire::Endpoint) -> &'static str {
    match endpoint {
        wire::Endpoint::Edits => "edits",
        wire::Endpoint::Generations => "generations",
    }
}

/// After `run.start` or `run.retry`: print the summary (`--detach`), or follow the run until its
/// `run.finished` event.
async fn follow_started(
    global: &Global,
    client: &Client,
    summary: &wire::RunSummary,
    events: Option<EventFollower<'_>>,
    verb: &str,
) -> Result<(), Failure> {
    let Some(events) = events else {
        print(global, summary, || started_text(summary));
        return Ok(());
    };
    if !global.json && !global.quiet {
        println!("{verb}; Ctrl-C stops watching, not the run");
    }
    watch(
        global,
        client,
        &summary.id,
        events,
        Follow::UntilFinishedEvent,
    )
    .await
}

#[cfg(test)]
mod tests;
