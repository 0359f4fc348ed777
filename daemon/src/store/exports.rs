//! Rows of `exports`.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::StoreError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportRow {
    pub id: String,
    pub project_id: String,
    pub project_slug: String,
    pub project_root: String,
    pub selection_json: String,
    pub format: String,
    pub rel_path: String,
    pub files: u32,
    pub bytes: u64,
    pub sha256: String,
    pub created_at: String,
}

const COLUMNS: &str = "e.id, e.project_id, p.slug, p.root, e.selection_json, e.format, e.rel_path,
    e.files, e.bytes, e.sha256, e.created_at";

fn from_row(row: &Row) -> rusqlite::Result<ExportRow> {
    Ok(ExportRow {
        id: row.get(0)?,
        project_id: row.get(1)?,
        project_slug: row.get(2)?,
        project_root: row.get(3)?,
        selection_json: row.get(4)?,
        format: row.get(5)?,
        rel_path: row.get(6)?,
        files: row.get(7)?,
        bytes: row.get::<_, i64>(8)?.max(0) as u64,
        sha256: row.get(9)?,
        created_at: row.get(10)?,
    })
}

pub fn insert(conn: &Connection, export: &ExportRow) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO exports (id, project_id, selection_json, format, rel_path, files, bytes,
                              sha256, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            export.id,
            export.project_id,
            export.selection_json,
            export.format,
            export.rel_path,
            export.files,
            i64::try_from(export.bytes).unwrap_or(i64::MAX),
            export.sha256,
            export.created_at,
        ],
    )?;
    Ok(())
}

pub fn get(conn: &Connection, id: &str) -> Result<Option<ExportRow>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM exports e JOIN projects p ON p.id = e.project_id WHERE e.id = ?1"
        ))?
        .query_row([id], from_row)
        .optional()?)
}

/// Exports, newest first; only `project_id`'s when given.
pub fn list(conn: &Connection, project_id: Option<&str>) -> Result<Vec<ExportRow>, StoreError> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM exports e JOIN projects p ON p.id = e.project_id
         WHERE (?1 IS NULL OR e.project_id = ?1) ORDER BY e.created_at DESC, e.rowid DESC"
    ))?;
    let rows = statement.query_map(params![project_id], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn delete(conn: &Connection, id: &str) -> Result<bool, StoreError> {
    Ok(conn.execute("DELETE FROM exports WHERE id = ?1", [id])? > 0)
}
