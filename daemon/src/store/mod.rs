//! The SQLite store: the one module that knows SQL.
//!
//! One connection to `<data dir>/kroma.db` behind a mutex, used only from blocking threads
//! (`spawn_blocking`), so database work never stalls the async runtime. Writes run in a
//! transaction together with the events they cause; the events are broadcast after the commit
//! while the lock is still held, so subscribers see them in id order and never before they are
//! committed. (WAL with `synchronous=NORMAL` survives a crash of kromad, not a power cut: the
//! last commits before one can be lost.)

mod assets;
mod audit;
pub mod chat;
mod costs;
mod events;
pub mod exports;
pub mod instructions;
pub mod knowledge;
mod problems;
mod projects;
pub mod providers;
pub mod review;
pub mod runs;
pub mod secrets;
pub mod storage;
pub mod watch;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use kroma_protocol as protocol;
use rusqlite::{Connection, OpenFlags, Transaction};
use rusqlite_migration::{M, Migrations, SchemaVersion};
use tokio::sync::broadcast;

pub use assets::{AssetRow, LinkRow, NewAsset};
pub use audit::{
    NewAuditEntry, insert as insert_audit, params_digest, set_outcome as set_audit_outcome,
};
pub use events::NewEvent;
pub use projects::{NewProject, ProjectChanges, ProjectRow};

/// Append-only: never edit or reorder an entry, add a new file instead.
const MIGRATIONS: &[M<'static>] = &[
    M::up(include_str!(
        "../../migrations/0001_projects_events_audit.sql"
    )),
    M::up(include_str!("../../migrations/0002_assets.sql")),
    M::up(include_str!("../../migrations/0003_knowledge.sql")),
    M::up(include_str!("../../migrations/0004_secrets.sql")),
    M::up(include_str!("../../migrations/0005_providers.sql")),
    M::up(include_str!("../../migrations/0006_runs.sql")),
    M::up(include_str!("../../migrations/0007_run_jobs.sql")),
    M::up(include_str!("../../migrations/0008_run_postprocess.sql")),
    M::up(include_str!("../../migrations/0009_instructions.sql")),
    M::up(include_str!("../../migrations/0010_confirmation_pages.sql")),
    M::up(include_str!("../../migrations/0011_chat.sql")),
    M::up(include_str!("../../migrations/0012_watch.sql")),
    M::up(include_str!("../../migrations/0013_review.sql")),
    M::up(include_str!("../../migrations/0014_exports.sql")),
    M::up(include_str!("../../migrations/0015_storage.sql")),
];

/// How many events a slow subscriber may fall behind before it re-reads from the database.
const EVENT_CHANNEL_CAPACITY: usize = 1024;

tokio::task_local! {
    /// The call being served: the first write transaction made inside [`audited`] carries its
    /// audit entry, so a change is never committed without it, even if the call is then cut
    /// off (a timeout, a caller that left) or kromad dies.
    static CALL_AUDIT: Arc<CallAudit>;
}

/// The audit entry of one call, and the id it got once written. The time and the params digest
/// are formatted only when the entry is written: most calls change nothing and are never audited.
#[derive(Debug)]
pub struct CallAudit {
    entry: NewAuditEntry,
    started: time::OffsetDateTime,
    raw_params: Option<String>,
    secret_fields: &'static [&'static str],
    id: Mutex<Option<i64>>,
}

impl CallAudit {
    /// `entry` with an empty time and digest: the call's start (`started`) and the digest of
    /// `raw_params` without `secret_fields` are filled in when it is written.
    pub fn new(
        entry: NewAuditEntry,
        raw_params: Option<&str>,
        secret_fields: &'static [&'static str],
        started: time::OffsetDateTime,
    ) -> Arc<CallAudit> {
        Arc::new(CallAudit {
            entry,
            started,
            raw_params: raw_params.map(str::to_owned),
            secret_fields,
            id: Mutex::new(None),
        })
    }

    /// The entry's id, once a write transaction of the call has committed it.
    pub fn id(&self) -> Option<i64> {
        *self
            .id
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn method(&self) -> &'static str {
        self.entry.method
    }

    /// The entry as it is written, with `outcome`.
    pub fn entry(&self, outcome: &str) -> NewAuditEntry {
        NewAuditEntry {
            at: crate::clock::format(self.started),
            outcome: outcome.to_owned(),
            params_digest: audit::params_digest(self.raw_params.as_deref(), self.secret_fields),
            ..self.entry.clone()
        }
    }
}

/// Runs `call` with `audit` as its call's audit entry (see [`CALL_AUDIT`]).
pub async fn audited<F: std::future::Future>(audit: Arc<CallAudit>, call: F) -> F::Output {
    CALL_AUDIT.scope(audit, call).await
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "database {path} was written by a newer kromad (schema version {found}, this kromad knows up to {supported})"
    )]
    NewerSchema {
        path: PathBuf,
        found: usize,
        supported: usize,
    },
    #[error("opening database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("migrating database {path}: {source}")]
    Migrate {
        path: PathBuf,
        source: rusqlite_migration::Error,
    },
    #[error("project `{0}` not found")]
    ProjectNotFound(String),
    #[error("a project with slug `{0}` already exists")]
    SlugTaken(String),
    #[error("asset `{0}` not found in this project")]
    AssetNotFound(String),
    #[error("asset `{0}` is not an image")]
    NotAnImage(String),
    #[error("this link already exists")]
    LinkExists,
    #[error("{what} `{key}` not found in this project")]
    EntityNotFound { what: &'static str, key: String },
    #[error("a {what} named `{name}` already exists in this project")]
    NameTaken { what: &'static str, name: String },
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("database task failed: {0}")]
    Task(String),
}

