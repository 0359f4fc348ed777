//! Runs after planning: their views for the API, their record files, their outputs and the
//! background runner that executes them.

pub(crate) mod chain;
pub mod context;
pub mod decide;
pub mod gates;
pub mod inputs;
pub mod outcomes;
pub mod planner;
mod record;
pub mod recover;
pub mod review;
pub mod runner;
mod schedule;
pub mod settings;
pub mod stored;

use std::path::Path;

use kroma_protocol as protocol;
use protocol::qa::Verdict;
use protocol::run::{
    CandidateDetail, CandidateQa, CandidateStatus, JobDetail, JobStatus, Plan, RunDetail,
    RunStatus, RunSummary, Stage,
};
use protocol::{ErrorCode, ErrorData};

use crate::error::Problem;
use crate::review::qa;
use crate::store::StoreError;
use crate::store::runs::{BaselineRow, CandidateRow, RunRow};

pub use crate::store::runs::parse_stored;

/// The stored plan of a run, as the wire type.
pub fn plan_of(run: &RunRow) -> Result<Plan, StoreError> {
    stored::StoredPlan::read(&run.plan_json)
        .map(Plan::from)
        .map_err(|err| StoreError::Corrupt(format!("plan of run {}: {err}", run.id)))
}

pub fn summary(
    run: &RunRow,
    candidates: &[CandidateRow],
    spent: f64,
) -> Result<RunSummary, StoreError> {
    let plan_jobs = candidates
        .iter()
        .map(|c| c.job_index)
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let count = |status: &str| candidates.iter().filter(|c| c.status == status).count() as u32;
    Ok(RunSummary {
        id: run.id.clone(),
        project: run.project_slug.clone(),
        stage: parse_stored::<Stage>("stage", &run.stage)?,
        status: parse_stored::<RunStatus>("run status", &run.status)?,
        model: run.model.clone(),
        jobs: plan_jobs as u32,
        candidates: candidates.len() as u32,
        succeeded: count("succeeded"),
        failed: count("failed") + count("unknown"),
        max_cost_usd: run.max_cost_usd,
        confirmed_cost_usd: run.confirmed_cost_usd,
        spent_usd: crate::providers::image_models::round_usd(spent),
        created_at: run.created_at.clone(),
        started_at: run.started_at.clone(),
        finished_at: run.finished_at.clone(),
        record: run.record_path.clone(),
    })
}

pub fn candidate_detail(
    row: &CandidateRow,
    project_root: &Path,
) -> Result<CandidateDetail, StoreError> {
    let error = row
        .error_json
        .as_deref()
        .map(serde_json::from_str::<ErrorData>)
        .transpose()
        .map_err(|err| StoreError::Corrupt(format!("candidate error: {err}")))?;
    Ok(CandidateDetail {
        index: row.index,
        status: parse_stored::<CandidateStatus>("candidate status", &row.status)?,
        attempts: row.attempts,
        asset: row.asset_id.clone(),
        output: row
            .output_path
            .as_deref()
            .map(|rel| project_root.join(rel).display().to_string()),
        cost_usd: row.cost_usd.map(crate::providers::image_models::round_usd),
        request_id: row.request_id.clone(),
        error,
        postprocess: (row.postprocess != "none").then(|| row.postprocess.clone()),
        final_asset: row.final_asset_id.clone(),
        final_output: row
            .final_path
            .as_deref()
            .map(|rel| project_root.join(rel).display().to_string()),
        postprocess_error: row
            .postprocess_error_json
            .as_deref()
            .map(serde_json::from_str::<ErrorData>)
            .transpose()
            .map_err(|err| StoreError::Corrupt(format!("candidate postprocess error: {err}")))?,
        qa: row
            .qa_json
            .as_deref()
            .map(serde_json::from_str::<CandidateQa>)
            .transpose()
            .map_err(|err| StoreError::Corrupt(format!("candidate QA verdict: {err}")))?,
    })
}

