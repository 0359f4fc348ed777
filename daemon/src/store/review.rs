//! The QA guard's verdicts on run candidates, files that move to the archive (their rows
//! follow), and the approved baseline of each scene.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::StoreError;
use super::runs::{CANDIDATE_COLUMNS, CandidateRow, candidate_from_row};

/// The condition of a candidate whose final output waits for the QA guard: it succeeded, its
/// chain (if any) is done, and no verdict is stored.
const AWAITING_REVIEW: &str =
    "c.status = 'succeeded' AND c.postprocess IN ('none', 'done') AND c.qa_json IS NULL";

/// Candidates waiting for the QA guard (a stop came in between).
pub fn awaiting_review(conn: &Connection) -> Result<Vec<CandidateRow>, StoreError> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {CANDIDATE_COLUMNS} FROM run_candidates c WHERE {AWAITING_REVIEW}"
    ))?;
    let rows = statement.query_map([], candidate_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Candidate `id`, if it waits for the QA guard.
pub fn candidate_awaiting_review(
    conn: &Connection,
    id: &str,
) -> Result<Option<CandidateRow>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {CANDIDATE_COLUMNS} FROM run_candidates c WHERE c.id = ?1 AND {AWAITING_REVIEW}"
        ))?
        .query_row([id], candidate_from_row)
        .optional()?)
}

/// Stores a candidate's verdict. When the checked file was moved to the archive (`moved`:
/// the old and new paths relative to the project root), the candidate's paths and the asset
/// rows follow it. Answers whether the verdict was stored (false: it was meanwhile).
pub fn record_review(
    conn: &Connection,
    id: &str,
    qa_json: &str,
    moved: Option<(&str, &str)>,
) -> Result<bool, StoreError> {
    let changed = conn.execute(
        "UPDATE run_candidates SET qa_json = ?2 WHERE id = ?1 AND qa_json IS NULL",
        params![id, qa_json],
    )?;
    if changed == 0 {
        return Ok(false);
    }
    if let Some((from, to)) = moved {
        let project_id: String = conn.query_row(
            "SELECT r.project_id FROM runs r JOIN run_candidates c ON c.run_id = r.id
             WHERE c.id = ?1",
            [id],
            |row| row.get(0),
        )?;
        follow_move(conn, &project_id, from, to)?;
    }
    Ok(true)
}

/// A file of the project moved from `from` to `to` (paths relative to its root): its asset row
/// and the run candidates that name it follow.
pub fn follow_move(
    conn: &Connection,
    project_id: &str,
    from: &str,
    to: &str,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE assets SET rel_path = ?3 WHERE project_id = ?1 AND rel_path = ?2",
        params![project_id, from, to],
    )?;
    for column in ["final_path", "output_path"] {
        conn.execute(
            &format!(
                "UPDATE run_candidates SET {column} = ?3
                 WHERE {column} = ?2 AND run_id IN (SELECT id FROM runs WHERE project_id = ?1)"
            ),
            params![project_id, from, to],
        )?;
    }
    Ok(())
}

/// Sets succeeded candidates `ids` back to `planned` for another paid call (they drifted from
/// their baseline), with a new idempotency key, forgetting their chain and verdict.
pub fn reset_succeeded(
    conn: &Connection,
    ids: &[String],
    reserved: impl Fn(&str) -> f64,
) -> Result<(), StoreError> {
    for id in ids {
        conn.execute(
            "UPDATE run_candidates SET status = 'planned', idempotency_key = ?2, reserved_usd = ?3,
                    error_json = NULL, finished_at = NULL, postprocess = 'none',
                    postprocess_error_json = NULL, final_asset_id = NULL, final_path = NULL,
                    qa_json = NULL
             WHERE id = ?1 AND status = 'succeeded'",
            params![id, uuid::Uuid::new_v4().to_string(), reserved(id)],
        )?;
    }
    Ok(())
}

/// A scene's approved baseline, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaselineRow {
    pub scene_asset_id: String,
    pub asset_id: String,
    /// The approved image's current path, relative to the project root.
    pub rel_path: String,
    pub run_id: String,
    pub job_key: String,
    pub candidate_index: u32,
    pub stage: String,
    pub approved_at: String,
}

const BASELINE_COLUMNS: &str = "b.scene_asset_id, b.asset_id, a.rel_path, b.run_id, b.job_key,
     b.candidate_index, b.stage, b.approved_at";

fn baseline_from_row(row: &Row<'_>) -> rusqlite::Result<BaselineRow> {
    Ok(BaselineRow {
        scene_asset_id: row.get(0)?,
        asset_id: row.get(1)?,
        rel_path: row.get(2)?,
        run_id: row.get(3)?,
        job_key: row.get(4)?,
        candidate_index: row.get(5)?,
        stage: row.get(6)?,
        approved_at: row.get(7)?,
    })
}

/// Sets (or replaces) the baseline of a scene.
pub fn set_baseline(
    conn: &Connection,
    project_id: &str,
    baseline: &BaselineRow,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO baselines (project_id, scene_asset_id, asset_id, run_id, job_key,
                                candidate_index, stage, approved_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (project_id, scene_asset_id) DO UPDATE SET
             asset_id = excluded.asset_id, run_id = excluded.run_id, job_key = excluded.job_key,
             candidate_index = excluded.candidate_index, stage = excluded.stage,
             approved_at = excluded.approved_at",
        params![
            project_id,
            baseline.scene_asset_id,
            baseline.asset_id,
            baseline.run_id,
            baseline.job_key,
            baseline.candidate_index,
            baseline.stage,
            baseline.approved_at,
        ],
    )?;
    Ok(())
}

/// Every approved baseline of a project, by scene asset id.
pub fn baselines(conn: &Connection, project_id: &str) -> Result<Vec<BaselineRow>, StoreError> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {BASELINE_COLUMNS} FROM baselines b JOIN assets a ON a.id = b.asset_id
         WHERE b.project_id = ?1 ORDER BY b.scene_asset_id"
    ))?;
    let rows = statement.query_map([project_id], baseline_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}
