//! Rows of `providers`.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::StoreError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderRow {
    pub name: String,
    pub kind: String,
    pub base_url: String,
    pub default_model: String,
    pub organization: Option<String>,
    pub secret_name: String,
    pub honors_idempotency_key: bool,
    pub created_at: String,
    pub updated_at: String,
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<ProviderRow> {
    Ok(ProviderRow {
        name: row.get("name")?,
        kind: row.get("kind")?,
        base_url: row.get("base_url")?,
        default_model: row.get("default_model")?,
        organization: row.get("organization")?,
        secret_name: row.get("secret_name")?,
        honors_idempotency_key: row.get("honors_idempotency_key")?,
        created_at: row.get("created_at")?,
        updated_at: row.get("updated_at")?,
    })
}

pub fn insert(conn: &Connection, provider: &ProviderRow) -> Result<(), StoreError> {
    let inserted = conn.execute(
        "INSERT INTO providers (name, kind, base_url, default_model, organization, secret_name, honors_idempotency_key, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT (name) DO NOTHING",
        params![
            provider.name,
            provider.kind,
            provider.base_url,
            provider.default_model,
            provider.organization,
            provider.secret_name,
            provider.honors_idempotency_key,
            provider.created_at,
            provider.updated_at
        ],
    )?;
    if inserted == 0 {
        return Err(StoreError::NameTaken {
            what: "provider",
            name: provider.name.clone(),
        });
    }
    Ok(())
}

pub fn update(conn: &Connection, provider: &ProviderRow) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE providers SET base_url = ?2, default_model = ?3, organization = ?4, secret_name = ?5, updated_at = ?6,
         honors_idempotency_key = ?7 WHERE name = ?1",
        params![
            provider.name,
            provider.base_url,
            provider.default_model,
            provider.organization,
            provider.secret_name,
            provider.updated_at,
            provider.honors_idempotency_key
        ],
    )?;
    Ok(())
}

pub fn get(conn: &Connection, name: &str) -> Result<ProviderRow, StoreError> {
    conn.query_row("SELECT * FROM providers WHERE name = ?1", [name], from_row)
        .optional()?
        .ok_or_else(|| StoreError::EntityNotFound {
            what: "provider",
            key: name.to_owned(),
        })
}

pub fn list(conn: &Connection) -> Result<Vec<ProviderRow>, StoreError> {
    let mut statement = conn.prepare_cached("SELECT * FROM providers ORDER BY name")?;
    let rows = statement.query_map([], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn delete(conn: &Connection, name: &str) -> Result<(), StoreError> {
    conn.execute("DELETE FROM providers WHERE name = ?1", [name])?;
    Ok(())
}
