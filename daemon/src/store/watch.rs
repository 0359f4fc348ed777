//! Rows of `watch_rules` and `watch_files` (the journal of the files a rule took).
//!
//! The rules (which folders may be watched, when a file counts, what a file leads to) are in
//! `crate::watch`; this module only reads and writes rows. A file is taken in one transaction
//! against the partial unique index on `(rule_id, sha256)`, so the same content is never taken
//! twice by one rule, also across restarts.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::StoreError;
use kroma_protocol::watch::{FileState, WatchCounts};

#[derive(Debug, Clone, PartialEq)]
pub struct RuleRow {
    pub id: String,
    pub name: String,
    pub folder: String,
    pub real_folder: String,
    pub action_json: String,
    pub project_id: Option<String>,
    pub patterns_json: String,
    pub budget_usd: f64,
    pub poll: bool,
    pub settle_ms: i64,
    pub inputs: String,
    pub paused: bool,
    pub budget_spent: bool,
    pub failing: bool,
    pub last_error_json: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub removed_at: Option<String>,
}

const RULE_COLUMNS: &str = "id, name, folder, real_folder, action_json, project_id, patterns_json,
    budget_usd, poll, settle_ms, inputs, paused, budget_spent, last_error_json, created_at,
    updated_at, removed_at, failing";

fn rule_from_row(row: &Row) -> rusqlite::Result<RuleRow> {
    Ok(RuleRow {
        id: row.get(0)?,
        name: row.get(1)?,
        folder: row.get(2)?,
        real_folder: row.get(3)?,
        action_json: row.get(4)?,
        project_id: row.get(5)?,
        patterns_json: row.get(6)?,
        budget_usd: row.get(7)?,
        poll: row.get(8)?,
        settle_ms: row.get(9)?,
        inputs: row.get(10)?,
        paused: row.get(11)?,
        budget_spent: row.get(12)?,
        last_error_json: row.get(13)?,
        created_at: row.get(14)?,
        updated_at: row.get(15)?,
        removed_at: row.get(16)?,
        failing: row.get(17)?,
    })
}

pub fn insert_rule(conn: &Connection, rule: &RuleRow) -> Result<(), StoreError> {
    conn.prepare_cached(&format!(
        "INSERT INTO watch_rules ({RULE_COLUMNS})
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)"
    ))?
    .execute(params![
        rule.id,
        rule.name,
        rule.folder,
        rule.real_folder,
        rule.action_json,
        rule.project_id,
        rule.patterns_json,
        rule.budget_usd,
        rule.poll,
        rule.settle_ms,
        rule.inputs,
        rule.paused,
        rule.budget_spent,
        rule.last_error_json,
        rule.created_at,
        rule.updated_at,
        rule.removed_at,
        rule.failing,
    ])?;
    Ok(())
}

/// Writes every settable field of `rule` (not its id, folder or creation time).
pub fn update_rule(conn: &Connection, rule: &RuleRow) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE watch_rules SET action_json = ?2, project_id = ?3, patterns_json = ?4,
            budget_usd = ?5, poll = ?6, settle_ms = ?7, inputs = ?8, paused = ?9,
            budget_spent = ?10, last_error_json = ?11, updated_at = ?12, removed_at = ?13,
            failing = ?14
         WHERE id = ?1",
    )?
    .execute(params![
        rule.id,
        rule.action_json,
        rule.project_id,
        rule.patterns_json,
        rule.budget_usd,
        rule.poll,
        rule.settle_ms,
        rule.inputs,
        rule.paused,
        rule.budget_spent,
        rule.last_error_json,
        rule.updated_at,
        rule.removed_at,
        rule.failing,
    ])?;
    Ok(())
}

/// A rule that was not removed, by id or name.
pub fn find_rule(conn: &Connection, id_or_name: &str) -> Result<Option<RuleRow>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {RULE_COLUMNS} FROM watch_rules
             WHERE (id = ?1 OR name = ?1) AND removed_at IS NULL"
        ))?
        .query_row([id_or_name], rule_from_row)
        .optional()?)
}

/// A rule by id, removed or not.
pub fn rule_by_id(conn: &Connection, id: &str) -> Result<Option<RuleRow>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {RULE_COLUMNS} FROM watch_rules WHERE id = ?1"
        ))?
        .query_row([id], rule_from_row)
        .optional()?)
}

