//! Rows of `audit_events`: one per call that changed something (or that is marked mutating), in
//! the transaction of the call's first change.

use kroma_protocol as protocol;
use rusqlite::{Connection, params};
use sha2::{Digest, Sha256};

use super::StoreError;

#[derive(Debug, Clone)]
pub struct NewAuditEntry {
    pub at: String,
    pub peer_uid: Option<u32>,
    pub client: String,
    pub method: &'static str,
    pub params_digest: String,
    pub outcome: String,
}

/// SHA-256 of the params in canonical form (sorted keys), with secret fields removed first.
pub fn params_digest(raw: Option<&str>, secret_fields: &[&str]) -> String {
    let mut value: serde_json::Value = raw
        .and_then(|raw| serde_json::from_str(raw).ok())
        .unwrap_or(serde_json::Value::Null);
    if let serde_json::Value::Object(fields) = &mut value {
        for secret in secret_fields {
            fields.remove(*secret);
        }
    }
    let digest = Sha256::digest(value.to_string().as_bytes());
    format!("{digest:x}")
}

/// Inserts an entry; answers its id.
pub fn insert(conn: &Connection, entry: &NewAuditEntry) -> Result<i64, StoreError> {
    conn.prepare_cached(
        "INSERT INTO audit_events (at, peer_uid, client, method, params_digest, outcome)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        entry.at,
        entry.peer_uid,
        entry.client,
        entry.method,
        entry.params_digest,
        entry.outcome
    ])?;
    Ok(conn.last_insert_rowid())
}

/// Sets the outcome of an entry written before its call had finished.
pub fn set_outcome(conn: &Connection, id: i64, outcome: &str) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE audit_events SET outcome = ?2 WHERE id = ?1")?
        .execute(params![id, outcome])?;
    Ok(())
}

pub fn list(
    conn: &Connection,
    since: u64,
    limit: u32,
) -> Result<Vec<protocol::audit::AuditEntry>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT id, at, peer_uid, client, method, params_digest, outcome
         FROM audit_events WHERE id > ?1 ORDER BY id LIMIT ?2",
    )?;
    let rows = statement.query_map(params![since.min(i64::MAX as u64) as i64, limit], |row| {
        Ok(protocol::audit::AuditEntry {
            id: row.get::<_, i64>(0)? as u64,
            at: row.get(1)?,
            peer_uid: row.get(2)?,
            client: row.get(3)?,
            method: row.get(4)?,
            params_digest: row.get(5)?,
            outcome: row.get(6)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_drop_secret_fields_and_ignore_key_order() {
        let a = params_digest(Some(r#"{"name":"x","value":"s3cret"}"#), &["value"]);
        let b = params_digest(Some(r#"{"name":"x"}"#), &[]);
        assert_eq!(a, b);
        let c = params_digest(Some(r#"{"b":1,"a":2}"#), &[]);
        let d = params_digest(Some(r#"{"a":2,"b":1}"#), &[]);
        assert_eq!(c, d);
        assert_eq!(a.len(), 64);
    }
}
