//! The background runner: executes the `planned` candidates of running runs from the queue in
//! SQLite, at most `runs.provider_calls` provider calls and `runs.local_jobs` local steps at once,
//! across all projects.
//!
//! Exactly-once spend, step by step:
//! 1. the candidate is marked `calling` (one transaction) before its call is sent, with the
//!    idempotency key it keeps for every attempt;
//! 2. the call's answer is written to a temporary file, synced and renamed into `outputs/`; the
//!    file carries the candidate id (and the call's cost) in PNG text chunks;
//! 3. one transaction records the asset, the candidate's success and its cost event.
//!
//! After a crash, [`recover`] looks at every candidate left `calling`: if its output file is there
//! (step 2 done), it is recorded from the file and never called again; otherwise it is called again
//! only when the provider honours idempotency keys (so it cannot bill twice), else it is marked
//! `unknown` with the estimated cost counted against the budgets.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;

use kroma_protocol as protocol;
use protocol::asset::{AssetKind, Relation};
use protocol::events::EventData;
use protocol::run::{CandidateStatus, JobStatus, Plan, PlannedJob, RunStatus};
use protocol::{ErrorCode, ErrorKind};
use secrecy::SecretString;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::task::TaskTracker;

use crate::Daemon;
use crate::clock;
use crate::config::RunLimits;
use crate::error::ApiError;
use crate::files::{png, write};
use crate::projects::layout;
use crate::providers::image_models::{self, Usage};
use crate::providers::{self, CallError, Generated, ImageCall, InputFile};
use crate::runs::settings::Settings;
use crate::store::runs::{self as rows, CandidateRow, NewCost, Outcome, RunRow};
use crate::store::{NewAsset, NewEvent, StoreError, asset_queries};

/// The runner's shared state, owned by the daemon.
pub struct Runner {
    wake: Notify,
    provider_calls: Arc<Semaphore>,
    pub(super) provider_limit: usize,
    local: Arc<Semaphore>,
    /// Candidates whose task runs, by id.
    in_flight: Mutex<HashMap<String, InFlight>>,
    tasks: TaskTracker,
}

/// A candidate whose task runs: where it belongs, and whether it holds a provider-call slot
/// (it gives the slot back before its post-process chain).
#[derive(Debug, Clone)]
struct InFlight {
    run: String,
    project: String,
    calling: bool,
}

impl Runner {
    pub fn new(limits: &RunLimits) -> Runner {
        Runner {
            wake: Notify::new(),
            provider_calls: Arc::new(Semaphore::new(limits.provider_calls)),
            provider_limit: limits.provider_calls,
            local: Arc::new(Semaphore::new(limits.local_jobs)),
            in_flight: Mutex::new(HashMap::new()),
            tasks: TaskTracker::new(),
        }
    }

    /// The local-work slots, shared with one-off post-process steps.
    pub fn local_slots(&self) -> Arc<Semaphore> {
        self.local.clone()
    }

    /// Runs a candidate's pending post-process chain in the background (a retried chain), then
    /// closes its run if nothing else is left.
    pub fn run_chain(&self, daemon: Arc<Daemon>, candidate: String) {
        self.tasks.spawn(async move {
            if let Err(err) = super::chain::run(&daemon, &candidate).await {
                tracing::error!(%candidate, message = %err.message, "the post-process chain could not be recorded");
            }
            let run = daemon
                .store
                .read({
                    let candidate = candidate.clone();
                    move |conn| rows::run_of_candidate(conn, &candidate)
                })
                .await;
            match run {
                Ok(run) => {
                    if let Err(err) = finish_run_if_done(&daemon, &run).await {
                        tracing::error!(%run, message = %err.message, "finishing the run failed");
                    }
                }
                Err(err) => tracing::error!(%candidate, %err, "cannot find the candidate's run"),
            }
        });
    }

    /// Tells the runner there may be new work.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    fn in_flight(&self) -> std::sync::MutexGuard<'_, HashMap<String, InFlight>> {
        self.in_flight
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Stops taking work and waits up to `grace` for calls in flight to be recorded.
    pub async fn drain(&self, grace: Duration) {
        self.tasks.close();
        if tokio::time::timeout(grace, self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                calls = self.tasks.len(),
                "provider calls still in flight at shutdown; they are recovered at the next start"
            );
        }
    }
}

