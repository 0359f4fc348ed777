//! Rows of `cost_events` and what is held against the budgets: spend by project and day, the
//! reservations of active runs, the cost summary, and the model dates providers reported.

use rusqlite::{Connection, params};

use super::StoreError;

pub struct NewCost<'a> {
    pub project_id: &'a str,
    pub run_id: &'a str,
    pub candidate_id: &'a str,
    pub provider: &'a str,
    pub model: &'a str,
    pub operation: &'a str,
    pub usd: f64,
    pub source: &'a str,
    pub usage_json: Option<String>,
    pub at: &'a str,
}

/// Money already spent by a project: in total, and on `day`.
pub fn project_spend(
    conn: &Connection,
    project_id: &str,
    day: &str,
) -> Result<(f64, f64), StoreError> {
    Ok(conn.query_row(
        "SELECT coalesce(sum(usd), 0), coalesce(sum(CASE WHEN day = ?2 THEN usd END), 0)
         FROM cost_events WHERE project_id = ?1",
        params![project_id, day],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?)
}

/// The most a project's active runs can still spend.
pub fn project_reserved(conn: &Connection, project_id: &str) -> Result<f64, StoreError> {
    Ok(conn.query_row(
        "SELECT coalesce(sum(c.reserved_usd), 0) FROM run_candidates c JOIN runs r ON r.id = c.run_id
         WHERE r.project_id = ?1 AND r.status IN ('running', 'canceling')
           AND c.status IN ('planned', 'calling')",
        [project_id],
        |row| row.get(0),
    )?)
}

/// All reservations of active runs, any project.
pub fn total_reserved(conn: &Connection, project_id: Option<&str>) -> Result<f64, StoreError> {
    Ok(conn.query_row(
        "SELECT coalesce(sum(c.reserved_usd), 0) FROM run_candidates c JOIN runs r ON r.id = c.run_id
         WHERE (?1 IS NULL OR r.project_id = ?1) AND r.status IN ('running', 'canceling')
           AND c.status IN ('planned', 'calling')",
        [project_id],
        |row| row.get(0),
    )?)
}

pub fn insert_cost(conn: &Connection, cost: &NewCost) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO cost_events (project_id, run_id, candidate_id, provider, model, operation, usd,
                                  source, usage_json, day, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            cost.project_id,
            cost.run_id,
            cost.candidate_id,
            cost.provider,
            cost.model,
            cost.operation,
            cost.usd,
            cost.source,
            cost.usage_json,
            &cost.at[..10],
            cost.at
        ],
    )?;
    Ok(())
}

/// Sum of a run's cost events.
pub fn run_spent(conn: &Connection, run_id: &str) -> Result<f64, StoreError> {
    Ok(conn.query_row(
        "SELECT coalesce(sum(usd), 0) FROM cost_events WHERE run_id = ?1",
        [run_id],
        |row| row.get(0),
    )?)
}

/// (key, calls, usd) lines of cost events grouped by `group` (`project`, `model` or `day`).
pub fn cost_lines(
    conn: &Connection,
    group: &str,
    project_id: Option<&str>,
    since: Option<&str>,
) -> Result<Vec<(String, u64, f64)>, StoreError> {
    let column = match group {
        "project" => "p.slug",
        "model" => "e.model",
        _ => "e.day",
    };
    let mut statement = conn.prepare(&format!(
        "SELECT {column}, count(*), sum(e.usd) FROM cost_events e JOIN projects p ON p.id = e.project_id
         WHERE (?1 IS NULL OR e.project_id = ?1) AND (?2 IS NULL OR e.at >= ?2)
         GROUP BY {column} ORDER BY {column}"
    ))?;
    let rows = statement.query_map(params![project_id, since], |row| {
        Ok((row.get(0)?, row.get::<_, i64>(1)? as u64, row.get(2)?))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// (calls, usd, usd from usage) of matching cost events.
pub fn cost_totals(
    conn: &Connection,
    project_id: Option<&str>,
    since: Option<&str>,
) -> Result<(u64, f64, f64), StoreError> {
    Ok(conn.query_row(
        "SELECT count(*), coalesce(sum(usd), 0), coalesce(sum(CASE WHEN source = 'usage' THEN usd END), 0)
         FROM cost_events WHERE (?1 IS NULL OR project_id = ?1) AND (?2 IS NULL OR at >= ?2)",
        params![project_id, since],
        |row| Ok((row.get::<_, i64>(0)? as u64, row.get(1)?, row.get(2)?)),
    )?)
}

/// Shutdown dates providers reported: model → (provider, date).
pub fn reported_models(
    conn: &Connection,
) -> Result<crate::providers::image_models::Reported, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT model, provider, shutdown_date FROM provider_models ORDER BY provider, model",
    )?;
    let rows = statement.query_map([], |row| {
        Ok((
            row.get::<_, String>(0)?,
            (row.get::<_, String>(1)?, row.get::<_, Option<String>>(2)?),
        ))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn put_reported_models(
    conn: &Connection,
    provider: &str,
    models: &[(String, Option<String>)],
    at: &str,
) -> Result<(), StoreError> {
    conn.execute(
        "DELETE FROM provider_models WHERE provider = ?1",
        [provider],
    )?;
    let mut statement = conn.prepare_cached(
        "INSERT INTO provider_models (provider, model, shutdown_date, seen_at) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for (model, date) in models {
        statement.execute(params![provider, model, date, at])?;
    }
    Ok(())
}
