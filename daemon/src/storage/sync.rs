//! Carrying a plan out: at most [`CONCURRENCY`] files in flight, multipart uploads journaled in
//! the store part by part (so a sync killed halfway resumes them, and one whose file changed
//! aborts them), `storage.progress` events, and a failed object reported while the others go on.
//! A fault every later call would meet too (refused keys, no bucket, no network, a wrong clock)
//! stops the sync with that problem instead.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use kroma_protocol as protocol;
use protocol::storage::{Failure, Op, Plan, PlanItem, SyncProgress, SyncReport};
use tokio_util::sync::CancellationToken;

use super::remote::{self, Bucket, Part, S3Error};
use super::{CONCURRENCY, Scope, internal, local, problem};
use crate::Services;
use crate::error::Problem;
use crate::store::storage::{self as journal, UploadRow};

/// What one step of the plan came to.
enum Outcome {
    /// Moved (or deleted): the bytes sent or received, and parts a resumed upload did not send.
    Done {
        bytes: u64,
        resumed_parts: u32,
    },
    Failed(Failure),
}

/// A step's error: one object, or the whole sync.
enum StepError {
    Object { code: String, message: String },
    Sync(Problem),
}

impl StepError {
    fn s3(err: S3Error, scope: &Scope) -> StepError {
        if err.fault.stops_the_sync() {
            StepError::Sync(problem(&err, scope))
        } else {
            StepError::Object {
                code: err.code,
                message: err.message,
            }
        }
    }

    fn io(what: &str, err: impl std::fmt::Display) -> StepError {
        StepError::Object {
            code: "io".into(),
            message: format!("{what}: {err}"),
        }
    }
}

struct Context<'a> {
    services: &'a Services,
    bucket: &'a Bucket,
    scope: &'a Scope,
    unfinished: &'a [UploadRow],
    progress: Progress<'a>,
}

/// Carries out `plan` (made moments ago by `make_plan`).
pub async fn carry_out(
    services: &Services,
    bucket: &Bucket,
    scope: &Scope,
    plan: Plan,
    stop: &CancellationToken,
) -> Result<SyncReport, Problem> {
    let mut report = SyncReport::new(plan, false);
    let project_id = scope.project.id.clone();
    let unfinished = services
        .store
        .read(move |conn| journal::uploads(conn, &project_id))
        .await?;
    let uploads: BTreeSet<&str> = report
        .plan
        .items
        .iter()
        .filter(|item| item.op == Op::Upload)
        .map(|item| item.key.as_str())
        .collect();
    for row in &unfinished {
        let here = row.endpoint == bucket.endpoint && row.bucket == bucket.name;
        if here && uploads.contains(row.key.as_str()) {
            continue;
        }
        if here {
            match bucket.abort(&row.key, &row.upload_id).await {
                Ok(()) => report.aborted_uploads += 1,
                Err(err) if err.fault.stops_the_sync() => return Err(problem(&err, scope)),
                Err(err) => {
                    tracing::warn!(key = %row.key, %err, "could not abort an unfinished upload")
                }
            }
        }
        forget(services, &row.upload_id).await?;
    }
    let steps = report.plan.items.len();
    let context = Context {
        services,
        bucket,
        scope,
        unfinished: &unfinished,
        progress: Progress::new(services, scope, &report.plan, steps),
    };
    // Transfers first, then deletes: a delete never runs before what replaces it is there.
    let (transfers, deletes): (Vec<PlanItem>, Vec<PlanItem>) = report
        .plan
        .items
        .iter()
        .cloned()
        .partition(|item| item.op != Op::Delete);
    let mut results = Vec::with_capacity(steps);
    for batch in [transfers, deletes] {
        let context = &context;
        let mut stream = futures::stream::iter(batch)
            .map(|item| async move { step(context, &item).await })
            .buffer_unordered(CONCURRENCY);
        loop {
            let next = tokio::select! {
                _ = stop.cancelled() => return Err(crate::postprocess::budget::stopped()),
                next = stream.next() => next,
            };
            let Some((op, outcome)) = next else { break };
            let outcome = outcome?;
            context.progress.step_done().await;
            results.push((op, outcome));
        }
    }
    context.progress.report(true).await;
    for (op, outcome) in results {
        match outcome {
            Outcome::Done {
                bytes,
                resumed_parts,
            } => {
                match op {
                    Op::Upload => report.uploaded += 1,
                    Op::Download => report.downloaded += 1,
                    Op::Delete => report.deleted += 1,
                }
                report.bytes += bytes;
                report.resumed_parts += resumed_parts;
            }
            Outcome::Failed(failure) => report.failed.push(failure),
        }
    }
    report.failed.sort_by(|a, b| a.path.cmp(&b.path));
    report.ok = report.failed.is_empty();
    Ok(report)
}