/// The rules that were not removed, oldest first.
pub fn rules(conn: &Connection) -> Result<Vec<RuleRow>, StoreError> {
    let rows = conn
        .prepare_cached(&format!(
            "SELECT {RULE_COLUMNS} FROM watch_rules WHERE removed_at IS NULL
             ORDER BY created_at, rowid"
        ))?
        .query_map([], rule_from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub fn name_taken(conn: &Connection, name: &str) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM watch_rules WHERE name = ?1 AND removed_at IS NULL")?
        .query_row([name], |_| Ok(()))
        .optional()?
        .is_some())
}

pub fn counts(conn: &Connection, rule_id: &str) -> Result<WatchCounts, StoreError> {
    let mut counts = WatchCounts::default();
    let mut statement = conn.prepare_cached(
        "SELECT state, COUNT(*) FROM watch_files WHERE rule_id = ?1 GROUP BY state",
    )?;
    let rows = statement.query_map([rule_id], |row| {
        Ok((row.get::<_, String>(0)?, row.get::<_, u32>(1)?))
    })?;
    for row in rows {
        let (state, count) = row?;
        match FileState::parse(&state) {
            Some(FileState::Processing | FileState::Waiting) => counts.running += count,
            Some(FileState::Done) => counts.done += count,
            Some(FileState::Failed) => counts.failed += count,
            Some(FileState::Duplicate) => counts.duplicate += count,
            None => return Err(StoreError::Corrupt(format!("watch file state `{state}`"))),
        }
    }
    counts.seen = counts.running + counts.done + counts.failed;
    Ok(counts)
}

/// What instructions the rule's budget approved hold (while unfinished) or spent.
pub fn budget_used(conn: &Connection, rule_id: &str) -> Result<f64, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT COALESCE(SUM(CASE WHEN state IN ('done', 'failed', 'canceled')
                    THEN COALESCE(spent_usd, 0) ELSE approved_max_usd END), 0)
             FROM instructions WHERE approval = 'budget' AND watch_rule_id = ?1",
        )?
        .query_row([rule_id], |row| row.get(0))?)
}

#[derive(Debug, Clone, PartialEq)]
pub struct FileRow {
    pub id: String,
    pub rule_id: String,
    pub name: String,
    pub size: i64,
    pub mtime_ns: i64,
    pub sha256: String,
    pub path: String,
    pub moved_from: Option<String>,
    pub state: String,
    pub instruction_id: Option<String>,
    pub output: Option<String>,
    pub duplicate_of: Option<String>,
    pub reason: Option<String>,
    pub seen_at: String,
    pub updated_at: String,
}

impl FileRow {
    pub fn state(&self) -> Result<FileState, StoreError> {
        FileState::parse(&self.state)
            .ok_or_else(|| StoreError::Corrupt(format!("watch file state `{}`", self.state)))
    }
}

const FILE_COLUMNS: &str = "f.id, f.rule_id, f.name, f.size, f.mtime_ns, f.sha256, f.path,
    f.moved_from, f.state, f.instruction_id, f.output, f.duplicate_of, f.reason, f.seen_at,
    f.updated_at";

fn file_from_row(row: &Row) -> rusqlite::Result<FileRow> {
    Ok(FileRow {
        id: row.get(0)?,
        rule_id: row.get(1)?,
        name: row.get(2)?,
        size: row.get(3)?,
        mtime_ns: row.get(4)?,
        sha256: row.get(5)?,
        path: row.get(6)?,
        moved_from: row.get(7)?,
        state: row.get(8)?,
        instruction_id: row.get(9)?,
        output: row.get(10)?,
        duplicate_of: row.get(11)?,
        reason: row.get(12)?,
        seen_at: row.get(13)?,
        updated_at: row.get(14)?,
    })
}

pub fn insert_file(conn: &Connection, file: &FileRow) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO watch_files (id, rule_id, name, size, mtime_ns, sha256, path, moved_from,
            state, instruction_id, output, duplicate_of, reason, seen_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?14)",
    )?
    .execute(params![
        file.id,
        file.rule_id,
        file.name,
        file.size,
        file.mtime_ns,
        file.sha256,
        file.path,
        file.moved_from,
        file.state,
        file.instruction_id,
        file.output,
        file.duplicate_of,
        file.reason,
        file.seen_at,
    ])?;
    Ok(())
}

