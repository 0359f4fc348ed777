//! Rows of `projects` and `project_storage`.

use rusqlite::{Connection, OptionalExtension, Row, params};

use kroma_protocol::project::ChecksumMode;

use super::StoreError;

/// A project as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectRow {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub description: String,
    pub root: String,
    pub s3: Option<S3Row>,
    pub created_at: String,
    pub updated_at: String,
}

/// A project's S3 export settings, as the project rules checked them.
pub use crate::projects::rules::S3Settings as S3Row;

/// A validated new project.
#[derive(Debug, Clone)]
pub struct NewProject {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub description: String,
    pub root: String,
    pub s3: Option<S3Row>,
    pub at: String,
}

/// Validated changes; `None` keeps a field.
#[derive(Debug, Clone, Default)]
pub struct ProjectChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    pub s3: Option<Option<S3Row>>,
}

const SELECT: &str =
    "SELECT p.id, p.slug, p.name, p.description, p.root, p.created_at, p.updated_at,
        s.s3_bucket, s.s3_prefix, s.s3_region, s.s3_endpoint, s.s3_path_style, s.s3_checksum_mode,
        s.s3_access_key_secret, s.s3_secret_key_secret
    FROM projects p LEFT JOIN project_storage s ON s.project_id = p.id";

fn from_row(row: &Row<'_>) -> rusqlite::Result<ProjectRow> {
    let bucket: Option<String> = row.get(7)?;
    let s3 = match bucket {
        Some(bucket) => Some(S3Row {
            bucket,
            prefix: row.get::<_, Option<String>>(8)?.unwrap_or_default(),
            region: row.get(9)?,
            endpoint: row.get(10)?,
            path_style: row.get(11)?,
            checksum_mode: match row.get::<_, Option<String>>(12)?.as_deref() {
                Some("when_supported") => ChecksumMode::WhenSupported,
                _ => ChecksumMode::WhenRequired,
            },
            access_key_secret: row.get(13)?,
            secret_key_secret: row.get(14)?,
        }),
        None => None,
    };
    Ok(ProjectRow {
        id: row.get(0)?,
        slug: row.get(1)?,
        name: row.get(2)?,
        description: row.get(3)?,
        root: row.get(4)?,
        created_at: row.get(5)?,
        updated_at: row.get(6)?,
        s3,
    })
}

pub fn insert(conn: &Connection, project: &NewProject) -> Result<ProjectRow, StoreError> {
    let inserted = conn.execute(
        "INSERT INTO projects (id, slug, name, description, root, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
         ON CONFLICT (slug) DO NOTHING",
        params![
            project.id,
            project.slug,
            project.name,
            project.description,
            project.root,
            project.at
        ],
    )?;
    if inserted == 0 {
        return Err(StoreError::SlugTaken(project.slug.clone()));
    }
    put_storage(conn, &project.id, project.s3.as_ref())?;
    get(conn, &project.slug)
}

pub fn get(conn: &Connection, slug: &str) -> Result<ProjectRow, StoreError> {
    conn.prepare_cached(&format!("{SELECT} WHERE p.slug = ?1"))?
        .query_row([slug], from_row)
        .optional()?
        .ok_or_else(|| StoreError::ProjectNotFound(slug.to_owned()))
}

pub fn list(conn: &Connection) -> Result<Vec<ProjectRow>, StoreError> {
    let mut statement = conn.prepare_cached(&format!("{SELECT} ORDER BY p.created_at, p.slug"))?;
    let rows = statement.query_map([], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn update(
    conn: &Connection,
    slug: &str,
    changes: &ProjectChanges,
    at: &str,
) -> Result<ProjectRow, StoreError> {
    let current = get(conn, slug)?;
    conn.execute(
        "UPDATE projects SET name = ?2, description = ?3, updated_at = ?4 WHERE id = ?1",
        params![
            current.id,
            changes.name.as_ref().unwrap_or(&current.name),
            changes.description.as_ref().unwrap_or(&current.description),
            at
        ],
    )?;
    if let Some(s3) = &changes.s3 {
        put_storage(conn, &current.id, s3.as_ref())?;
    }
    get(conn, slug)
}

/// Deletes the project's rows (storage settings go with it through the foreign key).
pub fn delete(conn: &Connection, slug: &str) -> Result<ProjectRow, StoreError> {
    let project = get(conn, slug)?;
    conn.execute("DELETE FROM projects WHERE id = ?1", [&project.id])?;
    Ok(project)
}

fn put_storage(conn: &Connection, project_id: &str, s3: Option<&S3Row>) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO project_storage (project_id, s3_bucket, s3_prefix, s3_region, s3_endpoint,
             s3_path_style, s3_checksum_mode, s3_access_key_secret, s3_secret_key_secret)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (project_id) DO UPDATE SET s3_bucket = ?2, s3_prefix = ?3, s3_region = ?4,
             s3_endpoint = ?5, s3_path_style = ?6, s3_checksum_mode = ?7,
             s3_access_key_secret = ?8, s3_secret_key_secret = ?9",
        params![
            project_id,
            s3.map(|s3| &s3.bucket),
            s3.map(|s3| s3.prefix.as_str()).unwrap_or(""),
            s3.and_then(|s3| s3.region.as_ref()),
            s3.and_then(|s3| s3.endpoint.as_ref()),
            s3.and_then(|s3| s3.path_style),
            s3.map(|s3| s3.checksum_mode.as_str()),
            s3.and_then(|s3| s3.access_key_secret.as_ref()),
            s3.and_then(|s3| s3.secret_key_secret.as_ref()),
        ],
    )?;
    Ok(())
}
