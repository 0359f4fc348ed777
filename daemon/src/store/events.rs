//! Rows of `events`: the append-only log behind `events.*`.

use kroma_protocol as protocol;
use rusqlite::{Connection, params};

use super::StoreError;

/// An event before it has an id.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub at: String,
    pub kind: &'static str,
    pub project: Option<String>,
    pub data: serde_json::Value,
}

impl NewEvent {
    /// The event of `payload`'s kind, with `payload` as its `data`.
    pub fn of<T: protocol::events::EventData>(
        at: String,
        project: Option<String>,
        payload: &T,
    ) -> NewEvent {
        NewEvent {
            at,
            kind: T::KIND,
            project,
            data: payload.to_data(),
        }
    }
}

pub(super) fn insert(
    conn: &Connection,
    event: NewEvent,
) -> Result<protocol::events::Event, StoreError> {
    let data = event.data.to_string();
    conn.prepare_cached(
        "INSERT INTO events (at, kind, project_slug, data) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![event.at, event.kind, event.project, data])?;
    Ok(protocol::events::Event {
        id: conn.last_insert_rowid() as u64,
        at: event.at,
        kind: event.kind.to_owned(),
        project: event.project,
        data: event.data,
    })
}

/// Events with ids above `since`, oldest first, and the newest id in the log.
pub fn list(
    conn: &Connection,
    since: u64,
    limit: u32,
) -> Result<(Vec<protocol::events::Event>, u64), StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT id, at, kind, project_slug, data FROM events WHERE id > ?1 ORDER BY id LIMIT ?2",
    )?;
    let rows = statement.query_map(params![since.min(i64::MAX as u64) as i64, limit], |row| {
        Ok((
            row.get::<_, i64>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, String>(2)?,
            row.get::<_, Option<String>>(3)?,
            row.get::<_, String>(4)?,
        ))
    })?;
    let mut events = Vec::new();
    for row in rows {
        let (id, at, kind, project, data) = row?;
        let data = serde_json::from_str(&data)
            .map_err(|err| StoreError::Corrupt(format!("event {id} data: {err}")))?;
        events.push(protocol::events::Event {
            id: id as u64,
            at,
            kind,
            project,
            data,
        });
    }
    let last_id: i64 = conn.query_row("SELECT coalesce(max(id), 0) FROM events", [], |row| {
        row.get(0)
    })?;
    Ok((events, last_id as u64))
}
