//! Rows of `chat_sessions` and `chat_messages`.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::StoreError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub id: String,
    pub project_id: String,
    pub project_slug: String,
    pub project_root: String,
    pub title: String,
    pub messages: u32,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRow {
    pub id: String,
    pub session_id: String,
    pub seq: u32,
    pub role: String,
    pub text: String,
    pub audio_asset_id: Option<String>,
    pub created_at: String,
}

const SESSION_COLUMNS: &str = "s.id, s.project_id, p.slug, p.root, s.title,
    (SELECT COUNT(*) FROM chat_messages m WHERE m.session_id = s.id), s.created_at, s.updated_at";

fn session_from_row(row: &Row) -> rusqlite::Result<SessionRow> {
    Ok(SessionRow {
        id: row.get(0)?,
        project_id: row.get(1)?,
        project_slug: row.get(2)?,
        project_root: row.get(3)?,
        title: row.get(4)?,
        messages: row.get(5)?,
        created_at: row.get(6)?,
        updated_at: row.get(7)?,
    })
}

const MESSAGE_COLUMNS: &str = "id, session_id, seq, role, text, audio_asset_id, created_at";

fn message_from_row(row: &Row) -> rusqlite::Result<MessageRow> {
    Ok(MessageRow {
        id: row.get(0)?,
        session_id: row.get(1)?,
        seq: row.get(2)?,
        role: row.get(3)?,
        text: row.get(4)?,
        audio_asset_id: row.get(5)?,
        created_at: row.get(6)?,
    })
}

pub fn insert_session(
    conn: &Connection,
    id: &str,
    project_id: &str,
    title: &str,
    at: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO chat_sessions (id, project_id, title, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?4)",
    )?
    .execute(params![id, project_id, title, at])?;
    Ok(())
}

pub fn get_session(conn: &Connection, id: &str) -> Result<Option<SessionRow>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {SESSION_COLUMNS} FROM chat_sessions s JOIN projects p ON p.id = s.project_id
             WHERE s.id = ?1"
        ))?
        .query_row([id], session_from_row)
        .optional()?)
}

/// Most recently active first.
pub fn list_sessions(
    conn: &Connection,
    project_id: Option<&str>,
    limit: u32,
) -> Result<Vec<SessionRow>, StoreError> {
    let rows = conn
        .prepare_cached(&format!(
            "SELECT {SESSION_COLUMNS} FROM chat_sessions s JOIN projects p ON p.id = s.project_id
             WHERE (?1 IS NULL OR s.project_id = ?1)
             ORDER BY s.updated_at DESC, s.rowid DESC LIMIT ?2"
        ))?
        .query_map(params![project_id, limit], session_from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Appends a message as the session's next (its `seq` is one more than the last) and marks the
/// session active; answers the row.
pub fn append(
    conn: &Connection,
    id: &str,
    session_id: &str,
    role: &str,
    text: &str,
    audio_asset_id: Option<&str>,
    at: &str,
) -> Result<MessageRow, StoreError> {
    let seq: u32 = conn
        .prepare_cached(
            "SELECT COALESCE(MAX(seq), 0) + 1 FROM chat_messages WHERE session_id = ?1",
        )?
        .query_row([session_id], |row| row.get(0))?;
    conn.prepare_cached(
        "INSERT INTO chat_messages (id, session_id, seq, role, text, audio_asset_id, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![id, session_id, seq, role, text, audio_asset_id, at])?;
    conn.prepare_cached("UPDATE chat_sessions SET updated_at = ?2 WHERE id = ?1")?
        .execute(params![session_id, at])?;
    Ok(MessageRow {
        id: id.to_owned(),
        session_id: session_id.to_owned(),
        seq,
        role: role.to_owned(),
        text: text.to_owned(),
        audio_asset_id: audio_asset_id.map(str::to_owned),
        created_at: at.to_owned(),
    })
}

/// Messages after `since`, in order, at most `limit`.
pub fn messages(
    conn: &Connection,
    session_id: &str,
    since: u32,
    limit: u32,
) -> Result<Vec<MessageRow>, StoreError> {
    let rows = conn
        .prepare_cached(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM chat_messages
             WHERE session_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3"
        ))?
        .query_map(params![session_id, since, limit], message_from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// The project a message belongs to, when the message exists.
pub fn project_of_message(conn: &Connection, id: &str) -> Result<Option<String>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT s.project_id FROM chat_messages m JOIN chat_sessions s ON s.id = m.session_id
             WHERE m.id = ?1",
        )?
        .query_row([id], |row| row.get(0))
        .optional()?)
}
