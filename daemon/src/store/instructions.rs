//! Rows of `instructions` and `agent_allowance`.
//!
//! The rules (which state may follow which, what the allowance admits) are in
//! `crate::instructions`; this module only reads and writes rows. The allowance checks and the
//! writes they allow happen in one transaction, so instructions created at once cannot overrun
//! it together.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::StoreError;
use kroma_protocol::instruction::{Allowance, InstructionState};

#[derive(Debug, Clone, PartialEq)]
pub struct InstructionRow {
    pub id: String,
    pub project_id: String,
    pub project_slug: String,
    pub project_root: String,
    pub kind: String,
    pub state: String,
    pub objective: String,
    pub source_text: Option<String>,
    pub payload_json: String,
    pub plan_json: Option<String>,
    pub max_cost_usd: f64,
    pub approval: Option<String>,
    pub approved_max_usd: Option<f64>,
    pub waiting_for: Option<String>,
    pub channel: String,
    pub program: String,
    pub client_name: Option<String>,
    pub peer_uid: Option<u32>,
    pub run_id: Option<String>,
    pub outcome_json: Option<String>,
    pub error_json: Option<String>,
    pub code_hash: Option<String>,
    pub code_max_usd: Option<f64>,
    pub code_expires_at: Option<String>,
    pub code_tries: u32,
    pub page_id: Option<String>,
    pub page_token: Option<String>,
    /// The chat message that produced it.
    pub message_id: Option<String>,
    /// The drop-folder rule whose file produced it.
    pub watch_rule_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl InstructionRow {
    /// The state as the protocol's enum; a value this build does not know is a store error.
    pub fn state(&self) -> Result<InstructionState, StoreError> {
        super::runs::parse_stored("instruction state", &self.state)
    }

    /// The stored code's hash while it may approve: not expired at `now` (RFC 3339, the store's
    /// clock format) and made for the instruction's present maximum cost.
    pub fn usable_code_hash(&self, now: &str) -> Option<&str> {
        let fresh = self
            .code_expires_at
            .as_deref()
            .is_some_and(|expiry| expiry > now);
        let same_cost = self
            .code_max_usd
            .is_some_and(|max| (max - self.max_cost_usd).abs() < 1e-9);
        self.code_hash.as_deref().filter(|_| fresh && same_cost)
    }
}

const COLUMNS: &str = "i.id, i.project_id, p.slug, p.root, i.kind, i.state, i.objective,
    i.source_text, i.payload_json, i.plan_json, i.max_cost_usd, i.approval, i.approved_max_usd,
    i.waiting_for, i.channel, i.program, i.client_name, i.peer_uid, i.run_id, i.outcome_json,
    i.error_json, i.code_hash, i.code_max_usd, i.code_expires_at, i.code_tries, i.created_at,
    i.updated_at, i.page_id, i.page_token, i.message_id, i.watch_rule_id";

fn from_row(row: &Row) -> rusqlite::Result<InstructionRow> {
    Ok(InstructionRow {
        id: row.get(0)?,
        project_id: row.get(1)?,
        project_slug: row.get(2)?,
        project_root: row.get(3)?,
        kind: row.get(4)?,
        state: row.get(5)?,
        objective: row.get(6)?,
        source_text: row.get(7)?,
        payload_json: row.get(8)?,
        plan_json: row.get(9)?,
        max_cost_usd: row.get(10)?,
        approval: row.get(11)?,
        approved_max_usd: row.get(12)?,
        waiting_for: row.get(13)?,
        channel: row.get(14)?,
        program: row.get(15)?,
        client_name: row.get(16)?,
        peer_uid: row.get(17)?,
        run_id: row.get(18)?,
        outcome_json: row.get(19)?,
        error_json: row.get(20)?,
        code_hash: row.get(21)?,
        code_max_usd: row.get(22)?,
        code_expires_at: row.get(23)?,
        code_tries: row.get(24)?,
        created_at: row.get(25)?,
        updated_at: row.get(26)?,
        page_id: row.get(27)?,
        page_token: row.get(28)?,
        message_id: row.get(29)?,
        watch_rule_id: row.get(30)?,
    })
}

/// Inserts a new instruction (its state and approval already decided).
pub fn insert(
    conn: &Connection,
    row: &InstructionRow,
    approved_day: Option<&str>,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO instructions (id, project_id, kind, state, objective, source_text,
            payload_json, plan_json, max_cost_usd, approval, approved_max_usd, approved_day,
            waiting_for, channel, program, client_name, peer_uid, created_at, updated_at,
            message_id, watch_rule_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?18,
            ?19, ?20)",
    )?
    .execute(params![
        row.id,
        row.project_id,
        row.kind,
        row.state,
        row.objective,
        row.source_text,
        row.payload_json,
        row.plan_json,
        row.max_cost_usd,
        row.approval,
        row.approved_max_usd,
        approved_day,
        row.waiting_for,
        row.channel,
        row.program,
        row.client_name,
        row.peer_uid,
        row.created_at,
        row.message_id,
        row.watch_rule_id,
    ])?;
    Ok(())
}