pub fn file(conn: &Connection, id: &str) -> Result<Option<FileRow>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {FILE_COLUMNS} FROM watch_files f WHERE f.id = ?1"
        ))?
        .query_row([id], file_from_row)
        .optional()?)
}

/// The file the rule took with this content (not a duplicate of it).
pub fn taken(
    conn: &Connection,
    rule_id: &str,
    sha256: &str,
) -> Result<Option<FileRow>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {FILE_COLUMNS} FROM watch_files f
             WHERE f.rule_id = ?1 AND f.sha256 = ?2 AND f.state != 'duplicate'"
        ))?
        .query_row([rule_id, sha256], file_from_row)
        .optional()?)
}

/// Whether the rule already has a journal entry for the file now at `path` with this size and
/// modification time (a kept input seen again).
pub fn known(
    conn: &Connection,
    rule_id: &str,
    name: &str,
    path: &str,
    size: i64,
    mtime_ns: i64,
) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM watch_files WHERE rule_id = ?1 AND name = ?2 AND path = ?3
                AND size = ?4 AND mtime_ns = ?5 LIMIT 1",
        )?
        .query_row(params![rule_id, name, path, size, mtime_ns], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Whether an unfinished entry (of any rule) was given `output` for its result.
pub fn output_given(conn: &Connection, output: &str) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM watch_files
             WHERE state IN ('processing', 'waiting') AND output = ?1 LIMIT 1",
        )?
        .query_row([output], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Moves the entry to `state` with what it leads to; `None` fields are left as they are.
#[derive(Debug, Default)]
pub struct FileChange<'a> {
    pub state: Option<FileState>,
    pub instruction_id: Option<&'a str>,
    pub output: Option<&'a str>,
    pub reason: Option<&'a str>,
    /// Records a move of the file to this path (made on disk after the commit).
    pub path: Option<&'a str>,
}

pub fn change_file(
    conn: &Connection,
    id: &str,
    change: &FileChange,
    at: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE watch_files SET
            state = COALESCE(?2, state),
            instruction_id = COALESCE(?3, instruction_id),
            output = COALESCE(?4, output),
            reason = COALESCE(?5, reason),
            moved_from = CASE WHEN ?6 IS NULL THEN moved_from ELSE path END,
            path = COALESCE(?6, path),
            updated_at = ?7
         WHERE id = ?1",
    )?
    .execute(params![
        id,
        change.state.map(FileState::as_str),
        change.instruction_id,
        change.output,
        change.reason,
        change.path,
        at,
    ])?;
    Ok(())
}

/// The move of the entry was made on disk (or found made).
pub fn moved(conn: &Connection, id: &str) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE watch_files SET moved_from = NULL WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}

/// Entries whose last move may not be made on disk yet.
pub fn moving(conn: &Connection) -> Result<Vec<FileRow>, StoreError> {
    let rows = conn
        .prepare_cached(&format!(
            "SELECT {FILE_COLUMNS} FROM watch_files f WHERE f.moved_from IS NOT NULL"
        ))?
        .query_map([], file_from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Entries not finished, with the state of their instruction (if any), oldest first.
pub fn open(conn: &Connection) -> Result<Vec<(FileRow, Option<String>)>, StoreError> {
    let rows = conn
        .prepare_cached(&format!(
            "SELECT {FILE_COLUMNS}, i.state FROM watch_files f
             LEFT JOIN instructions i ON i.id = f.instruction_id
             WHERE f.state IN ('processing', 'waiting') ORDER BY f.seen_at, f.rowid"
        ))?
        .query_map([], |row| Ok((file_from_row(row)?, row.get(15)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Newest first.
pub fn log(
    conn: &Connection,
    rule_id: &str,
    limit: u32,
) -> Result<Vec<(FileRow, Option<String>)>, StoreError> {
    let rows = conn
        .prepare_cached(&format!(
            "SELECT {FILE_COLUMNS}, i.run_id FROM watch_files f
             LEFT JOIN instructions i ON i.id = f.instruction_id
             WHERE f.rule_id = ?1 ORDER BY f.seen_at DESC, f.rowid DESC LIMIT ?2"
        ))?
        .query_map(params![rule_id, limit], |row| {
            Ok((file_from_row(row)?, row.get(15)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}
