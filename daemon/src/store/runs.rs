//! Rows of `runs` and `run_candidates` (costs and budgets are in `costs.rs`, re-exported here).
//!
//! A candidate's `reserved_usd` is what its next call can cost at most; it is held against the
//! budgets while the candidate is `planned` or `calling` in an active run, and becomes a cost
//! event (the actual cost) in the same transaction that records the call's result.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::StoreError;
use kroma_protocol::run::{CandidateStatus, RunStatus};

pub use super::costs::{
    NewCost, cost_lines, cost_totals, insert_cost, project_reserved, project_spend,
    put_reported_models, reported_models, run_spent, total_reserved,
};

#[derive(Debug, Clone, PartialEq)]
pub struct RunRow {
    pub id: String,
    pub project_id: String,
    pub project_slug: String,
    pub project_root: String,
    pub status: String,
    pub stage: String,
    pub model: String,
    pub provider: String,
    pub plan_json: String,
    pub max_cost_usd: f64,
    pub confirmed_cost_usd: Option<f64>,
    pub record_path: String,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CandidateRow {
    pub id: String,
    pub run_id: String,
    pub job_index: u32,
    pub job_key: String,
    pub index: u32,
    pub status: String,
    pub idempotency_key: String,
    pub attempts: u32,
    pub reserved_usd: f64,
    pub asset_id: Option<String>,
    pub output_path: Option<String>,
    pub request_id: Option<String>,
    pub error_json: Option<String>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// Sum of this candidate's cost events.
    pub cost_usd: Option<f64>,
    /// `none`, `pending`, `done` or `failed`.
    pub postprocess: String,
    pub final_asset_id: Option<String>,
    pub final_path: Option<String>,
    pub postprocess_error_json: Option<String>,
    /// The QA guard's verdict (`protocol::run::CandidateQa` as JSON), once checked.
    pub qa_json: Option<String>,
}

impl RunRow {
    /// The run's status; the column keeps the enum's text.
    pub fn state(&self) -> Result<RunStatus, StoreError> {
        parse_stored("run status", &self.status)
    }
}

impl CandidateRow {
    /// The candidate's status; the column keeps the enum's text.
    pub fn state(&self) -> Result<CandidateStatus, StoreError> {
        parse_stored("candidate status", &self.status)
    }
}

/// A stored enum value, read back.
pub fn parse_stored<T: serde::de::DeserializeOwned>(
    what: &str,
    value: &str,
) -> Result<T, StoreError> {
    serde_json::from_value(serde_json::Value::String(value.to_owned()))
        .map_err(|_| StoreError::Corrupt(format!("{what} `{value}`")))
}

pub struct NewCandidate {
    pub id: String,
    pub job_index: u32,
    pub job_key: String,
    pub index: u32,
    pub idempotency_key: String,
    pub reserved_usd: f64,
}

const RUN_COLUMNS: &str =
    "r.id, r.project_id, p.slug AS project_slug, p.root AS project_root, r.status, r.stage,
     r.model, r.provider, r.plan_json, r.max_cost_usd, r.confirmed_cost_usd, r.record_path,
     r.created_at, r.started_at, r.finished_at";

fn run_from_row(row: &Row<'_>) -> rusqlite::Result<RunRow> {
    Ok(RunRow {
        id: row.get("id")?,
        project_id: row.get("project_id")?,
        project_slug: row.get("project_slug")?,
        project_root: row.get("project_root")?,
        status: row.get("status")?,
        stage: row.get("stage")?,
        model: row.get("model")?,
        provider: row.get("provider")?,
        plan_json: row.get("plan_json")?,
        max_cost_usd: row.get("max_cost_usd")?,
        confirmed_cost_usd: row.get("confirmed_cost_usd")?,
        record_path: row.get("record_path")?,
        created_at: row.get("created_at")?,
        started_at: row.get("started_at")?,
        finished_at: row.get("finished_at")?,
    })
}

pub(super) const CANDIDATE_COLUMNS: &str =
    "c.id, c.run_id, c.job_index, c.job_key, c.candidate_index, c.status,
     c.idempotency_key, c.attempts, c.reserved_usd, c.asset_id, c.output_path, c.request_id,
     c.error_json, c.started_at, c.finished_at,
     (SELECT sum(usd) FROM cost_events e WHERE e.candidate_id = c.id) AS cost_usd,
     c.postprocess, c.final_asset_id, c.final_path, c.postprocess_error_json, c.qa_json";

pub(super) fn candidate_from_row(row: &Row<'_>) -> rusqlite::Result<CandidateRow> {
    Ok(CandidateRow {
        id: row.get("id")?,
        run_id: row.get("run_id")?,
        job_index: row.get("job_index")?,
        job_key: row.get("job_key")?,
        index: row.get("candidate_index")?,
        status: row.get("status")?,
        idempotency_key: row.get("idempotency_key")?,
        attempts: row.get("attempts")?,
        reserved_usd: row.get("reserved_usd")?,
        asset_id: row.get("asset_id")?,
        output_path: row.get("output_path")?,
        request_id: row.get("request_id")?,
        error_json: row.get("error_json")?,
        started_at: row.get("started_at")?,
        finished_at: row.get("finished_at")?,
        cost_usd: row.get("cost_usd")?,
        postprocess: row.get("postprocess")?,
        final_asset_id: row.get("final_asset_id")?,
        final_path: row.get("final_path")?,
        postprocess_error_json: row.get("postprocess_error_json")?,
        qa_json: row.get("qa_json")?,
    })
}

pub fn insert_run(
    conn: &Connection,
    run: &RunRow,
    jobs: &[kroma_protocol::run::PlannedJob],
    candidates: &[NewCandidate],
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO runs (id, project_id, status, stage, model, provider, plan_json, max_cost_usd,
                           record_path, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            run.id,
            run.project_id,
            run.status,
            run.stage,
            run.model,
            run.provider,
            run.plan_json,
            run.max_cost_usd,
            run.record_path,
            run.created_at
        ],
    )?;
    let mut statement = conn.prepare_cached(
        "INSERT INTO run_jobs (run_id, job_index, job_key, scene, scene_asset_id, prompt,
                               prompt_sha256, endpoint, candidates, max_cost_usd, input_images)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?;
    for (index, job) in jobs.iter().enumerate() {
        let images = serde_json::to_string(&job.input_images)
            .map_err(|err| StoreError::Corrupt(format!("input images: {err}")))?;
        let endpoint = match job.endpoint {
            kroma_protocol::run::Endpoint::Edits => "edits",
            kroma_protocol::run::Endpoint::Generations => "generations",
        };
        statement.execute(params![
            run.id,
            index as i64,
            job.key,
            job.scene,
            job.input_images
                .first()
                .and_then(|image| image.asset.clone()),
            job.prompt,
            job.prompt_sha256,
            endpoint,
            job.candidates,
            job.max_cost_usd,
            images
        ])?;
    }
    let mut statement = conn.prepare_cached(
        "INSERT INTO run_candidates (id, run_id, job_index, job_key, candidate_index, status,
                                     idempotency_key, reserved_usd)
         VALUES (?1, ?2, ?3, ?4, ?5, 'planned', ?6, ?7)",
    )?;
    for candidate in candidates {
        statement.execute(params![
            candidate.id,
            run.id,
            candidate.job_index,
            candidate.job_key,
            candidate.index,
            candidate.idempotency_key,
            candidate.reserved_usd
        ])?;
    }
    Ok(())
}

