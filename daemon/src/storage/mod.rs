//! S3 sync of a project's folder or one of its exports (`storage.*`).
//!
//! - `plan.rs` (pure): keys under `<prefix>/<slug>/`, which object names a pull may write, and
//!   the diff of the two sides.
//! - `local.rs`: the folder side: a walk that never follows links, a pulled file written whole.
//! - `remote.rs`: the bucket side over `aws-sdk-s3`, and what went wrong as a [`remote::Fault`].
//! - `sync.rs`: carrying a plan out: bounded concurrency, multipart uploads journaled in the
//!   store (so an interrupted one is resumed or aborted), progress, one failed object among many.
//!
//! A plan compares sizes first and sha256 only where sizes match: the local file is hashed and
//! the object's `sha256` metadata read with a HEAD, so an unchanged tree costs one listing and a
//! HEAD per object, never a download.

pub mod local;
pub mod plan;
pub mod remote;
mod sync;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use futures::StreamExt as _;
use kroma_protocol as protocol;
use protocol::storage::{Direction, Plan, What};
use protocol::{Action, ErrorCode, ErrorKind};

pub use sync::carry_out;

use crate::error::{Hint, Problem};
use crate::projects::rules::S3Settings;
use crate::store::ProjectRow;
use remote::{Bucket, Fault, S3Error};

/// How many requests one sync has in flight at most.
pub const CONCURRENCY: usize = 4;

/// What a sync works on, resolved from its params.
#[derive(Debug, Clone)]
pub struct Scope {
    pub project: ProjectRow,
    pub settings: S3Settings,
    pub what: What,
    /// `<prefix>/<slug>/`.
    pub base: String,
    /// `""` for the whole project, else the export's path in the project folder.
    pub rel: String,
}

impl Scope {
    pub fn root(&self) -> PathBuf {
        PathBuf::from(&self.project.root)
    }

    /// Whether a path in the project folder belongs to this scope.
    fn holds(&self, path: &str) -> bool {
        self.rel.is_empty()
            || path == self.rel
            || path
                .strip_prefix(self.rel.as_str())
                .is_some_and(|rest| rest.starts_with('/'))
    }
}

/// The sync-wide problem an S3 error stands for, with the fix.
pub fn problem(err: &S3Error, scope: &Scope) -> Problem {
    let settings = &scope.settings;
    let (access, secret) = settings.secret_names();
    let at = match &settings.endpoint {
        Some(endpoint) => format!("bucket `{}` at {endpoint}", settings.bucket),
        None => format!("bucket `{}` on AWS", settings.bucket),
    };
    match err.fault {
        Fault::Auth | Fault::Denied => Problem::new(
            ErrorKind::Provider,
            ErrorCode::S3AuthFailed,
            format!("{at} refused the keys ({err})"),
        )
        .with_hint(Hint::new(
            format!(
                "store the access key id in secret `{access}` and the secret key in `{secret}` (both from the same key pair, allowed to read and write the bucket)"
            ),
            Action::call::<protocol::secret::Set>([("name", access.into())], &["value"]),
        )),
        Fault::NoSuchBucket => Problem::new(
            ErrorKind::Provider,
            ErrorCode::S3NoSuchBucket,
            format!("{at} does not exist"),
        )
        .with_hint(Hint::new(
            "create the bucket with your storage provider's tools, or set the project's bucket (project.update with s3)",
            Action::call::<protocol::project::Update>(
                [("slug", scope.project.slug.as_str().into())],
                &["s3"],
            ),
        )),
        Fault::ClockSkew => Problem::new(
            ErrorKind::Infra,
            ErrorCode::S3ClockSkew,
            format!("{at} rejected the request's time: this machine's clock is off ({err})"),
        )
        .with_hint("set the system clock right (turn on time sync, e.g. `timedatectl set-ntp true`) and sync again"),
        Fault::Unreachable => Problem::new(
            ErrorKind::Infra,
            ErrorCode::S3Unreachable,
            format!("nothing answered for {at}: {}", err.message),
        )
        .with_hint("check the network connection and the project's S3 endpoint and region, then sync again; an interrupted sync resumes where it stopped"),
        Fault::NotFound | Fault::Unsupported | Fault::Other => Problem::new(
            ErrorKind::Provider,
            ErrorCode::S3Failed,
            format!("{at} failed: {err}"),
        )
        .with_hint("run the sync again; if it keeps failing the message above is the store's own"),
    }
}

fn internal(err: impl std::fmt::Display) -> Problem {
    Problem::new(ErrorKind::Internal, ErrorCode::Internal, err.to_string())
}