/// Recovers what a stopped daemon left, then executes candidates until shutdown.
pub async fn run(daemon: Arc<Daemon>) {
    if let Err(err) = recover(&daemon).await {
        tracing::error!(%err.message, "recovering runs failed; they stay as they are");
    }
    daemon.runner.wake();
    loop {
        tokio::select! {
            _ = daemon.runner.wake.notified() => {}
            _ = daemon.shutdown.cancelled() => break,
        }
        if let Err(err) = dispatch(&daemon).await {
            tracing::error!(err = %err, "reading the run queue failed");
            tokio::time::sleep(Duration::from_secs(1)).await;
            daemon.runner.wake();
        }
    }
}

/// Starts one task per runnable candidate while provider-call permits are free.
async fn dispatch(daemon: &Arc<Daemon>) -> Result<(), StoreError> {
    loop {
        let permit = tokio::select! {
            permit = daemon.runner.provider_calls.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return Ok(()),
            },
            _ = daemon.shutdown.cancelled() => return Ok(()),
        };
        let in_flight: Vec<(String, InFlight)> = daemon
            .runner
            .in_flight()
            .iter()
            .map(|(id, slot)| (id.clone(), slot.clone()))
            .collect();
        // A run can have at most this many candidates started but not yet marked `calling`.
        let per_run = in_flight.len() as u32 + 1;
        let mut waiting = daemon
            .store
            .read(move |conn| rows::runnable(conn, per_run))
            .await?;
        let picked = {
            let queue: Vec<super::schedule::Waiting> = waiting
                .iter()
                .map(|(candidate, project)| super::schedule::Waiting {
                    candidate: &candidate.id,
                    run: &candidate.run_id,
                    project,
                })
                .collect();
            let calling: Vec<super::schedule::Calling> = in_flight
                .iter()
                .filter(|(_, slot)| slot.calling)
                .map(|(_, slot)| super::schedule::Calling {
                    run: &slot.run,
                    project: &slot.project,
                })
                .collect();
            let busy: Vec<&str> = in_flight.iter().map(|(id, _)| id.as_str()).collect();
            super::schedule::next(&queue, &calling, &busy)
        };
        let Some(index) = picked else {
            return Ok(());
        };
        let (candidate, project) = waiting.swap_remove(index);
        daemon.runner.in_flight().insert(
            candidate.id.clone(),
            InFlight {
                run: candidate.run_id.clone(),
                project,
                calling: true,
            },
        );
        let task_daemon = daemon.clone();
        daemon
            .runner
            .tasks
            .spawn(async move { process(task_daemon, candidate, permit).await });
    }
}

async fn process(daemon: Arc<Daemon>, candidate: CandidateRow, permit: OwnedSemaphorePermit) {
    let run_id = candidate.run_id.clone();
    let id = candidate.id.clone();
    // A panic (a bug) must not leave the candidate `calling`, its slot taken and its run open
    // until the next start: it is caught here and the candidate settled with the reason.
    let executed = std::panic::AssertUnwindSafe(execute(&daemon, candidate))
        .catch_unwind()
        .await;
    let chain = match executed {
        Ok(Ok(chain)) => chain,
        Ok(Err(err)) => {
            tracing::error!(candidate = %id, code = err.code.as_str(), message = %err.message, "candidate could not be recorded");
            false
        }
        Err(panic) => {
            let reason = panic_message(panic.as_ref());
            tracing::error!(candidate = %id, %reason, "a candidate's task panicked");
            if let Err(err) = settle_after_panic(&daemon, &id, &reason).await {
                tracing::error!(candidate = %id, message = %err.message, "could not settle a candidate after a panic; the next start does");
            }
            false
        }
    };
    drop(permit);
    if let Some(slot) = daemon.runner.in_flight().get_mut(&id) {
        slot.calling = false;
    }
    if chain && let Err(err) = super::chain::run(&daemon, &id).await {
        tracing::error!(candidate = %id, message = %err.message, "the post-process chain could not be recorded");
    }
    daemon.runner.in_flight().remove(&id);
    if let Err(err) = finish_run_if_done(&daemon, &run_id).await {
        tracing::error!(run = %run_id, message = %err.message, "finishing the run failed");
    }
    daemon.runner.wake();
}