pub fn get(conn: &Connection, id: &str) -> Result<Option<InstructionRow>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM instructions i JOIN projects p ON p.id = i.project_id
             WHERE i.id = ?1"
        ))?
        .query_row([id], from_row)
        .optional()?)
}

/// Newest first.
pub fn list(
    conn: &Connection,
    project_id: Option<&str>,
    state: Option<InstructionState>,
    limit: u32,
) -> Result<Vec<InstructionRow>, StoreError> {
    let rows = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM instructions i JOIN projects p ON p.id = i.project_id
             WHERE (?1 IS NULL OR i.project_id = ?1) AND (?2 IS NULL OR i.state = ?2)
             ORDER BY i.created_at DESC, i.rowid DESC LIMIT ?3"
        ))?
        .query_map(
            params![project_id, state.map(InstructionState::as_str), limit],
            from_row,
        )?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Instructions a restart must pick up again: approved but not finished.
pub fn unfinished(conn: &Connection) -> Result<Vec<InstructionRow>, StoreError> {
    let rows = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM instructions i JOIN projects p ON p.id = i.project_id
             WHERE i.state IN ('queued', 'running') ORDER BY i.created_at, i.rowid"
        ))?
        .query_map([], from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// The instructions produced by the messages of `session_id` with `seq` in `after..=through`,
/// oldest first.
pub fn by_messages(
    conn: &Connection,
    session_id: &str,
    after: u32,
    through: u32,
) -> Result<Vec<InstructionRow>, StoreError> {
    let rows = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM instructions i JOIN projects p ON p.id = i.project_id
             JOIN chat_messages m ON m.id = i.message_id
             WHERE m.session_id = ?1 AND m.seq > ?2 AND m.seq <= ?3
             ORDER BY m.seq, i.created_at, i.rowid"
        ))?
        .query_map(params![session_id, after, through], from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// The instruction that started `run_id`, if one did.
pub fn by_run(conn: &Connection, run_id: &str) -> Result<Option<InstructionRow>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM instructions i JOIN projects p ON p.id = i.project_id
             WHERE i.run_id = ?1"
        ))?
        .query_row([run_id], from_row)
        .optional()?)
}

/// What one transition writes besides the state. `None` leaves a column as it is.
#[derive(Debug, Default)]
pub struct Change {
    /// How it was approved, the cost approved and the UTC day of the approval.
    pub approval: Option<(String, f64, String)>,
    pub waiting_for: Option<Option<String>>,
    pub run_id: Option<String>,
    pub spent_usd: Option<f64>,
    pub outcome_json: Option<String>,
    pub error_json: Option<String>,
}

/// Moves an instruction from `from` to `to`; answers false (and writes nothing) when it is no
/// longer in `from`.
pub fn transition(
    conn: &Connection,
    id: &str,
    from: InstructionState,
    to: InstructionState,
    change: &Change,
    at: &str,
) -> Result<bool, StoreError> {
    let (approval, approved_max, approved_day) = match &change.approval {
        Some((approval, max, day)) => (Some(approval), Some(*max), Some(day)),
        None => (None, None, None),
    };
    let waiting_set = change.waiting_for.is_some();
    let waiting_for = change.waiting_for.clone().flatten();
    let updated = conn
        .prepare_cached(
            "UPDATE instructions SET state = ?3, updated_at = ?4,
                approval = COALESCE(?5, approval),
                approved_max_usd = COALESCE(?6, approved_max_usd),
                approved_day = COALESCE(?7, approved_day),
                waiting_for = CASE WHEN ?8 THEN ?9 ELSE waiting_for END,
                run_id = COALESCE(?10, run_id),
                spent_usd = COALESCE(?11, spent_usd),
                outcome_json = COALESCE(?12, outcome_json),
                error_json = COALESCE(?13, error_json),
                code_hash = CASE WHEN ?3 = 'awaiting_confirmation' THEN code_hash ELSE NULL END,
                page_token = CASE WHEN ?3 = 'awaiting_confirmation' THEN page_token ELSE NULL END
             WHERE id = ?1 AND state = ?2",
        )?
        .execute(params![
            id,
            from.as_str(),
            to.as_str(),
            at,
            approval,
            approved_max,
            approved_day,
            waiting_set,
            waiting_for,
            change.run_id,
            change.spent_usd,
            change.outcome_json,
            change.error_json,
        ])?;
    Ok(updated == 1)
}

