//! `storage.*` handlers: resolve the project, its S3 settings and keys, and what is synced; then
//! plan (`storage::make_plan`) and carry the plan out (`storage::carry_out`). One sync per
//! project at a time.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};

use kroma_protocol as protocol;
use protocol::storage::{CheckReport, Op, Plan, SyncReport, What};
use protocol::{Action, ErrorCode, ErrorKind};
use secrecy::SecretString;

use super::find_project;
use crate::Daemon;
use crate::error::{Hint, Problem};
use crate::storage::remote::{Bucket, Keys};
use crate::storage::{self, Scope, plan};

/// Resolves the params' project and `what`, and opens its bucket with the keys from the secret
/// store.
async fn open(daemon: &Daemon, slug: &str, what: &What) -> Result<(Scope, Bucket), Problem> {
    let project = find_project(daemon, slug).await?;
    let Some(settings) = project.s3.clone() else {
        return Err(Problem::validation(
            ErrorCode::S3NotConfigured,
            format!("project `{}` has no S3 settings", project.slug),
        )
        .with_hint(Hint::new(
            "set the project's bucket (and endpoint, for a store other than AWS)",
            Action::call::<protocol::project::Update>(
                [("slug", project.slug.as_str().into())],
                &["s3"],
            ),
        )));
    };
    let rel = match what {
        What::Project => String::new(),
        What::Export { id } => {
            let lookup = id.clone();
            let row = daemon
                .store
                .read(move |conn| crate::store::exports::get(conn, &lookup))
                .await?
                .filter(|row| row.project_id == project.id)
                .ok_or_else(|| {
                    Problem::new(
                        ErrorKind::NotFound,
                        ErrorCode::ExportNotFound,
                        format!("project `{}` has no export `{id}`", project.slug),
                    )
                    .with_hint(Hint::new(
                        "the export list shows the ids",
                        Action::call::<protocol::export::List>(
                            [("project", project.slug.as_str().into())],
                            &[],
                        ),
                    ))
                })?;
            row.rel_path.trim_end_matches('/').to_owned()
        }
    };
    let keys = keys(daemon, &settings).await?;
    let bucket = Bucket::new(&settings, &keys, daemon.clock);
    let scope = Scope {
        base: plan::base(&settings.prefix, &project.slug),
        project,
        settings,
        what: what.clone(),
        rel,
    };
    Ok((scope, bucket))
}

async fn keys(
    daemon: &Daemon,
    settings: &crate::projects::rules::S3Settings,
) -> Result<Keys, Problem> {
    let (access, secret) = settings.secret_names();
    let (access, secret) = (access.to_owned(), secret.to_owned());
    let secrets = daemon.secrets.get().await;
    tokio::task::spawn_blocking(move || {
        let read = |name: &str| -> Result<SecretString, Problem> {
            secrets.get(name).map(|(value, _)| value).map_err(|err| {
                Problem::validation(
                    ErrorCode::S3CredentialsMissing,
                    format!("the S3 key in secret `{name}` cannot be read: {err}"),
                )
                .with_hint(Hint::new(
                    format!(
                        "store the access key id in secret `{access}` and the secret access key in `{secret}`"
                    ),
                    Action::call::<protocol::secret::Set>([("name", name.into())], &["value"]),
                ))
            })
        };
        Ok(Keys {
            access_key: read(&access)?,
            secret_key: read(&secret)?,
        })
    })
    .await
    .map_err(|err| Problem::new(ErrorKind::Internal, ErrorCode::Internal, err.to_string()))?
}

async fn unfinished(
    daemon: &Daemon,
    scope: &Scope,
) -> Result<Vec<crate::store::storage::UploadRow>, Problem> {
    let project_id = scope.project.id.clone();
    Ok(daemon
        .store
        .read(move |conn| crate::store::storage::uploads(conn, &project_id))
        .await?)
}

pub async fn plan(
    daemon: Arc<Daemon>,
    params: protocol::storage::PlanParams,
) -> Result<Plan, Problem> {
    plan_in(&daemon, &params).await
}

/// `storage.plan` for callers inside kromad (an agent's sync is planned when proposed).
pub(crate) async fn plan_in(
    daemon: &Daemon,
    params: &protocol::storage::PlanParams,
) -> Result<Plan, Problem> {
    let (scope, bucket) = open(daemon, &params.project, &params.what).await?;
    let unfinished = unfinished(daemon, &scope).await?;
    storage::make_plan(
        &bucket,
        &scope,
        params.direction,
        params.delete,
        &unfinished,
    )
    .await
}

/// The projects with a sync running, by id.
fn running() -> &'static Mutex<HashSet<String>> {
    static RUNNING: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    RUNNING.get_or_init(Mutex::default)
}

/// Marks a project's sync running until dropped.
struct Running(String);

impl Running {
    fn start(project: &crate::store::ProjectRow) -> Result<Running, Problem> {
        let mut running = running()
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if !running.insert(project.id.clone()) {
            return Err(Problem::new(
                ErrorKind::Conflict,
                ErrorCode::SyncInProgress,
                format!("a sync of project `{}` is running", project.slug),
            )
            .with_hint("wait for it to end (storage.progress events follow it), then sync again"));
        }
        Ok(Running(project.id.clone()))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        running()
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(&self.0);
    }
}

pub async fn sync(
    daemon: Arc<Daemon>,
    params: protocol::storage::SyncParams,
) -> Result<SyncReport, Problem> {
    let (scope, bucket) = open(&daemon, &params.project, &params.what).await?;
    let _running = Running::start(&scope.project)?;
    let unfinished = unfinished(&daemon, &scope).await?;
    let mut plan = storage::make_plan(
        &bucket,
        &scope,
        params.direction,
        params.delete,
        &unfinished,
    )
    .await?;
    if let Some(confirmed) = &params.confirmed_deletes {
        let confirmed: HashSet<&str> = confirmed.iter().map(String::as_str).collect();
        let before = plan.items.len();
        plan.items
            .retain(|item| item.op != Op::Delete || confirmed.contains(item.path.as_str()));
        plan.kept += (before - plan.items.len()) as u32;
    }
    if params.dry_run {
        return Ok(SyncReport::new(plan, true));
    }
    let stop = daemon.shutdown.child_token();
    storage::carry_out(&daemon.services, &bucket, &scope, plan, &stop).await
}

pub async fn check(
    daemon: Arc<Daemon>,
    params: protocol::storage::CheckParams,
) -> Result<CheckReport, Problem> {
    let (scope, bucket) = open(&daemon, &params.project, &What::Project).await?;
    bucket
        .check()
        .await
        .map_err(|err| storage::problem(&err, &scope))?;
    Ok(CheckReport {
        project: scope.project.slug.clone(),
        destination: plan::destination(&scope.settings.bucket, &scope.base),
    })
}
