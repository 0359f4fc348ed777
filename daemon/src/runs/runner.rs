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
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;

use kroma_protocol as protocol;
use protocol::run::{CandidateStatus, JobStatus, PlannedJob, RunStatus};
use protocol::{Action, ErrorCode, ErrorKind};
use secrecy::SecretString;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::task::TaskTracker;

use super::context::{Context, event, load};
use super::decide::{Attempt, Ended, Next, after_failure};
use super::outcomes::{Cost, cost_of, finish_run_if_done, record_end, store_success};
use super::recover::{recover, requeue, settle_after_panic};
use crate::Services;
use crate::config::RunLimits;
use crate::error::{Hint, Problem};
use crate::providers::{self, ImageCall, InputFile};
use crate::store::StoreError;
use crate::store::runs::{self as rows, CandidateRow};

/// The runner's shared state, owned by the daemon.
pub struct Runner {
    wake: Notify,
    provider_calls: Arc<Semaphore>,
    pub(super) provider_limit: usize,
    pub(super) local: Arc<Semaphore>,
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
    /// A runner whose tasks go on `tasks`, the daemon's tracker of background work.
    pub fn new(limits: &RunLimits, tasks: TaskTracker) -> Runner {
        Runner {
            wake: Notify::new(),
            provider_calls: Arc::new(Semaphore::new(limits.provider_calls)),
            provider_limit: limits.provider_calls,
            local: Arc::new(Semaphore::new(limits.local_jobs)),
            in_flight: Mutex::new(HashMap::new()),
            tasks,
        }
    }

    /// The local-work slots, shared with one-off post-process steps.
    pub fn local_slots(&self) -> Arc<Semaphore> {
        self.local.clone()
    }

    /// Runs `work` in the background on the tracker shutdown waits for (an instruction's local
    /// step).
    pub fn spawn(&self, work: impl std::future::Future<Output = ()> + Send + 'static) {
        self.tasks.spawn(work);
    }

    /// Runs a candidate's pending post-process chain in the background (a retried chain), then
    /// closes its run if nothing else is left.
    pub fn run_chain(&self, daemon: Arc<Services>, candidate: String) {
        self.tasks.spawn(async move {
            if let Err(err) = super::chain::run(&daemon, &candidate).await {
                tracing::error!(%candidate, message = %err.message, "the post-process chain could not be recorded");
            }
            if let Err(err) = super::review::run(&daemon, &candidate).await {
                tracing::error!(%candidate, message = %err.message, "the QA guard could not check the candidate");
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

    /// Stops taking work and waits up to `grace` for the background work (the runner's loop,
    /// calls in flight being recorded, chains, the model sweeper) to end.
    pub async fn drain(&self, grace: Duration) {
        self.tasks.close();
        if tokio::time::timeout(grace, self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                calls = self.tasks.len(),
                "background work still running at shutdown; calls in flight are recovered at the next start"
            );
        }
    }
}

/// Recovers what a stopped daemon left, then executes candidates until shutdown.
pub async fn run(daemon: Arc<Services>) {
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
async fn dispatch(daemon: &Arc<Services>) -> Result<(), StoreError> {
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

async fn process(daemon: Arc<Services>, candidate: CandidateRow, permit: OwnedSemaphorePermit) {
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
            let reason = super::panic_message(panic.as_ref());
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
    if let Err(err) = super::review::run(&daemon, &id).await {
        tracing::error!(candidate = %id, message = %err.message, "the QA guard could not check the candidate");
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

/// Calls for one candidate and records how it ended; answers whether its post-process chain is
/// now pending.
async fn execute(daemon: &Arc<Services>, candidate: CandidateRow) -> Result<bool, Problem> {
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
            let error = Problem::new(
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

async fn claim(daemon: &Services, context: &Context) -> Result<bool, Problem> {
    let id = context.candidate.id.clone();
    let at = daemon.clock.now();
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

async fn provider_key(daemon: &Services, secret: &str) -> Result<SecretString, Problem> {
    let secrets = daemon.secrets.get().await;
    let name = secret.to_owned();
    tokio::task::spawn_blocking(move || secrets.get(&name))
        .await
        .map_err(|err| Problem::new(ErrorKind::Internal, ErrorCode::Internal, err.to_string()))?
        .map(|(key, _)| key)
        .map_err(|err| {
            Problem::new(
                ErrorKind::Provider,
                ErrorCode::NoKey,
                format!("the provider key (secret `{secret}`) cannot be read: {err}"),
            )
            .with_hint(Hint::new(
                format!("store the key in secret `{secret}`, then retry the run"),
                Action::call::<protocol::secret::Set>([("name", secret.into())], &["value"]),
            ))
        })
}

/// Reads the job's input images and checks they are still the files that were planned.
fn read_inputs(job: &PlannedJob) -> Result<Vec<InputFile>, Problem> {
    job.input_images
        .iter()
        .map(|image| {
            let path = Path::new(&image.path);
            let bytes = crate::postprocess::budget::read_image_file(path).map_err(|err| {
                Problem::new(
                    ErrorKind::Infra,
                    ErrorCode::InputUnreadable,
                    format!("cannot read input image: {}", err.message),
                )
                .with_hint("restore the file, or create a new run")
            })?;
            if let Some(expected) = &image.sha256
                && crate::runs::planner::hex_sha256(&bytes) != *expected
            {
                return Err(Problem::validation(
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

async fn call_with_retries(daemon: &Arc<Services>, context: &Context) -> Ended {
    let provider_name = context.plan.provider.clone();
    let provider = match daemon
        .store
        .read(move |conn| crate::store::providers::get(conn, &provider_name))
        .await
    {
        Ok(provider) => provider,
        Err(err) => {
            return Ended::Failed(Problem::from(err).with_hint(Hint::new(
                format!(
                    "recreate provider account `{}`, then retry the run",
                    context.plan.provider
                ),
                Action::call::<protocol::provider::Create>(
                    [("name", context.plan.provider.as_str().into())],
                    &["kind"],
                ),
            )));
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
            return Ended::Failed(Problem::new(
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
        let failed = match providers::generate(http, call, &key, daemon.secrets.scrubber()).await {
            Ok(generated) => return Ended::Succeeded(generated),
            Err(err) => err,
        };
        let next = after_failure(
            failed,
            Attempt {
                run: &context.run.id,
                number: attempt,
                max: generation.max_attempts,
                retry_base_ms: generation.retry_base_ms,
                honors_idempotency_key: provider.honors_idempotency_key,
            },
        );
        let (message, delay) = match next {
            Next::Retry { message, delay } => (message, delay),
            Next::End(ended) => return ended,
        };
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
                let running = run.state()? == RunStatus::Running;
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
