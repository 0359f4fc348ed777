//! What a stopped kromad, or a panicked task, left behind: candidates left `calling` are recorded
//! from their output file when it is in place, else called again only when the provider honours
//! idempotency keys, else ended `unknown` with their estimate counted; pending chains run again.

use kroma_protocol as protocol;
use protocol::run::CandidateStatus;
use protocol::{ErrorCode, ErrorKind};

use super::context::{Context, load};
use super::decide::{Settle, after_crash, after_panic};
use super::outcomes::{Cost, cost_of, finish_run_if_done, record_end, record_success};
use crate::Services;
use crate::error::Problem;
use crate::files::png;
use crate::providers::image_models::Usage;
use crate::store::StoreError;
use crate::store::runs::{self as rows, CandidateRow};

/// Ends a candidate whose task panicked. One whose output is already in place is recorded from
/// it, as after a crash; one still `calling` may have been billed, so it ends `unknown` with its
/// estimate counted; one not yet claimed ends `failed` at no cost. Never called again: a bug
/// that panicked once would panic again.
pub(crate) async fn settle_after_panic(
    daemon: &Services,
    id: &str,
    reason: &str,
) -> Result<(), Problem> {
    let lookup = id.to_owned();
    let candidate = daemon
        .store
        .read(move |conn| rows::candidate(conn, &lookup))
        .await?;
    let status = candidate.state()?;
    let context = load(daemon, candidate).await?;
    let found = match status {
        CandidateStatus::Calling => stored_output(&context).await?,
        _ => None,
    };
    let error = |message: &str| {
        Problem::new(
            ErrorKind::Internal,
            ErrorCode::Internal,
            format!("{message} (kromad panicked: {reason})"),
        )
        .with_hint("this is a bug in kromad; the log has the details")
    };
    match (after_panic(status, found.is_some()), found) {
        (Settle::FromOutput, Some(bytes)) => record_from_output(daemon, &context, bytes).await,
        (Settle::Lost, _) => {
            let error = error("this candidate's call may have been billed and its result is lost");
            record_lost(daemon, &context, &error).await
        }
        (Settle::Failed, _) => {
            let error = error("this candidate failed before its call");
            record_end(daemon, &context, CandidateStatus::Failed, &error, None).await
        }
        // Already recorded before the panic.
        _ => Ok(()),
    }
}

/// Settles what a stopped daemon left `calling`, then closes runs that have nothing left.
pub async fn recover(daemon: &Services) -> Result<(), Problem> {
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
    let unchecked = daemon.store.read(rows::awaiting_review).await?;
    for candidate in unchecked {
        if let Err(err) = super::review::run(daemon, &candidate.id).await {
            tracing::error!(candidate = %candidate.id, message = %err.message, "the QA guard could not check a candidate");
        }
    }
    let active = daemon.store.read(rows::active_runs).await?;
    for run in active {
        finish_run_if_done(daemon, &run.id).await?;
    }
    rewrite_stale_records(daemon).await
}

/// Rewrites the record of each run that ended in the last day whose record file does not say
/// so: kromad stopped between committing the run's end and writing its record. Older runs were
/// checked at an earlier start.
async fn rewrite_stale_records(daemon: &Services) -> Result<(), Problem> {
    let since = crate::clock::format(daemon.clock.now_utc() - time::Duration::days(1));
    let ended = daemon
        .store
        .read(move |conn| rows::finished_since(conn, &since))
        .await?;
    for run in ended {
        let (path, status) = (run.record_path.clone(), run.status.clone());
        let stale = tokio::task::spawn_blocking(move || recorded_status(&path) != Some(status))
            .await
            .unwrap_or(false);
        if !stale {
            continue;
        }
        let id = run.id.clone();
        let detail = daemon
            .store
            .read(move |conn| {
                let run = rows::get_run(conn, &id)?;
                let candidates = rows::candidates(conn, &id)?;
                let spent = rows::run_spent(conn, &id)?;
                let baselines = rows::baselines(conn, &run.project_id)?;
                super::detail(&run, &candidates, spent, &baselines)
            })
            .await?;
        let written_at = daemon.clock.now();
        let written = tokio::task::spawn_blocking(move || super::write_record(&detail, written_at))
            .await
            .map_err(|err| {
                Problem::new(ErrorKind::Internal, ErrorCode::Internal, err.to_string())
            })?;
        match written {
            Ok(()) => tracing::info!(run = %run.id, "rewrote a run record a stop left behind"),
            Err(err) => {
                tracing::error!(run = %run.id, message = %err.message, "could not rewrite a run record")
            }
        }
    }
    Ok(())
}

