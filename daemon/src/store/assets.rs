//! Rows of `assets` and `asset_links`.

use std::collections::{HashSet, VecDeque};

use kroma_protocol as protocol;
use protocol::asset::{AssetKind, Relation};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::StoreError;

/// An asset as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssetRow {
    pub id: String,
    pub project_slug: String,
    pub kind: AssetKind,
    pub rel_path: String,
    pub sha256: String,
    pub width: u32,
    pub height: u32,
    pub format: String,
    pub mime: String,
    pub bytes: u64,
    pub original_name: String,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkRow {
    pub child_id: String,
    pub parent_id: String,
    pub relation: Relation,
    pub created_at: String,
}

/// A new asset; `project_id` is the project's UUID.
#[derive(Debug, Clone)]
pub struct NewAsset {
    pub id: String,
    pub project_id: String,
    pub kind: AssetKind,
    pub rel_path: String,
    pub sha256: String,
    pub width: u32,
    pub height: u32,
    pub format: String,
    pub mime: String,
    pub bytes: u64,
    pub original_name: String,
    pub at: String,
}

const SELECT: &str =
    "SELECT a.id, p.slug, a.kind, a.rel_path, a.sha256, a.width, a.height, a.format,
        a.mime, a.bytes, a.original_name, a.created_at
    FROM assets a JOIN projects p ON p.id = a.project_id";

fn from_row(row: &Row<'_>) -> rusqlite::Result<AssetRow> {
    let kind: String = row.get(2)?;
    Ok(AssetRow {
        id: row.get(0)?,
        project_slug: row.get(1)?,
        kind: parse_kind(&kind).map_err(|err| {
            rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, err.into())
        })?,
        rel_path: row.get(3)?,
        sha256: row.get(4)?,
        width: row.get(5)?,
        height: row.get(6)?,
        format: row.get(7)?,
        mime: row.get(8)?,
        bytes: row.get::<_, i64>(9)? as u64,
        original_name: row.get(10)?,
        created_at: row.get(11)?,
    })
}

fn parse_kind(kind: &str) -> Result<AssetKind, String> {
    serde_json::from_value(serde_json::Value::String(kind.to_owned()))
        .map_err(|_| format!("unknown asset kind `{kind}`"))
}

fn parse_relation(relation: &str) -> Result<Relation, String> {
    serde_json::from_value(serde_json::Value::String(relation.to_owned()))
        .map_err(|_| format!("unknown relation `{relation}`"))
}

/// The asset of `project_id` with these bytes, if there is one.
pub fn find_by_sha(
    conn: &Connection,
    project_id: &str,
    sha256: &str,
) -> Result<Option<AssetRow>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "{SELECT} WHERE a.project_id = ?1 AND a.sha256 = ?2"
        ))?
        .query_row(params![project_id, sha256], from_row)
        .optional()?)
}

/// Inserts an asset. Returns `Ok(None)` when the same bytes became an asset meanwhile.
pub fn insert(conn: &Connection, asset: &NewAsset) -> Result<Option<AssetRow>, StoreError> {
    let inserted = conn
        .prepare_cached(
            "INSERT INTO assets (id, project_id, kind, rel_path, sha256, width, height, format, mime,
                 bytes, original_name, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
             ON CONFLICT DO NOTHING",
        )?
        .execute(params![
            asset.id,
            asset.project_id,
            asset.kind.as_str(),
            asset.rel_path,
            asset.sha256,
            asset.width,
            asset.height,
            asset.format,
            asset.mime,
            asset.bytes as i64,
            asset.original_name,
            asset.at
        ])?;
    if inserted == 0 {
        return Ok(None);
    }
    get(conn, &asset.project_id, &asset.id).map(Some)
}

pub fn get(conn: &Connection, project_id: &str, id: &str) -> Result<AssetRow, StoreError> {
    conn.prepare_cached(&format!("{SELECT} WHERE a.project_id = ?1 AND a.id = ?2"))?
        .query_row(params![project_id, id], from_row)
        .optional()?
        .ok_or_else(|| StoreError::AssetNotFound(id.to_owned()))
}

pub fn list(
    conn: &Connection,
    project_id: &str,
    kind: Option<AssetKind>,
) -> Result<Vec<AssetRow>, StoreError> {
    let mut statement = conn.prepare_cached(&format!(
        "{SELECT} WHERE a.project_id = ?1 AND (?2 IS NULL OR a.kind = ?2)
         ORDER BY a.created_at, a.rowid"
    ))?;
    let rows = statement.query_map(params![project_id, kind.map(AssetKind::as_str)], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Deletes an asset and its links; returns the row and how many links went with it.
pub fn delete(
    conn: &Connection,
    project_id: &str,
    id: &str,
) -> Result<(AssetRow, u32), StoreError> {
    let asset = get(conn, project_id, id)?;
    let links = conn.execute(
        "DELETE FROM asset_links WHERE child_id = ?1 OR parent_id = ?1",
        [id],
    )?;
    conn.execute("DELETE FROM assets WHERE id = ?1", [id])?;
    Ok((asset, links as u32))
}

/// Records a link; linking twice is a conflict.
pub fn link(
    conn: &Connection,
    project_id: &str,
    child_id: &str,
    parent_id: &str,
    relation: Relation,
    at: &str,
) -> Result<LinkRow, StoreError> {
    get(conn, project_id, child_id)?;
    get(conn, project_id, parent_id)?;
    let inserted = conn.execute(
        "INSERT INTO asset_links (project_id, child_id, parent_id, relation, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
        params![project_id, child_id, parent_id, relation.as_str(), at],
    )?;
    if inserted == 0 {
        return Err(StoreError::LinkExists);
    }
    Ok(LinkRow {
        child_id: child_id.to_owned(),
        parent_id: parent_id.to_owned(),
        relation,
        created_at: at.to_owned(),
    })
}

fn links_touching(conn: &Connection, id: &str) -> Result<Vec<LinkRow>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT child_id, parent_id, relation, created_at FROM asset_links
         WHERE child_id = ?1 OR parent_id = ?1 ORDER BY created_at, rowid",
    )?;
    let rows = statement.query_map([id], |row| {
        let relation: String = row.get(2)?;
        Ok(LinkRow {
            child_id: row.get(0)?,
            parent_id: row.get(1)?,
            relation: parse_relation(&relation).map_err(|err| {
                rusqlite::Error::FromSqlConversionFailure(
                    2,
                    rusqlite::types::Type::Text,
                    err.into(),
                )
            })?,
            created_at: row.get(3)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Every asset connected to `id` through links in either direction, breadth first from `id`,
/// and every link among them. Cycles are fine: each asset is visited once.
pub fn lineage(
    conn: &Connection,
    project_id: &str,
    id: &str,
) -> Result<(Vec<AssetRow>, Vec<LinkRow>), StoreError> {
    let root = get(conn, project_id, id)?;
    let mut seen = HashSet::from([root.id.clone()]);
    let mut queue = VecDeque::from([root.id.clone()]);
    let mut assets = vec![root];
    let mut links = Vec::new();
    let mut seen_links = HashSet::new();
    while let Some(current) = queue.pop_front() {
        for link in links_touching(conn, &current)? {
            let key = (link.child_id.clone(), link.parent_id.clone(), link.relation);
            let other = if link.child_id == current {
                &link.parent_id
            } else {
                &link.child_id
            };
            if seen.insert(other.clone()) {
                assets.push(get(conn, project_id, other)?);
                queue.push_back(other.clone());
            }
            if seen_links.insert(key) {
                links.push(link);
            }
        }
    }
    Ok((assets, links))
}