/// Debug builds only: with `KROMA_DEBUG_PANIC_AFTER_CALL` set, a candidate's task panics after
/// its provider call answered, so a test can prove a panic settles the candidate. Release builds
/// (what install.sh builds) never read the variable.
fn debug_panic_point() {
    #[cfg(debug_assertions)]
    if std::env::var_os("KROMA_DEBUG_PANIC_AFTER_CALL").is_some() {
        panic!("KROMA_DEBUG_PANIC_AFTER_CALL is set");
    }
}

/// The text a panic carried.
pub(super) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

/// Ends a candidate whose task panicked. One whose output is already in place is recorded from
/// it, as after a crash; one still `calling` may have been billed, so it ends `unknown` with its
/// estimate counted; one not yet claimed ends `failed` at no cost. Never called again: a bug
/// that panicked once would panic again.
async fn settle_after_panic(daemon: &Daemon, id: &str, reason: &str) -> Result<(), ApiError> {
    let lookup = id.to_owned();
    let candidate = daemon
        .store
        .read(move |conn| rows::candidate(conn, &lookup))
        .await?;
    let status = candidate.status.clone();
    let context = load(daemon, candidate).await?;
    let error = |message: &str| {
        ApiError::new(
            ErrorKind::Internal,
            ErrorCode::Internal,
            format!("{message} (kromad panicked: {reason})"),
        )
        .with_hint("this is a bug in kromad; the log has the details")
    };
    match status.as_str() {
        "calling" => {
            if recover_stored_output(daemon, &context).await? {
                return Ok(());
            }
            let cost = Cost {
                usd: context.estimated_usd(),
                source: "estimate_unknown",
                usage: None,
            };
            let error = error("this candidate's call may have been billed and its result is lost");
            record_end(
                daemon,
                &context,
                CandidateStatus::Unknown,
                &error,
                Some(cost),
            )
            .await
        }
        "planned" => {
            let error = error("this candidate failed before its call");
            record_end(daemon, &context, CandidateStatus::Failed, &error, None).await
        }
        // Already recorded before the panic.
        _ => Ok(()),
    }
}

/// Everything about a candidate's run that its execution needs.
pub(super) struct Context {
    pub(super) run: RunRow,
    pub(super) plan: Plan,
    pub(super) job: PlannedJob,
    pub(super) settings: Settings,
    pub(super) candidate: CandidateRow,
}

impl Context {
    pub(super) fn root(&self) -> &Path {
        Path::new(&self.run.project_root)
    }

    fn rel_path(&self) -> String {
        layout::generated_output(
            &self.job.key,
            self.candidate.index,
            self.job.candidates,
            &self.run.id,
        )
    }

    /// The price-table cost of one call of this job: its share of the job's maximum.
    fn estimated_usd(&self) -> f64 {
        crate::runs::planner::per_call_usd(&self.job)
    }

    fn pricing(&self) -> Option<image_models::Pricing> {
        image_models::pricing(&self.settings, &self.plan.model)
    }
}

pub(super) async fn load(daemon: &Daemon, candidate: CandidateRow) -> Result<Context, ApiError> {
    let run_id = candidate.run_id.clone();
    let run = daemon
        .store
        .read(move |conn| rows::get_run(conn, &run_id))
        .await?;
    let plan = super::plan_of(&run)?;
    let job = plan
        .jobs
        .get(candidate.job_index as usize)
        .cloned()
        .ok_or_else(|| {
            StoreError::Corrupt(format!("run {} has no job {}", run.id, candidate.job_index))
        })?;
    let settings: Settings = serde_json::from_value(plan.settings.clone())
        .map_err(|err| StoreError::Corrupt(format!("settings of run {}: {err}", run.id)))?;
    Ok(Context {
        run,
        plan,
        job,
        settings,
        candidate,
    })
}