/// One step of the plan; an object's error becomes its `Failure`.
async fn step(context: &Context<'_>, item: &PlanItem) -> (Op, Result<Outcome, Problem>) {
    let done = match item.op {
        Op::Upload => upload(context, item).await,
        Op::Download => download(context, item).await,
        Op::Delete => delete(context, item).await,
    };
    let outcome = match done {
        Ok(outcome) => Ok(outcome),
        Err(StepError::Object { code, message }) => Ok(Outcome::Failed(Failure {
            path: item.path.clone(),
            op: item.op,
            code,
            message,
        })),
        Err(StepError::Sync(problem)) => Err(problem),
    };
    (item.op, outcome)
}

async fn upload(context: &Context<'_>, item: &PlanItem) -> Result<Outcome, StepError> {
    let path = context.scope.root().join(&item.path);
    let file = path.clone();
    let (size, sha256) =
        tokio::task::spawn_blocking(move || crate::exports::pack::hash_file(&file))
            .await
            .map_err(|err| StepError::Sync(internal(err)))?
            .map_err(|err| StepError::io("reading the file", err))?;
    if size <= remote::MULTIPART_THRESHOLD {
        context
            .bucket
            .put(&item.key, &path, &sha256)
            .await
            .map_err(|err| StepError::s3(err, context.scope))?;
        context.progress.bytes(size);
        return Ok(Outcome::Done {
            bytes: size,
            resumed_parts: 0,
        });
    }
    multipart(context, item, &path, size, &sha256).await
}