pub fn get_run(conn: &Connection, id: &str) -> Result<RunRow, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {RUN_COLUMNS} FROM runs r JOIN projects p ON p.id = r.project_id WHERE r.id = ?1"
    ))?
    .query_row([id], run_from_row)
    .optional()?
    .ok_or_else(|| StoreError::EntityNotFound {
        what: "run",
        key: id.to_owned(),
    })
}

pub fn list_runs(
    conn: &Connection,
    project_id: Option<&str>,
    status: Option<&str>,
    limit: u32,
) -> Result<Vec<RunRow>, StoreError> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {RUN_COLUMNS} FROM runs r JOIN projects p ON p.id = r.project_id
         WHERE (?1 IS NULL OR r.project_id = ?1) AND (?2 IS NULL OR r.status = ?2)
         ORDER BY r.created_at DESC, r.id DESC LIMIT ?3"
    ))?;
    let rows = statement.query_map(params![project_id, status, limit], run_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Runs that were executing when the daemon stopped.
pub fn active_runs(conn: &Connection) -> Result<Vec<RunRow>, StoreError> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {RUN_COLUMNS} FROM runs r JOIN projects p ON p.id = r.project_id
         WHERE r.status IN ('running', 'canceling') ORDER BY r.started_at, r.id"
    ))?;
    let rows = statement.query_map([], run_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Runs that ended at or after `since` (an RFC 3339 UTC time), newest first, at most 1,000.
pub fn finished_since(conn: &Connection, since: &str) -> Result<Vec<RunRow>, StoreError> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {RUN_COLUMNS} FROM runs r JOIN projects p ON p.id = r.project_id
         WHERE r.finished_at >= ?1 ORDER BY r.finished_at DESC, r.id LIMIT 1000"
    ))?;
    let rows = statement.query_map([since], run_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn candidates(conn: &Connection, run_id: &str) -> Result<Vec<CandidateRow>, StoreError> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {CANDIDATE_COLUMNS} FROM run_candidates c WHERE c.run_id = ?1
         ORDER BY c.job_index, c.candidate_index"
    ))?;
    let rows = statement.query_map([run_id], candidate_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// One candidate by id.
pub fn candidate(conn: &Connection, id: &str) -> Result<CandidateRow, StoreError> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {CANDIDATE_COLUMNS} FROM run_candidates c WHERE c.id = ?1"
    ))?;
    statement
        .query_row([id], candidate_from_row)
        .optional()?
        .ok_or_else(|| StoreError::EntityNotFound {
            what: "candidate",
            key: id.to_owned(),
        })
}