/// How one call ended, for the books.
enum Ended {
    Succeeded(Generated),
    /// Not billed.
    Failed(ApiError),
    /// Billed, unusable.
    FailedBilled {
        error: ApiError,
        usage: Option<Usage>,
        request_id: Option<String>,
    },
    /// May have been billed; no result.
    Unknown(ApiError),
    Canceled,
    /// Nothing is in flight and nothing was billed (kromad is stopping between attempts): back
    /// to the queue.
    Requeue,
}

/// Calls for one candidate and records how it ended; answers whether its post-process chain is
/// now pending.
async fn execute(daemon: &Arc<Daemon>, candidate: CandidateRow) -> Result<bool, ApiError> {
    let context = load(daemon, candidate).await?;
    if context.run.status != "running" {
        return Ok(false);
    }
    let claimed = claim(daemon, &context).await?;
    if !claimed {
        return Ok(false);
    }
    let ended = call_with_retries(daemon, &context).await;
    let has_chain = !context.plan.postprocess.is_empty();
    let stored = match ended {
        Ended::Succeeded(generated) => {
            debug_panic_point();
            // The call was paid for: if its result cannot be stored, the candidate still ends
            // (failed, with its cost), never stuck in `calling`.
            let cost = cost_of(&context, generated.usage.as_ref());
            match store_success(daemon, &context, generated).await {
                Ok(()) => return Ok(has_chain),
                Err(err) => {
                    tracing::error!(candidate = %context.candidate.id, message = %err.message, "storing a paid result failed");
                    record_end(daemon, &context, CandidateStatus::Failed, &err, Some(cost)).await
                }
            }
        }
        Ended::Failed(error) => {
            record_end(daemon, &context, CandidateStatus::Failed, &error, None).await
        }
        Ended::FailedBilled {
            error,
            usage,
            request_id,
        } => {
            let cost = cost_of(&context, usage.as_ref());
            let mut error = error;
            if let Some(request_id) = request_id {
                error.message = format!("{} (request {request_id})", error.message);
            }
            record_end(
                daemon,
                &context,
                CandidateStatus::Failed,
                &error,
                Some(cost),
            )
            .await
        }
        Ended::Unknown(error) => {
            let cost = Cost {
                usd: context.estimated_usd(),
                source: "estimate_unknown",
                usage: None,
            };
            record_end(
                daemon,
                &context,
                CandidateStatus::Unknown,
                &error,
                Some(cost),
            )
            .await
        }
        Ended::Canceled => {
            let error = ApiError::new(
                ErrorKind::Policy,
                ErrorCode::Canceled,
                "the run was canceled",
            );
            record_end(daemon, &context, CandidateStatus::Canceled, &error, None).await
        }
        Ended::Requeue => requeue(daemon, &context.candidate.id).await,
    };
    stored.map(|()| false)
}

/// The event of `payload`'s kind in the candidate's project.
pub(super) fn event<T: EventData>(context: &Context, payload: &T, at: &str) -> NewEvent {
    NewEvent::of(
        at.to_owned(),
        Some(context.run.project_slug.clone()),
        payload,
    )
}

async fn claim(daemon: &Daemon, context: &Context) -> Result<bool, ApiError> {
    let id = context.candidate.id.clone();
    let at = clock::now();
    let mut events = vec![event(
        context,
        &protocol::events::CandidateStarted {
            run: context.run.id.clone(),
            job: context.job.key.clone(),
            index: context.candidate.index,
            status: CandidateStatus::Calling,
        },
        &at,
    )];
    if context.candidate.index == 1 && context.candidate.attempts == 0 {
        events.insert(
            0,
            event(
                context,
                &protocol::events::JobStarted {
                    run: context.run.id.clone(),
                    job: context.job.key.clone(),
                    status: JobStatus::Running,
                },
                &at,
            ),
        );
    }
    Ok(daemon
        .store
        .write(move |tx| {
            let claimed = rows::claim(tx, &id, &at)?;
            Ok::<_, StoreError>((claimed, if claimed { events } else { Vec::new() }))
        })
        .await?)
}

