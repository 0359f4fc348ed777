//! Rows of `secrets`: names and stores, never values.

use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRow {
    pub name: String,
    pub store: String,
    pub updated_at: String,
}

pub fn put(conn: &Connection, name: &str, store: &str, at: &str) -> Result<SecretRow, StoreError> {
    conn.execute(
        "INSERT INTO secrets (name, store, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)
         ON CONFLICT (name) DO UPDATE SET store = ?2, updated_at = ?3",
        params![name, store, at],
    )?;
    Ok(SecretRow {
        name: name.to_owned(),
        store: store.to_owned(),
        updated_at: at.to_owned(),
    })
}

pub fn get(conn: &Connection, name: &str) -> Result<Option<SecretRow>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT name, store, updated_at FROM secrets WHERE name = ?1",
            [name],
            |row| {
                Ok(SecretRow {
                    name: row.get(0)?,
                    store: row.get(1)?,
                    updated_at: row.get(2)?,
                })
            },
        )
        .optional()?)
}

pub fn list(conn: &Connection) -> Result<Vec<SecretRow>, StoreError> {
    let mut statement =
        conn.prepare_cached("SELECT name, store, updated_at FROM secrets ORDER BY name")?;
    let rows = statement.query_map([], |row| {
        Ok(SecretRow {
            name: row.get(0)?,
            store: row.get(1)?,
            updated_at: row.get(2)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn delete(conn: &Connection, name: &str) -> Result<bool, StoreError> {
    Ok(conn.execute("DELETE FROM secrets WHERE name = ?1", [name])? > 0)
}