/// The first `per_run` `planned` candidates of each running run, with the run's project id:
/// oldest run first, in job order.
pub fn runnable(
    conn: &Connection,
    per_run: u32,
) -> Result<Vec<(CandidateRow, String)>, StoreError> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT * FROM (
             SELECT {CANDIDATE_COLUMNS}, r.project_id AS project_id, r.started_at AS run_started,
                    row_number() OVER (
                        PARTITION BY c.run_id ORDER BY c.job_index, c.candidate_index
                    ) AS place
             FROM run_candidates c JOIN runs r ON r.id = c.run_id
             WHERE r.status = 'running' AND c.status = 'planned'
         )
         WHERE place <= ?1
         ORDER BY run_started, run_id, job_index, candidate_index"
    ))?;
    let rows = statement.query_map([per_run], |row| {
        Ok((candidate_from_row(row)?, row.get("project_id")?))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn set_run_status(
    conn: &Connection,
    id: &str,
    status: RunStatus,
    finished_at: Option<&str>,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE runs SET status = ?2, finished_at = coalesce(?3, finished_at) WHERE id = ?1",
        params![id, status.as_str(), finished_at],
    )?;
    Ok(())
}

/// Marks a run started (again, for a retry), adding what was confirmed.
pub fn start_run(conn: &Connection, id: &str, confirmed: f64, at: &str) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE runs SET status = 'running', started_at = coalesce(started_at, ?3),
                         finished_at = NULL,
                         confirmed_cost_usd = coalesce(confirmed_cost_usd, 0) + ?2
         WHERE id = ?1",
        params![id, confirmed, at],
    )?;
    Ok(())
}

/// `planned` → `calling`, one more attempt. Answers false if the candidate is no longer
/// `planned` (canceled meanwhile).
pub fn claim(conn: &Connection, id: &str, at: &str) -> Result<bool, StoreError> {
    let changed = conn.execute(
        "UPDATE run_candidates SET status = 'calling', attempts = attempts + 1,
                started_at = coalesce(started_at, ?2)
         WHERE id = ?1 AND status = 'planned'",
        params![id, at],
    )?;
    Ok(changed == 1)
}

/// One more attempt of a candidate that is already `calling` (a retry after 429/5xx).
pub fn count_attempt(conn: &Connection, id: &str) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE run_candidates SET attempts = attempts + 1 WHERE id = ?1",
        [id],
    )?;
    Ok(())
}

pub struct Outcome<'a> {
    pub status: &'a str,
    /// `pending` when a succeeded candidate has a chain to run, else `none`.
    pub postprocess: &'a str,
    pub asset_id: Option<&'a str>,
    pub output_path: Option<&'a str>,
    pub request_id: Option<&'a str>,
    pub error_json: Option<String>,
    pub at: &'a str,
}