async fn provider_key(daemon: &Daemon, secret: &str) -> Result<SecretString, ApiError> {
    let secrets = daemon.secrets.get().await;
    let name = secret.to_owned();
    tokio::task::spawn_blocking(move || secrets.get(&name))
        .await
        .map_err(|err| ApiError::new(ErrorKind::Internal, ErrorCode::Internal, err.to_string()))?
        .map(|(key, _)| key)
        .map_err(|err| {
            ApiError::new(
                ErrorKind::Provider,
                ErrorCode::NoKey,
                format!("the provider key (secret `{secret}`) cannot be read: {err}"),
            )
            .with_hint(format!(
                "store it with `kromactl secret set {secret}`, then `kromactl run retry RUN`"
            ))
        })
}

/// Reads the job's input images and checks they are still the files that were planned.
fn read_inputs(job: &PlannedJob) -> Result<Vec<InputFile>, ApiError> {
    job.input_images
        .iter()
        .map(|image| {
            let path = Path::new(&image.path);
            let bytes = crate::postprocess::budget::read_image_file(path).map_err(|err| {
                ApiError::new(
                    ErrorKind::Infra,
                    ErrorCode::InputUnreadable,
                    format!("cannot read input image: {}", err.message),
                )
                .with_hint("restore the file, or create a new run")
            })?;
            if let Some(expected) = &image.sha256
                && crate::runs::planner::hex_sha256(&bytes) != *expected
            {
                return Err(ApiError::validation(
                    ErrorCode::InputChanged,
                    format!(
                        "input image {} changed since the run was planned",
                        path.display()
                    ),
                )
                .with_hint("create a new run so the plan records the current file"));
            }
            Ok(InputFile {
                file_name: path
                    .file_name()
                    .map(|name| name.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "image.png".to_owned()),
                bytes,
            })
        })
        .collect()
}