/// Remembers the run an instruction created, before the run is started: a restart then starts
/// that run rather than creating another.
pub fn link_run(conn: &Connection, id: &str, run_id: &str, at: &str) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE instructions SET run_id = ?2, updated_at = ?3 WHERE id = ?1")?
        .execute(params![id, run_id, at])?;
    Ok(())
}

/// Replaces the plan and maximum cost of an instruction that goes back to a person.
pub fn replan(
    conn: &Connection,
    id: &str,
    plan_json: &str,
    max_cost_usd: f64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE instructions SET plan_json = ?2, max_cost_usd = ?3, run_id = NULL,
            approval = NULL, approved_max_usd = NULL, approved_day = NULL WHERE id = ?1",
    )?
    .execute(params![id, plan_json, max_cost_usd])?;
    Ok(())
}

/// Gives a waiting instruction a fresh confirmation page: a new id for its URL and a new token
/// for its form. Pages made before are dead.
pub fn set_page(conn: &Connection, id: &str, page_id: &str, token: &str) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE instructions SET page_id = ?2, page_token = ?3 WHERE id = ?1")?
        .execute(params![id, page_id, token])?;
    Ok(())
}

/// The instruction whose confirmation page has this id.
pub fn by_page(conn: &Connection, page_id: &str) -> Result<Option<InstructionRow>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM instructions i JOIN projects p ON p.id = i.project_id
             WHERE i.page_id = ?1"
        ))?
        .query_row([page_id], from_row)
        .optional()?)
}

/// Stores a fresh one-time code (replacing any earlier one) and clears the wrong tries.
pub fn set_code(
    conn: &Connection,
    id: &str,
    code_hash: &str,
    max_usd: f64,
    expires_at: &str,
    reset_tries: bool,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE instructions SET code_hash = ?2, code_max_usd = ?3, code_expires_at = ?4,
            code_tries = CASE WHEN ?5 THEN 0 ELSE code_tries END WHERE id = ?1",
    )?
    .execute(params![id, code_hash, max_usd, expires_at, reset_tries])?;
    Ok(())
}

/// Counts a wrong code; answers the wrong tries so far.
pub fn count_wrong_code(conn: &Connection, id: &str) -> Result<u32, StoreError> {
    Ok(conn
        .prepare_cached(
            "UPDATE instructions SET code_tries = code_tries + 1 WHERE id = ?1
             RETURNING code_tries",
        )?
        .query_row([id], |row| row.get(0))?)
}

/// The allowance a person set, and when; zero everywhere until then.
pub fn allowance(conn: &Connection) -> Result<(Allowance, Option<String>), StoreError> {
    let row = conn
        .prepare_cached(
            "SELECT per_instruction_usd, per_project_daily_usd, daily_usd, set_at
             FROM agent_allowance WHERE id = 1",
        )?
        .query_row([], |row| {
            Ok((
                Allowance {
                    per_instruction_usd: row.get(0)?,
                    per_project_daily_usd: row.get(1)?,
                    daily_usd: row.get(2)?,
                },
                Some(row.get::<_, String>(3)?),
            ))
        })
        .optional()?;
    Ok(row.unwrap_or_default())
}

pub fn set_allowance(
    conn: &Connection,
    allowance: &Allowance,
    at: &str,
    uid: Option<u32>,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO agent_allowance (id, per_instruction_usd, per_project_daily_usd, daily_usd,
            set_at, set_by_uid) VALUES (1, ?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (id) DO UPDATE SET per_instruction_usd = ?1, per_project_daily_usd = ?2,
            daily_usd = ?3, set_at = ?4, set_by_uid = ?5",
    )?
    .execute(params![
        allowance.per_instruction_usd,
        allowance.per_project_daily_usd,
        allowance.daily_usd,
        at,
        uid
    ])?;
    Ok(())
}

/// What instructions approved through the allowance on `day` hold or spent: their approved
/// maximum while they may still spend, what they spent once they are finished. With
/// `project_id`, that project's only.
pub fn allowance_used(
    conn: &Connection,
    day: &str,
    project_id: Option<&str>,
) -> Result<f64, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT COALESCE(SUM(CASE WHEN state IN ('done', 'failed', 'canceled')
                    THEN COALESCE(spent_usd, 0) ELSE approved_max_usd END), 0)
             FROM instructions
             WHERE approval = 'allowance' AND approved_day = ?1
               AND (?2 IS NULL OR project_id = ?2)",
        )?
        .query_row(params![day, project_id], |row| row.get(0))?)
}