/// Records how a candidate ended; its reservation is released.
pub fn finish_candidate(conn: &Connection, id: &str, outcome: &Outcome) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE run_candidates SET status = ?2, asset_id = ?3, output_path = ?4,
                request_id = coalesce(?5, request_id), error_json = ?6, finished_at = ?7,
                reserved_usd = 0, postprocess = ?8
         WHERE id = ?1",
        params![
            id,
            outcome.status,
            outcome.asset_id,
            outcome.output_path,
            outcome.request_id,
            outcome.error_json,
            outcome.at,
            outcome.postprocess
        ],
    )?;
    Ok(())
}

/// Records how a candidate's post-process chain ended.
pub fn finish_postprocess(
    conn: &Connection,
    id: &str,
    final_asset_id: Option<&str>,
    final_path: Option<&str>,
    error_json: Option<String>,
) -> Result<(), StoreError> {
    let status = if error_json.is_some() {
        "failed"
    } else {
        "done"
    };
    conn.execute(
        "UPDATE run_candidates SET postprocess = ?2, final_asset_id = ?3, final_path = ?4,
                postprocess_error_json = ?5
         WHERE id = ?1 AND postprocess = 'pending'",
        params![id, status, final_asset_id, final_path, error_json],
    )?;
    Ok(())
}

/// Succeeded candidates whose chain has not run yet (a stop came in between).
pub fn pending_postprocess(conn: &Connection) -> Result<Vec<CandidateRow>, StoreError> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {CANDIDATE_COLUMNS} FROM run_candidates c WHERE c.postprocess = 'pending'"
    ))?;
    let rows = statement.query_map([], candidate_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Candidate `id`, if its chain is pending.
pub fn pending_candidate(conn: &Connection, id: &str) -> Result<Option<CandidateRow>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {CANDIDATE_COLUMNS} FROM run_candidates c
             WHERE c.id = ?1 AND c.postprocess = 'pending'"
        ))?
        .query_row([id], candidate_from_row)
        .optional()?)
}

/// Puts candidates back to `planned` for `run.retry`, each with a new idempotency key and
/// reservation. `statuses` are the ones to retry.
pub fn reset_for_retry(
    conn: &Connection,
    run_id: &str,
    statuses: &[&str],
    reserved_per_call: impl Fn(u32) -> f64,
) -> Result<Vec<String>, StoreError> {
    let mut retried = Vec::new();
    for candidate in candidates(conn, run_id)? {
        if !statuses.contains(&candidate.status.as_str()) {
            continue;
        }
        conn.execute(
            "UPDATE run_candidates SET status = 'planned', idempotency_key = ?2, reserved_usd = ?3,
                    error_json = NULL, finished_at = NULL, postprocess = 'none',
                    postprocess_error_json = NULL
             WHERE id = ?1",
            params![
                candidate.id,
                uuid::Uuid::new_v4().to_string(),
                reserved_per_call(candidate.job_index)
            ],
        )?;
        retried.push(candidate.id);
    }
    Ok(retried)
}

/// The run a candidate belongs to.
pub fn run_of_candidate(conn: &Connection, id: &str) -> Result<String, StoreError> {
    Ok(conn.query_row(
        "SELECT run_id FROM run_candidates WHERE id = ?1",
        [id],
        |row| row.get(0),
    )?)
}

/// Puts the failed post-process chains of a run back to `pending`; answers their candidates.
pub fn reset_failed_chains(conn: &Connection, run_id: &str) -> Result<Vec<String>, StoreError> {
    let mut statement = conn.prepare_cached(
        "UPDATE run_candidates SET postprocess = 'pending', postprocess_error_json = NULL,
                final_asset_id = NULL, final_path = NULL
         WHERE run_id = ?1 AND status = 'succeeded' AND postprocess = 'failed'
         RETURNING id",
    )?;
    let ids = statement.query_map([run_id], |row| row.get(0))?;
    Ok(ids.collect::<Result<_, _>>()?)
}

/// Cancels every `planned` candidate of a run; answers how many.
pub fn cancel_planned(conn: &Connection, run_id: &str, at: &str) -> Result<usize, StoreError> {
    Ok(conn.execute(
        "UPDATE run_candidates SET status = 'canceled', reserved_usd = 0, finished_at = ?2
         WHERE run_id = ?1 AND status = 'planned'",
        params![run_id, at],
    )?)
}

/// Candidates left `calling` by a daemon that stopped.
pub fn calling(conn: &Connection) -> Result<Vec<CandidateRow>, StoreError> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {CANDIDATE_COLUMNS} FROM run_candidates c WHERE c.status = 'calling'"
    ))?;
    let rows = statement.query_map([], candidate_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub use super::review::*;