async fn call_with_retries(daemon: &Arc<Daemon>, context: &Context) -> Ended {
    let provider_name = context.plan.provider.clone();
    let provider = match daemon
        .store
        .read(move |conn| crate::store::providers::get(conn, &provider_name))
        .await
    {
        Ok(provider) => provider,
        Err(err) => {
            return Ended::Failed(
                ApiError::from(err)
                    .with_hint("recreate the provider account, then `kromactl run retry RUN`"),
            );
        }
    };
    let key = match provider_key(daemon, &provider.secret_name).await {
        Ok(key) => key,
        Err(err) => return Ended::Failed(err),
    };
    let http = match daemon.http() {
        Ok(http) => http,
        Err(err) => return Ended::Failed(err),
    };
    let job = context.job.clone();
    let inputs = match tokio::task::spawn_blocking(move || read_inputs(&job)).await {
        Ok(Ok(inputs)) => inputs,
        Ok(Err(err)) => return Ended::Failed(err),
        Err(err) => {
            return Ended::Failed(ApiError::new(
                ErrorKind::Internal,
                ErrorCode::Internal,
                err.to_string(),
            ));
        }
    };
    let generation = &context.settings.generation;
    let mut attempt = context.candidate.attempts.max(1);
    loop {
        let call = ImageCall {
            base_url: &context.plan.base_url,
            organization: provider.organization.as_deref(),
            model: &context.plan.model,
            prompt: &context.job.prompt,
            size: &context.plan.size,
            quality: &context.plan.quality,
            images: inputs
                .iter()
                .map(|input| InputFile {
                    file_name: input.file_name.clone(),
                    bytes: input.bytes.clone(),
                })
                .collect(),
            idempotency_key: &context.candidate.idempotency_key,
            timeout: Duration::from_secs(generation.timeout_secs),
        };
        let (message, retry_after) = match providers::generate(
            http,
            call,
            &key,
            daemon.secrets.scrubber(),
        )
        .await
        {
            Ok(generated) => return Ended::Succeeded(generated),
            Err(CallError::Retry {
                message,
                retry_after,
            }) => (message, retry_after),
            Err(CallError::Lost { message }) if provider.honors_idempotency_key => (message, None),
            Err(CallError::Lost { message }) => {
                return Ended::Unknown(
                    ApiError::new(
                        ErrorKind::Provider,
                        ErrorCode::CallLost,
                        format!("{message}; the provider may have billed this call"),
                    )
                    .with_hint(
                        "check the provider's usage page; `kromactl run retry RUN` calls again and may pay again",
                    ),
                );
            }
            Err(CallError::Rejected {
                message,
                code,
                hint,
            }) => {
                return Ended::Failed(
                    ApiError::new(ErrorKind::Provider, code, message).with_hint(hint),
                );
            }
            Err(CallError::BadAnswer {
                message,
                usage,
                request_id,
            }) => {
                return Ended::FailedBilled {
                    error: ApiError::new(ErrorKind::Provider, ErrorCode::BadAnswer, message)
                        .with_hint(
                            "the provider billed this call; `kromactl run retry RUN` tries again",
                        ),
                    usage,
                    request_id,
                };
            }
        };
        if attempt >= generation.max_attempts {
            return Ended::Failed(
                ApiError::new(
                    ErrorKind::Provider,
                    ErrorCode::ProviderUnavailable,
                    format!("{message} (gave up after {attempt} attempts)"),
                )
                .with_hint("the provider is busy or down; `kromactl run retry RUN` later"),
            );
        }
        let delay = backoff(generation.retry_base_ms, attempt, retry_after);
        tracing::info!(candidate = %context.candidate.id, attempt, delay_ms = delay.as_millis() as u64, %message, "retrying");
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = daemon.shutdown.cancelled() => return Ended::Requeue,
        }
        let run_id = context.run.id.clone();
        let id = context.candidate.id.clone();
        let still_running = daemon
            .store
            .write(move |tx| {
                let run = rows::get_run(tx, &run_id)?;
                let running = run.status == "running";
                if running {
                    rows::count_attempt(tx, &id)?;
                }
                Ok::<_, StoreError>((running, Vec::new()))
            })
            .await;
        match still_running {
            Ok(true) => attempt += 1,
            Ok(false) => return Ended::Canceled,
            Err(err) => return Ended::Failed(err.into()),
        }
    }
}

/// The delay before attempt `attempt + 1`: `Retry-After` when the provider sent one (at most a
/// minute), else `base · 2^(attempt-1)` with jitter between half and all of it.
fn backoff(base_ms: u64, attempt: u32, retry_after: Option<Duration>) -> Duration {
    let cap = Duration::from_secs(60);
    if let Some(after) = retry_after {
        return after.min(cap);
    }
    let full = base_ms.saturating_mul(1 << attempt.saturating_sub(1).min(16));
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(attempt);
    let jitter = hasher.finish() % (full / 2 + 1);
    Duration::from_millis(full / 2 + jitter).min(cap)
}

struct Cost {
    usd: f64,
    source: &'static str,
    usage: Option<Usage>,
}