fn too_many() -> Problem {
    Problem::validation(
        ErrorCode::SyncTooLarge,
        format!(
            "a sync moves at most {} files; this one holds more",
            local::MAX_FILES
        ),
    )
    .with_hint("sync one export at a time, or split the project")
}

/// Compares the scope's local files with the bucket.
pub async fn make_plan(
    bucket: &Bucket,
    scope: &Scope,
    direction: Direction,
    delete: bool,
    unfinished: &[crate::store::storage::UploadRow],
) -> Result<Plan, Problem> {
    bucket.check().await.map_err(|err| problem(&err, scope))?;
    let (root, rel) = (scope.root(), scope.rel.clone());
    let found = tokio::task::spawn_blocking(move || local::walk(&root, &rel))
        .await
        .map_err(internal)?
        .map_err(|err| match err {
            local::WalkError::TooMany => too_many(),
            local::WalkError::Io { path, source } => Problem::new(
                ErrorKind::Infra,
                ErrorCode::IoError,
                format!("reading {}: {source}", path.display()),
            )
            .with_hint("check that the project folder is there and readable"),
        })?;
    let mut skipped = found.skipped;
    let listed = bucket
        .list(&format!("{}{}", scope.base, scope.rel), local::MAX_FILES)
        .await
        .map_err(|err| match err.code.as_str() {
            "too_many_objects" => too_many(),
            _ => problem(&err, scope),
        })?;
    let mut remote = BTreeMap::new();
    for (key, size) in listed {
        match plan::path_of_key(&scope.base, &key) {
            Some(path) if scope.holds(&path) => {
                remote.insert(path, size);
            }
            Some(_) => {}
            // Folder markers (`a/`) are how some tools show empty folders: nothing to move.
            None if key.ends_with('/') && size == 0 => {}
            None if plan::is_private(key.strip_prefix(&scope.base).unwrap_or("")) => {}
            None => skipped.push(protocol::storage::Skipped {
                path: key,
                reason: "object key is not a safe file name in a project folder".into(),
            }),
        }
    }
    let equal = same_content(bucket, scope, &found.files, &remote).await?;
    let sides = plan::Sides {
        local: &found.files,
        remote: &remote,
        equal: &equal,
    };
    let diff = plan::diff(direction, delete, &scope.base, &sides);
    let uploads: BTreeSet<&str> = diff
        .items
        .iter()
        .filter(|item| item.op == protocol::storage::Op::Upload)
        .map(|item| item.key.as_str())
        .collect();
    let resumable = unfinished
        .iter()
        .filter(|row| uploads.contains(row.key.as_str()))
        .count() as u32;
    let transfer_bytes = diff
        .items
        .iter()
        .filter(|item| item.op != protocol::storage::Op::Delete)
        .map(|item| item.size)
        .sum();
    Ok(Plan {
        project: scope.project.slug.clone(),
        what: scope.what.clone(),
        direction,
        delete,
        destination: plan::destination(&scope.settings.bucket, &scope.base),
        items: diff.items,
        unchanged: diff.unchanged,
        transfer_bytes,
        kept: diff.kept,
        resumable,
        skipped,
    })
}

/// The paths both sides hold with the same size and the same sha256: the local file hashed, the
/// object's stored sha256 read with a HEAD (an object without one counts as changed).
async fn same_content(
    bucket: &Bucket,
    scope: &Scope,
    local: &BTreeMap<String, u64>,
    remote: &BTreeMap<String, u64>,
) -> Result<BTreeSet<String>, Problem> {
    let none = BTreeSet::new();
    let sides = plan::Sides {
        local,
        remote,
        equal: &none,
    };
    let candidates: Vec<String> = plan::same_size(&sides)
        .into_iter()
        .map(str::to_owned)
        .collect();
    let root = scope.root();
    let compared: Vec<Result<Option<String>, Problem>> = futures::stream::iter(candidates)
        .map(|path| {
            let root = root.clone();
            async move {
                let key = format!("{}{path}", scope.base);
                let remote = match bucket.sha256_of(&key).await {
                    Ok(sha256) => sha256,
                    // Gone since the listing, or not ours to read: not equal.
                    Err(err) if !err.fault.stops_the_sync() => None,
                    Err(err) => return Err(problem(&err, scope)),
                };
                let Some(remote) = remote else {
                    return Ok(None);
                };
                let file = root.join(&path);
                let local =
                    tokio::task::spawn_blocking(move || crate::exports::pack::hash_file(&file))
                        .await
                        .map_err(internal)?;
                Ok(match local {
                    Ok((_, sha256)) if sha256 == remote => Some(path),
                    _ => None,
                })
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let mut equal = BTreeSet::new();
    for result in compared {
        if let Some(path) = result? {
            equal.insert(path);
        }
    }
    Ok(equal)
}