/// The status a run record file holds (`run.status`), if it can be read; records are small, and
/// one larger than 64 MiB is not read.
fn recorded_status(path: &str) -> Option<String> {
    let file = std::fs::File::open(path).ok()?;
    if file.metadata().ok()?.len() > 64 * 1024 * 1024 {
        return None;
    }
    let record: serde_json::Value = serde_json::from_reader(std::io::BufReader::new(file)).ok()?;
    record["run"]["status"].as_str().map(str::to_owned)
}

/// `calling` → `planned`, keeping the idempotency key.
pub(crate) async fn requeue(daemon: &Services, id: &str) -> Result<(), Problem> {
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

pub(crate) async fn recover_one(daemon: &Services, candidate: CandidateRow) -> Result<(), Problem> {
    let context = load(daemon, candidate).await?;
    let found = stored_output(&context).await?;
    let provider_name = context.plan.provider.clone();
    let honors = daemon
        .store
        .read(move |conn| crate::store::providers::get(conn, &provider_name))
        .await
        .map(|provider| provider.honors_idempotency_key)
        .unwrap_or(false);
    match (after_crash(found.is_some(), honors), found) {
        (Settle::FromOutput, Some(bytes)) => record_from_output(daemon, &context, bytes).await,
        // Same idempotency key: the provider answers with the first result and bills once.
        (Settle::Requeue, _) => requeue(daemon, &context.candidate.id).await,
        _ => {
            let error = Problem::new(
                ErrorKind::Provider,
                ErrorCode::CallLost,
                "kromad stopped during this call; the provider may have billed it and the result is lost",
            )
            .with_hint(super::decide::retry_hint(
                &context.run.id,
                "check the provider's usage page; retrying the run calls again and may pay again",
            ));
            record_lost(daemon, &context, &error).await
        }
    }
}

/// Ends a candidate whose call may have been billed and whose result is lost: `unknown`, with the
/// estimate counted against the budgets.
async fn record_lost(daemon: &Services, context: &Context, error: &Problem) -> Result<(), Problem> {
    let cost = Cost {
        usd: context.estimated_usd(),
        source: "estimate_unknown",
        usage: None,
    };
    record_end(daemon, context, CandidateStatus::Unknown, error, Some(cost)).await
}

/// The candidate's output file, when it is already in place (it was written, then kromad stopped
/// or panicked before recording it).
async fn stored_output(context: &Context) -> Result<Option<Vec<u8>>, Problem> {
    let path = context.root().join(context.rel_path());
    let id = context.candidate.id.clone();
    tokio::task::spawn_blocking(move || png::holds_candidate(&path, &id))
        .await
        .map_err(|err| Problem::new(ErrorKind::Internal, ErrorCode::Internal, err.to_string()))
}

/// Records a candidate from its output file, with the cost its provenance recorded.
async fn record_from_output(
    daemon: &Services,
    context: &Context,
    bytes: Vec<u8>,
) -> Result<(), Problem> {
    let provenance = png::read_provenance(&bytes);
    let info = crate::files::images::inspect(&bytes, u64::MAX).map_err(|problem| {
        Problem::new(
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
    tracing::info!(candidate = %context.candidate.id, "recorded a stored output of a call that was not recorded");
    let rel_path = context.rel_path();
    let request_id = provenance.get("request_id").cloned();
    record_success(daemon, context, &bytes, info, rel_path, cost, request_id).await
}