/// A big file in parts: the journaled upload resumed when it is of this very file (same size
/// and sha256), else a new one; every acknowledged part journaled before the next is sent.
async fn multipart(
    context: &Context<'_>,
    item: &PlanItem,
    path: &Path,
    size: u64,
    sha256: &str,
) -> Result<Outcome, StepError> {
    let (bucket, scope) = (context.bucket, context.scope);
    let s3 = |err| StepError::s3(err, scope);
    let earlier = context.unfinished.iter().find(|row| {
        row.key == item.key && row.endpoint == bucket.endpoint && row.bucket == bucket.name
    });
    let mut resumed: Option<(String, journal::Parts)> = None;
    if let Some(row) = earlier {
        let same_file =
            row.size == size && row.sha256 == sha256 && row.part_size == remote::PART_SIZE;
        if same_file {
            let held = match bucket.parts(&row.key, &row.upload_id).await {
                Ok(held) => Some(held),
                Err(err) if err.fault == remote::Fault::NotFound => None,
                Err(err) => return Err(s3(err)),
            };
            if let Some(held) = held {
                let expected: BTreeMap<i32, u64> = remote::parts_of(size)
                    .into_iter()
                    .map(|(number, _, len)| (number, len))
                    .collect();
                let parts = row
                    .parts
                    .iter()
                    .filter(|(number, _)| match &held {
                        // The store lists what it holds: keep only parts it holds whole.
                        Some(held) => held.get(*number) == expected.get(*number),
                        None => true,
                    })
                    .map(|(number, part)| (*number, part.clone()))
                    .collect();
                resumed = Some((row.upload_id.clone(), parts));
            }
        } else {
            bucket.abort(&row.key, &row.upload_id).await.map_err(s3)?;
        }
        if resumed.is_none() {
            forget(context.services, &row.upload_id)
                .await
                .map_err(StepError::Sync)?;
        }
    }
    let (upload_id, mut parts) = match resumed {
        Some(resumed) => resumed,
        None => {
            let upload_id = bucket.create_upload(&item.key, sha256).await.map_err(s3)?;
            let row = UploadRow {
                upload_id: upload_id.clone(),
                project_id: scope.project.id.clone(),
                endpoint: bucket.endpoint.clone(),
                bucket: bucket.name.clone(),
                key: item.key.clone(),
                path: item.path.clone(),
                size,
                sha256: sha256.to_owned(),
                part_size: remote::PART_SIZE,
                created_at: context.services.clock.now(),
                parts: BTreeMap::new(),
            };
            context
                .services
                .store
                .write(move |tx| journal::insert_upload(tx, &row).map(|()| ((), Vec::new())))
                .await
                .map_err(|err| StepError::Sync(err.into()))?;
            (upload_id, BTreeMap::new())
        }
    };
    let (mut sent, mut resumed_parts) = (0u64, 0u32);
    let mut missing = Vec::new();
    for (number, offset, len) in remote::parts_of(size) {
        if parts.contains_key(&number) {
            resumed_parts += 1;
            context.progress.bytes(len);
        } else {
            missing.push((number, offset, len));
        }
    }
    // Parts go up [`PART_CONCURRENCY`] at a time; each is journaled as the store acknowledges
    // it, so a stop leaves exactly the acknowledged ones for the next sync.
    let upload_id = upload_id.as_str();
    let mut sending = futures::stream::iter(missing)
        .map(|(number, offset, len)| {
            send_part(context, item, path, upload_id, (number, offset, len))
        })
        .buffer_unordered(PART_CONCURRENCY);
    while let Some(done) = sending.next().await {
        let (number, len, etag, part_sha256) = done?;
        parts.insert(number, (etag, part_sha256));
        sent += len;
    }
    drop(sending);
    bucket
        .complete(&item.key, upload_id, &parts)
        .await
        .map_err(s3)?;
    forget(context.services, upload_id)
        .await
        .map_err(StepError::Sync)?;
    Ok(Outcome::Done {
        bytes: sent,
        resumed_parts,
    })
}

/// Parts of one file in flight at once.
const PART_CONCURRENCY: usize = 4;

/// Sends one part with its checksum and journals it once the store acknowledged it; answers
/// its number, length, ETag and base64 sha256.
async fn send_part(
    context: &Context<'_>,
    item: &PlanItem,
    path: &Path,
    upload_id: &str,
    (number, offset, len): (i32, u64, u64),
) -> Result<(i32, u64, String, String), StepError> {
    let file = path.to_owned();
    let part_sha256 = tokio::task::spawn_blocking(move || remote::part_sha256(&file, offset, len))
        .await
        .map_err(|err| StepError::Sync(internal(err)))?
        .map_err(|err| StepError::io("reading the file", err))?;
    let part = Part {
        key: &item.key,
        upload_id,
        number,
        offset,
        len,
    };
    let etag = context
        .bucket
        .upload_part(&part, path, &part_sha256)
        .await
        .map_err(|err| StepError::s3(err, context.scope))?;
    let (id, tag, sum) = (upload_id.to_owned(), etag.clone(), part_sha256.clone());
    context
        .services
        .store
        .write(move |tx| {
            journal::insert_part(tx, &id, number, &tag, &sum).map(|()| ((), Vec::new()))
        })
        .await
        .map_err(|err| StepError::Sync(err.into()))?;
    context.progress.bytes(len);
    Ok((number, len, etag, part_sha256))
}