/// The actual cost from the usage when the model has token prices, else the price table's.
fn cost_of(context: &Context, usage: Option<&Usage>) -> Cost {
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
async fn record_end(
    daemon: &Daemon,
    context: &Context,
    status: CandidateStatus,
    error: &ApiError,
    cost: Option<Cost>,
) -> Result<(), ApiError> {
    let id = context.candidate.id.clone();
    let at = clock::now();
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
pub(super) struct Books {
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
            let status = if job.iter().any(|c| c.status == "succeeded") {
                JobStatus::Done
            } else {
                JobStatus::Failed
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

/// Whether a candidate still has work: a call to make or finish, or a chain to run.
fn is_pending(candidate: &CandidateRow) -> bool {
    matches!(candidate.status.as_str(), "planned" | "calling") || candidate.postprocess == "pending"
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

/// Checks the answer, writes it with its provenance and records it.
async fn store_success(
    daemon: &Daemon,
    context: &Context,
    generated: Generated,
) -> Result<(), ApiError> {
    let _local = daemon
        .runner
        .local
        .clone()
        .acquire_owned()
        .await
        .map_err(|err| ApiError::new(ErrorKind::Internal, ErrorCode::Internal, err.to_string()))?;
    let cost = cost_of(context, generated.usage.as_ref());
    let info = match crate::files::images::inspect(
        &generated.bytes,
        daemon.config.limits.max_image_pixels,
    ) {
        Ok(info) => info,
        Err(problem) => {
            let error = ApiError::new(
                ErrorKind::Provider,
                ErrorCode::BadAnswer,
                format!("the provider's image is unusable: {problem}"),
            )
            .with_hint("the provider billed this call; `kromactl run retry RUN` tries again");
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
            .map_err(|err| ApiError::new(ErrorKind::Internal, ErrorCode::Internal, err))?;
        (tagged, context.rel_path())
    } else {
        // Only PNG carries the provenance chunks; other formats keep their own extension.
        let rel = context.rel_path();
        let rel = format!("{}.{}", rel.trim_end_matches(".png"), info.extension);
        (generated.bytes, rel)
    };
    let root = context.root().to_owned();
    let stamp = clock::now();
    let write_rel = rel_path.clone();
    let written_bytes = bytes.clone();
    tokio::task::spawn_blocking(move || write::place(&root, &write_rel, &written_bytes, &stamp))
        .await
        .map_err(|err| ApiError::new(ErrorKind::Internal, ErrorCode::Internal, err.to_string()))?
        .map_err(|err| {
            ApiError::new(
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
async fn record_success(
    daemon: &Daemon,
    context: &Context,
    bytes: &[u8],
    info: crate::files::images::ImageInfo,
    rel_path: String,
    cost: Cost,
    request_id: Option<String>,
) -> Result<(), ApiError> {
    let sha256 = crate::runs::planner::hex_sha256(bytes);
    let at = clock::now();
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
pub async fn finish_run_if_done(daemon: &Daemon, run_id: &str) -> Result<(), ApiError> {
    let id = run_id.to_owned();
    let at = clock::now();
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
                .filter(|c| c.status == "succeeded")
                .count();
            let complete = candidates
                .iter()
                .filter(|c| c.status == "succeeded" && c.postprocess != "failed")
                .count();
            let status = if run.status == "canceling" {
                RunStatus::Canceled
            } else if complete == candidates.len() {
                RunStatus::Done
            } else if generated > 0 {
                RunStatus::Partial
            } else {
                RunStatus::Failed
            };
            rows::set_run_status(tx, &id, status.as_str(), Some(&at))?;
            let spent = rows::run_spent(tx, &id)?;
            let run = rows::get_run(tx, &id)?;
            let detail = super::detail(&run, &candidates, spent)?;
            let event = NewEvent::of(
                at.clone(),
                Some(run.project_slug.clone()),
                &protocol::events::RunFinished {
                    run: id.clone(),
                    status,
                    spent_usd: image_models::round_usd(spent),
                },
            );
            Ok((Some(detail), vec![event]))
        })
        .await?;
    if let Some(detail) = finished {
        let written = tokio::task::spawn_blocking(move || super::write_record(&detail))
            .await
            .map_err(|err| {
                ApiError::new(ErrorKind::Internal, ErrorCode::Internal, err.to_string())
            })?;
        if let Err(err) = written {
            tracing::error!(run = %run_id, message = %err.message, "could not write the run record");
        }
    }
    Ok(())
}

/// Settles what a stopped daemon left `calling`, then closes runs that have nothing left.
pub async fn recover(daemon: &Daemon) -> Result<(), ApiError> {
    let calling = daemon.store.read(rows::calling).await?;
    for candidate in calling {
        let id = candidate.id.clone();
        if let Err(err) = recover_one(daemon, candidate).await {
            tracing::error!(candidate = %id, message = %err.message, "could not recover candidate");
        }
    }
    let pending = daemon.store.read(rows::pending_postprocess).await?;
    for candidate in pending {
        if let Err(err) = super::chain::run(daemon, &candidate.id).await {
            tracing::error!(candidate = %candidate.id, message = %err.message, "could not finish a post-process chain");
        }
    }
    let active = daemon.store.read(rows::active_runs).await?;
    for run in active {
        finish_run_if_done(daemon, &run.id).await?;
    }
    Ok(())
}

/// `calling` → `planned`, keeping the idempotency key.
async fn requeue(daemon: &Daemon, id: &str) -> Result<(), ApiError> {
    let id = id.to_owned();
    daemon
        .store
        .write(move |tx| {
            tx.execute(
                "UPDATE run_candidates SET status = 'planned' WHERE id = ?1 AND status = 'calling'",
                [&id],
            )?;
            Ok::<_, StoreError>(((), Vec::new()))
        })
        .await?;
    Ok(())
}

async fn recover_one(daemon: &Daemon, candidate: CandidateRow) -> Result<(), ApiError> {
    let context = load(daemon, candidate).await?;
    if recover_stored_output(daemon, &context).await? {
        return Ok(());
    }
    let provider_name = context.plan.provider.clone();
    let honors = daemon
        .store
        .read(move |conn| crate::store::providers::get(conn, &provider_name))
        .await
        .map(|provider| provider.honors_idempotency_key)
        .unwrap_or(false);
    if honors {
        // Same idempotency key: the provider answers with the first result and bills once.
        return requeue(daemon, &context.candidate.id).await;
    }
    let error = ApiError::new(
        ErrorKind::Provider,
        ErrorCode::CallLost,
        "kromad stopped during this call; the provider may have billed it and the result is lost",
    )
    .with_hint(
        "check the provider's usage page; `kromactl run retry RUN` calls again and may pay again",
    );
    let cost = Cost {
        usd: context.estimated_usd(),
        source: "estimate_unknown",
        usage: None,
    };
    record_end(
        daemon,
        &context,
        CandidateStatus::Unknown,
        &error,
        Some(cost),
    )
    .await
}

/// Records a `calling` candidate from its output file when that file is already in place (it
/// was written, then kromad stopped before recording it); answers whether it was.
async fn recover_stored_output(daemon: &Daemon, context: &Context) -> Result<bool, ApiError> {
    let path = context.root().join(context.rel_path());
    let id = context.candidate.id.clone();
    let found = tokio::task::spawn_blocking(move || png::holds_candidate(&path, &id))
        .await
        .map_err(|err| ApiError::new(ErrorKind::Internal, ErrorCode::Internal, err.to_string()))?;
    if let Some(bytes) = found {
        let provenance = png::read_provenance(&bytes);
        let info = crate::files::images::inspect(&bytes, u64::MAX).map_err(|problem| {
            ApiError::new(
                ErrorKind::Infra,
                ErrorCode::IoError,
                format!("recovered output: {problem}"),
            )
        })?;
        let usage: Option<Usage> = provenance
            .get("usage")
            .and_then(|usage| serde_json::from_str(usage).ok());
        let cost = match (
            provenance
                .get("cost_usd")
                .and_then(|usd| usd.parse::<f64>().ok()),
            provenance.get("cost_source").map(String::as_str),
        ) {
            (Some(usd), Some("usage")) => Cost {
                usd,
                source: "usage",
                usage,
            },
            _ => cost_of(context, usage.as_ref()),
        };
        tracing::info!(candidate = %context.candidate.id, "recovered a stored output after a restart");
        let rel_path = context.rel_path();
        let request_id = provenance.get("request_id").cloned();
        record_success(daemon, context, &bytes, info, rel_path, cost, request_id).await?;
        return Ok(true);
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_honours_retry_after() {
        for attempt in 1..6 {
            let full = 100u64 << (attempt - 1);
            let delay = backoff(100, attempt, None).as_millis() as u64;
            assert!((full / 2..=full).contains(&delay), "{attempt}: {delay}");
        }
        assert_eq!(
            backoff(100, 1, Some(Duration::from_secs(3))),
            Duration::from_secs(3)
        );
        assert_eq!(
            backoff(100, 1, Some(Duration::from_secs(600))),
            Duration::from_secs(60)
        );
        assert!(backoff(60_000, 30, None) <= Duration::from_secs(60));
    }
}