/// A job's status: pending work first; then done when a candidate may win, failed on the output
/// guard when every succeeded candidate was checked and failed hard, failed when none succeeded.
pub fn job_status(candidates: &[CandidateDetail], ranking: &[u32]) -> JobStatus {
    let pending = candidates.iter().any(|c| {
        matches!(
            c.status,
            CandidateStatus::Planned | CandidateStatus::Calling
        )
    });
    let started = candidates.iter().any(|c| c.attempts > 0);
    let succeeded = candidates
        .iter()
        .any(|c| c.status == CandidateStatus::Succeeded);
    let reviewing = candidates.iter().any(|c| {
        c.status == CandidateStatus::Succeeded
            && c.qa.is_none()
            && c.postprocess.as_deref() != Some("failed")
    });
    let all_failed_guard = candidates
        .iter()
        .filter(|c| c.status == CandidateStatus::Succeeded)
        .all(|c| c.qa.as_ref().is_some_and(|qa| qa.verdict == Verdict::Fail));
    match (pending || reviewing, started, succeeded) {
        (true, false, _) => JobStatus::Planned,
        (true, true, _) => JobStatus::Running,
        (false, _, true) if ranking.is_empty() && all_failed_guard => JobStatus::FailedOutputGuard,
        (false, _, true) => JobStatus::Done,
        (false, _, false) => JobStatus::Failed,
    }
}

/// The job's candidates that may win, best first, and why the first won.
pub fn rank_job(candidates: &[CandidateDetail]) -> (Vec<u32>, Option<String>) {
    let ranked: Vec<qa::Ranked> = candidates
        .iter()
        .filter(|c| c.status == CandidateStatus::Succeeded)
        .filter_map(|c| {
            let verdict = c.qa.as_ref()?;
            Some(qa::Ranked {
                index: c.index,
                rank: verdict.rank,
                drifted: verdict.drift.as_ref().is_some_and(|drift| drift.drifted),
            })
        })
        .collect();
    let ranking = qa::ranking(&ranked);
    let why = qa::why(&ranked, &ranking);
    (ranking, why)
}

/// A run with its plan, its jobs and candidates, each job's ranking and winner, and which of its
/// candidates is its scene's approved baseline (`baselines`: the project's).
pub fn detail(
    run: &RunRow,
    candidates: &[CandidateRow],
    spent: f64,
    baselines: &[BaselineRow],
) -> Result<RunDetail, StoreError> {
    let plan = plan_of(run)?;
    let root = Path::new(&run.project_root);
    let mut jobs = Vec::with_capacity(plan.jobs.len());
    for (index, job) in plan.jobs.iter().enumerate() {
        let details = candidates
            .iter()
            .filter(|c| c.job_index as usize == index)
            .map(|c| candidate_detail(c, root))
            .collect::<Result<Vec<_>, _>>()?;
        let (ranking, why) = rank_job(&details);
        let approved = baselines
            .iter()
            .find(|b| b.run_id == run.id && b.job_key == job.key)
            .map(|b| b.candidate_index);
        jobs.push(JobDetail {
            key: job.key.clone(),
            status: job_status(&details, &ranking),
            candidates: details,
            winner: ranking.first().copied(),
            ranking,
            why,
            baseline: job.baseline.clone(),
            approved,
        });
    }
    Ok(RunDetail {
        run: summary(run, candidates, spent)?,
        plan,
        jobs,
    })
}

/// Writes the run record atomically.
pub fn write_record(detail: &RunDetail, written_at: String) -> Result<(), Problem> {
    let record = record::Record::of(detail, written_at);
    let mut json = serde_json::to_vec_pretty(&record).map_err(|err| {
        Problem::new(
            protocol::ErrorKind::Internal,
            ErrorCode::Internal,
            format!("run record does not serialize: {err}"),
        )
    })?;
    json.push(b'\n');
    let path = Path::new(&detail.run.record);
    crate::files::write::replace(path, &json).map_err(|err| {
        Problem::new(
            protocol::ErrorKind::Infra,
            ErrorCode::IoError,
            format!("writing run record {}: {err}", path.display()),
        )
        .with_hint("check that the project folder is writable and the disk is not full")
    })
}

/// The text a panic carried.
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}
