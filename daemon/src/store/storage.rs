//! Rows of `storage_uploads` and `storage_upload_parts`: the journal of multipart uploads, so an
//! interrupted sync resumes what the store already holds, or aborts it.

use std::collections::BTreeMap;

use rusqlite::{Connection, params};

use super::StoreError;

/// Part number → (ETag, base64 sha256) of the parts the store acknowledged.
pub type Parts = BTreeMap<i32, (String, String)>;

/// A multipart upload kromad began and has not completed or aborted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadRow {
    pub upload_id: String,
    pub project_id: String,
    pub endpoint: String,
    pub bucket: String,
    pub key: String,
    pub path: String,
    pub size: u64,
    pub sha256: String,
    pub part_size: u64,
    pub created_at: String,
    pub parts: Parts,
}

/// The project's unfinished uploads, oldest first.
pub fn uploads(conn: &Connection, project_id: &str) -> Result<Vec<UploadRow>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT upload_id, project_id, endpoint, bucket, key, path, size, sha256, part_size,
             created_at
         FROM storage_uploads WHERE project_id = ?1 ORDER BY created_at, upload_id",
    )?;
    let mut rows: Vec<UploadRow> = statement
        .query_map([project_id], |row| {
            Ok(UploadRow {
                upload_id: row.get(0)?,
                project_id: row.get(1)?,
                endpoint: row.get(2)?,
                bucket: row.get(3)?,
                key: row.get(4)?,
                path: row.get(5)?,
                size: row.get::<_, i64>(6)?.max(0) as u64,
                sha256: row.get(7)?,
                part_size: row.get::<_, i64>(8)?.max(0) as u64,
                created_at: row.get(9)?,
                parts: BTreeMap::new(),
            })
        })?
        .collect::<Result<_, _>>()?;
    let mut parts = conn.prepare_cached(
        "SELECT part_number, etag, sha256_b64 FROM storage_upload_parts WHERE upload_id = ?1",
    )?;
    for row in &mut rows {
        row.parts = parts
            .query_map([&row.upload_id], |part| {
                Ok((part.get(0)?, (part.get(1)?, part.get(2)?)))
            })?
            .collect::<Result<_, _>>()?;
    }
    Ok(rows)
}

pub fn insert_upload(conn: &Connection, row: &UploadRow) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO storage_uploads (upload_id, project_id, endpoint, bucket, key, path, size,
             sha256, part_size, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            row.upload_id,
            row.project_id,
            row.endpoint,
            row.bucket,
            row.key,
            row.path,
            row.size as i64,
            row.sha256,
            row.part_size as i64,
            row.created_at
        ],
    )?;
    Ok(())
}

/// Records a part the store acknowledged (again, if it was sent again).
pub fn insert_part(
    conn: &Connection,
    upload_id: &str,
    number: i32,
    etag: &str,
    sha256_b64: &str,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO storage_upload_parts (upload_id, part_number, etag, sha256_b64)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (upload_id, part_number) DO UPDATE SET etag = ?3, sha256_b64 = ?4",
        params![upload_id, number, etag, sha256_b64],
    )?;
    Ok(())
}

/// Forgets an upload that completed or was aborted (its parts go with it).
pub fn delete_upload(conn: &Connection, upload_id: &str) -> Result<(), StoreError> {
    conn.execute(
        "DELETE FROM storage_uploads WHERE upload_id = ?1",
        [upload_id],
    )?;
    Ok(())
}