async fn download(context: &Context<'_>, item: &PlanItem) -> Result<Outcome, StepError> {
    let root = context.scope.root();
    let (folder, path) = (root.clone(), item.path.clone());
    let target = tokio::task::spawn_blocking(move || local::target_in(&folder, &path))
        .await
        .map_err(|err| StepError::Sync(internal(err)))?
        .map_err(|err| StepError::io("preparing the file", err))?;
    let mut incoming =
        local::Incoming::new(&target).map_err(|err| StepError::io("creating the file", err))?;
    let expected = context
        .bucket
        .get(&item.key, &mut incoming)
        .await
        .map_err(|err| StepError::s3(err, context.scope))?;
    let (size, sha256) = incoming.summary();
    if let Some(expected) = expected
        && expected != sha256
    {
        return Err(StepError::Object {
            code: "BadDigest".into(),
            message: format!(
                "the object's bytes have sha256 {sha256}, not the {expected} it was stored with; nothing was written"
            ),
        });
    }
    let stamp = context.services.clock.now();
    tokio::task::spawn_blocking(move || incoming.finish(&target, Some((&root, &stamp))))
        .await
        .map_err(|err| StepError::Sync(internal(err)))?
        .map_err(|err| StepError::io("writing the file", err))?;
    context.progress.bytes(size);
    Ok(Outcome::Done {
        bytes: size,
        resumed_parts: 0,
    })
}

async fn delete(context: &Context<'_>, item: &PlanItem) -> Result<Outcome, StepError> {
    match context.scope_direction() {
        protocol::storage::Direction::Push => context
            .bucket
            .delete(&item.key)
            .await
            .map_err(|err| StepError::s3(err, context.scope))?,
        protocol::storage::Direction::Pull => {
            let file = context.scope.root().join(&item.path);
            tokio::task::spawn_blocking(move || match std::fs::remove_file(&file) {
                Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(err),
                _ => Ok(()),
            })
            .await
            .map_err(|err| StepError::Sync(internal(err)))?
            .map_err(|err| StepError::io("removing the file", err))?
        }
    }
    Ok(Outcome::Done {
        bytes: 0,
        resumed_parts: 0,
    })
}

impl Context<'_> {
    fn scope_direction(&self) -> protocol::storage::Direction {
        self.progress.direction
    }
}

/// Forgets a journaled upload.
async fn forget(services: &Services, upload_id: &str) -> Result<(), Problem> {
    let id = upload_id.to_owned();
    services
        .store
        .write(move |tx| journal::delete_upload(tx, &id).map(|()| ((), Vec::new())))
        .await?;
    Ok(())
}

/// `storage.progress` events: at most four a second, and the last.
struct Progress<'a> {
    services: &'a Services,
    project: String,
    direction: protocol::storage::Direction,
    total: u32,
    bytes_total: u64,
    state: Mutex<ProgressState>,
}

#[derive(Default)]
struct ProgressState {
    done: u32,
    bytes_done: u64,
    last: Option<Instant>,
}

impl<'a> Progress<'a> {
    fn new(services: &'a Services, scope: &Scope, plan: &Plan, steps: usize) -> Progress<'a> {
        Progress {
            services,
            project: scope.project.slug.clone(),
            direction: plan.direction,
            total: steps as u32,
            bytes_total: plan.transfer_bytes,
            state: Mutex::new(ProgressState::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ProgressState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn bytes(&self, bytes: u64) {
        self.lock().bytes_done += bytes;
    }

    async fn step_done(&self) {
        self.lock().done += 1;
        self.report(false).await;
    }

    async fn report(&self, last: bool) {
        let event = {
            let mut state = self.lock();
            let now = Instant::now();
            if !last
                && state
                    .last
                    .is_some_and(|at| now.duration_since(at) < Duration::from_millis(250))
            {
                return;
            }
            state.last = Some(now);
            crate::store::NewEvent::of(
                self.services.clock.now(),
                Some(self.project.clone()),
                &SyncProgress {
                    project: self.project.clone(),
                    direction: self.direction,
                    done: state.done,
                    total: self.total,
                    bytes_done: state.bytes_done.min(self.bytes_total),
                    bytes_total: self.bytes_total,
                },
            )
        };
        if let Err(err) = self.services.store.append_events(vec![event]).await {
            tracing::warn!(%err, "could not record a storage.progress event");
        }
    }
}