#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    conn: Mutex<Connection>,
    events: broadcast::Sender<protocol::events::Event>,
}

impl Store {
    /// Opens (creating if needed) and migrates the database. Blocking: call it from
    /// `spawn_blocking` or before the runtime starts. A database from a newer kromad is refused
    /// before anything is written to it.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let open_error = |source| StoreError::Open {
            path: path.to_owned(),
            source,
        };
        let mut conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(open_error)?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(open_error)?;

        let migrations = Migrations::from_slice(MIGRATIONS);
        let migrate_error = |source| StoreError::Migrate {
            path: path.to_owned(),
            source,
        };
        if let SchemaVersion::Outside(found) =
            migrations.current_version(&conn).map_err(migrate_error)?
        {
            return Err(StoreError::NewerSchema {
                path: path.to_owned(),
                found: found.get(),
                supported: MIGRATIONS.len(),
            });
        }
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_error)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(open_error)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(open_error)?;
        migrations.to_latest(&mut conn).map_err(migrate_error)?;

        let (events, _) = broadcast::channel(EVENT_CHANNEL_CAPACITY);
        Ok(Store {
            inner: Arc::new(Inner {
                conn: Mutex::new(conn),
                events,
            }),
        })
    }

    /// The schema version this build migrates to.
    pub fn schema_version() -> u32 {
        MIGRATIONS.len() as u32
    }

    /// Runs read-only work on a blocking thread.
    pub async fn read<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || work(&inner.lock()))
            .await
            .map_err(|err| StoreError::Task(err.to_string()))?
    }

    /// Runs `work` in one transaction on a blocking thread. The events it returns are stored in
    /// the same transaction and broadcast once it commits.
    pub async fn write<T, E, F>(&self, work: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&Transaction) -> Result<(T, Vec<NewEvent>), E> + Send + 'static,
    {
        let inner = self.inner.clone();
        let call = CALL_AUDIT.try_with(Arc::clone).ok();
        tokio::task::spawn_blocking(move || {
            let mut conn = inner.lock();
            let tx = conn.transaction().map_err(StoreError::from)?;
            let (value, new_events) = work(&tx)?;
            let mut stored = Vec::with_capacity(new_events.len());
            for new_event in new_events {
                stored.push(events::insert(&tx, new_event)?);
            }
            // Checked and set under the connection lock: one entry per call.
            let mut audit_id = call.as_ref().map(|call| {
                call.id
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
            });
            let mut inserted = false;
            if let (Some(call), Some(slot)) = (&call, audit_id.as_deref_mut())
                && slot.is_none()
            {
                *slot = Some(audit::insert(&tx, &call.entry("ok"))?);
                inserted = true;
            }
            if let Err(err) = tx.commit() {
                if let (true, Some(slot)) = (inserted, audit_id.as_deref_mut()) {
                    *slot = None;
                }
                return Err(E::from(StoreError::from(err)));
            }
            drop(audit_id);
            for event in stored {
                // No receiver is not an error: nobody is subscribed right now.
                let _ = inner.events.send(event);
            }
            Ok(value)
        })
        .await
        .map_err(|err| E::from(StoreError::Task(err.to_string())))?
    }

    /// Appends events that come with no other change (`daemon.started`).
    pub async fn append_events(&self, new_events: Vec<NewEvent>) -> Result<(), StoreError> {
        self.write(move |_| Ok::<_, StoreError>(((), new_events)))
            .await
    }

    /// A receiver of every event committed from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<protocol::events::Event> {
        self.inner.events.subscribe()
    }

    /// Moves the write-ahead log into the main file so a copy of `kroma.db` alone is complete.
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        self.inner
            .lock()
            .pragma_update(None, "wal_checkpoint", "TRUNCATE")?;
        Ok(())
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (the transaction rolls back on
        // drop), so a poisoned lock is safe to keep using.
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// SQLite's own check of the whole database: `ok`, or the problems it found.
pub fn integrity_check(conn: &Connection) -> Result<String, StoreError> {
    let mut statement = conn.prepare("PRAGMA integrity_check")?;
    let lines: Vec<String> = statement
        .query_map([], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(lines.join("; "))
}

/// Row counts for `daemon.status`.
pub fn counts(conn: &Connection) -> Result<(u64, u64, u64), StoreError> {
    let count = |table: &str| -> Result<u64, StoreError> {
        let n: i64 = conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |row| {
            row.get(0)
        })?;
        Ok(n as u64)
    };
    Ok((count("projects")?, count("events")?, count("audit_events")?))
}

pub mod asset_queries {
    //! Asset queries, re-exported under one name so call sites read `asset_queries::insert`.
    pub use super::assets::{delete, find_by_sha, get, insert, lineage, link, list};
}
pub use audit::list as list_audit;
pub use events::list as list_events;
pub use projects::{delete as delete_project, get as get_project, insert as insert_project};
pub use projects::{list as list_projects, update as update_project};

#[cfg(test)]
mod tests;
