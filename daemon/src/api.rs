//! The method handlers, one async function per method of the contract, and their registration.
//!
//! [`register`] is the one place where params are decoded, errors are mapped onto JSON-RPC error
//! objects and mutating calls are written to the audit log, so handlers only see typed params.

use std::future::Future;
use std::sync::{Arc, OnceLock};

use jsonrpsee::{Extensions, RpcModule};
use kroma_protocol as protocol;
use protocol::{ErrorKind, Method, Subscription};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use tokio::sync::broadcast::error::RecvError;

use crate::error::ApiError;
use crate::server::Peer;
use crate::store::{
    self, NewAuditEntry, NewEvent, NewProject, ProjectChanges, ProjectRow, StoreError,
};
use crate::{Daemon, clock, project, project_root};

/// How many events a replay reads from the database at a time.
const REPLAY_PAGE: u32 = 500;
const DEFAULT_LIST_LIMIT: u32 = 100;

/// Every method of the contract, bound to `daemon`.
pub fn module(daemon: Arc<Daemon>) -> RpcModule<Daemon> {
    let mut module = RpcModule::from_arc(daemon);
    register::<protocol::daemon::Version, _, _>(&mut module, |_, _| async {
        Ok(protocol::daemon::VersionInfo {
            version: crate::VERSION.to_owned(),
            protocol_version: protocol::PROTOCOL_VERSION,
        })
    });
    register::<protocol::daemon::Status, _, _>(&mut module, daemon_status);
    register::<protocol::daemon::Shutdown, _, _>(&mut module, |daemon, _| async move {
        tracing::info!("shutdown requested over RPC");
        daemon.shutdown.cancel();
        Ok(protocol::daemon::ShutdownAck {
            pid: std::process::id(),
        })
    });
    register::<protocol::project::Create, _, _>(&mut module, project_create);
    register::<protocol::project::List, _, _>(&mut module, |daemon, _| async move {
        let rows = daemon.store.read(store::list_projects).await?;
        Ok(protocol::project::ProjectList {
            projects: rows.iter().map(to_proto).collect(),
        })
    });
    register::<protocol::project::Get, _, _>(&mut module, |daemon, params| async move {
        let slug = project::parse_slug(&params.slug)?;
        let row = daemon
            .store
            .read(move |conn| store::get_project(conn, &slug))
            .await?;
        Ok(to_proto(&row))
    });
    register::<protocol::project::Update, _, _>(&mut module, project_update);
    register::<protocol::project::Delete, _, _>(&mut module, project_delete);
    register::<protocol::events::List, _, _>(&mut module, |daemon, params| async move {
        let limit = parse_limit(params.limit)?;
        let since = params.since.unwrap_or(0);
        let (events, last_id) = daemon
            .store
            .read(move |conn| store::list_events(conn, since, limit))
            .await?;
        Ok(protocol::events::EventPage { events, last_id })
    });
    register::<protocol::audit::List, _, _>(&mut module, |daemon, params| async move {
        let limit = parse_limit(params.limit)?;
        let since = params.since.unwrap_or(0);
        let entries = daemon
            .store
            .read(move |conn| store::list_audit(conn, since, limit))
            .await?;
        Ok(protocol::audit::AuditPage { entries })
    });
    register::<protocol::rpc::Discover, _, _>(&mut module, |_, _| async {
        static DOCUMENT: OnceLock<serde_json::Value> = OnceLock::new();
        Ok(DOCUMENT
            .get_or_init(|| protocol::openrpc::document(crate::VERSION))
            .clone())
    });
    register_events_subscription(&mut module);
    module
}

/// Registers method `M`: decodes its params, runs `handler`, audits the call if `M` mutates.
fn register<M, F, Fut>(module: &mut RpcModule<Daemon>, handler: F)
where
    M: Method,
    M::Output: Clone,
    F: Fn(Arc<Daemon>, M::Params) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<M::Output, ApiError>> + Send + 'static,
{
    let result = module.register_async_method(M::NAME, move |params, daemon, extensions| {
        let handler = handler.clone();
        let raw = params.as_str().map(str::to_owned);
        async move {
            let result = match parse_params::<M::Params>(raw.as_deref()) {
                Ok(params) => handler(daemon.clone(), params).await,
                Err(err) => Err(err),
            };
            if M::MUTATING {
                let outcome = match &result {
                    Ok(_) => "ok",
                    Err(err) => err.code,
                };
                audit(
                    &daemon,
                    &extensions,
                    M::NAME,
                    raw.as_deref(),
                    M::SECRET_FIELDS,
                    outcome,
                )
                .await;
            }
            result.map_err(|err| err.to_rpc())
        }
    });
    if let Err(err) = result {
        unreachable!("method {} registered twice: {err}", M::NAME);
    }
}

/// Decodes named params; absent params, `null` and `[]` mean "no params".
fn parse_params<P: DeserializeOwned>(raw: Option<&str>) -> Result<P, ApiError> {
    let raw = match raw.map(str::trim) {
        None | Some("" | "null" | "[]") => "{}",
        Some(raw) => raw,
    };
    if raw.starts_with('[') {
        return Err(ApiError::validation(
            "params_not_object",
            "params must be a JSON object of named params, not an array",
        )
        .with_hint("`kromactl rpc schema` shows every method's params"));
    }
    serde_json::from_str(raw).map_err(|err| {
        ApiError::validation("invalid_params", format!("invalid params: {err}"))
            .with_hint("`kromactl rpc schema` shows every method's params")
    })
}

fn parse_limit(limit: Option<u32>) -> Result<u32, ApiError> {
    match limit.unwrap_or(DEFAULT_LIST_LIMIT) {
        limit @ 1..=protocol::events::MAX_LIST_LIMIT => Ok(limit),
        _ => Err(ApiError::validation(
            "invalid_limit",
            format!(
                "limit must be between 1 and {}",
                protocol::events::MAX_LIST_LIMIT
            ),
        )),
    }
}

async fn audit(
    daemon: &Daemon,
    extensions: &Extensions,
    method: &'static str,
    raw_params: Option<&str>,
    secret_fields: &[&str],
    outcome: &str,
) {
    let peer = extensions.get::<Peer>();
    let entry = NewAuditEntry {
        at: clock::now(),
        peer_uid: peer.and_then(|peer| peer.uid),
        client: peer.map_or_else(|| "in-process".to_owned(), |peer| peer.client.clone()),
        method,
        params_digest: params_digest(raw_params, secret_fields),
        outcome: outcome.to_owned(),
    };
    let written = daemon
        .store
        .write(move |tx| {
            store::insert_audit(tx, &entry)?;
            Ok::<_, StoreError>(((), Vec::new()))
        })
        .await;
    if let Err(err) = written {
        tracing::error!(%method, %err, "could not write the audit entry");
    }
}

/// SHA-256 of the params in canonical form (sorted keys), with secret fields removed first.
fn params_digest(raw: Option<&str>, secret_fields: &[&str]) -> String {
    let mut value: serde_json::Value = raw
        .and_then(|raw| serde_json::from_str(raw).ok())
        .unwrap_or(serde_json::Value::Null);
    if let serde_json::Value::Object(fields) = &mut value {
        for secret in secret_fields {
            fields.remove(*secret);
        }
    }
    let digest = Sha256::digest(value.to_string().as_bytes());
    format!("{digest:x}")
}

async fn daemon_status(
    daemon: Arc<Daemon>,
    _: protocol::NoParams,
) -> Result<protocol::daemon::DaemonStatus, ApiError> {
    let (projects, events, audit_events) = daemon.store.read(store::counts).await?;
    let open = daemon.config.limits.max_connections - daemon.connections.available_permits();
    Ok(protocol::daemon::DaemonStatus {
        version: crate::VERSION.to_owned(),
        protocol_version: protocol::PROTOCOL_VERSION,
        pid: std::process::id(),
        uptime_secs: daemon.started.elapsed().as_secs(),
        socket: daemon.config.socket.display().to_string(),
        data_dir: daemon.config.data_dir.display().to_string(),
        schema_version: store::Store::schema_version(),
        counts: protocol::daemon::DaemonCounts {
            projects,
            events,
            audit_events,
            connections: open as u64,
        },
    })
}

async fn project_create(
    daemon: Arc<Daemon>,
    params: protocol::project::CreateParams,
) -> Result<protocol::project::Project, ApiError> {
    let name = project::parse_name(&params.name)?;
    let slug = match &params.slug {
        Some(slug) => project::parse_slug(slug)?,
        None => project::derive_slug(&name)?,
    };
    let description = project::parse_description(params.description.as_deref().unwrap_or(""))?;
    let root = project::parse_root(params.root.as_deref(), &daemon.config.data_dir, &slug)?;
    let s3 = params.s3.as_ref().map(project::parse_s3).transpose()?;
    let new = NewProject {
        id: uuid::Uuid::new_v4().to_string(),
        slug,
        name,
        description,
        root: root.display().to_string(),
        s3,
        at: clock::now(),
    };
    let (row, created) = daemon
        .store
        .write(move |tx| {
            // The row first: a taken slug fails before anything touches the disk.
            let row = store::insert_project(tx, &new)?;
            let created = project_root::create(&root, &row.id, &row.slug)?;
            let event = NewEvent {
                at: new.at.clone(),
                kind: protocol::events::kind::PROJECT_CREATED,
                project: Some(row.slug.clone()),
                data: serde_json::json!({ "id": row.id, "name": row.name, "root": row.root }),
            };
            Ok::<_, ApiError>(((row, created), vec![event]))
        })
        .await?;
    created.keep();
    tracing::info!(slug = %row.slug, root = %row.root, "project created");
    Ok(to_proto(&row))
}

async fn project_update(
    daemon: Arc<Daemon>,
    params: protocol::project::UpdateParams,
) -> Result<protocol::project::Project, ApiError> {
    let slug = project::parse_slug(&params.slug)?;
    let changes = ProjectChanges {
        name: params
            .name
            .as_deref()
            .map(project::parse_name)
            .transpose()?,
        description: params
            .description
            .as_deref()
            .map(project::parse_description)
            .transpose()?,
        s3: match &params.s3 {
            None => None,
            Some(None) => Some(None),
            Some(Some(s3)) => Some(Some(project::parse_s3(s3)?)),
        },
    };
    let mut changed = Vec::new();
    if changes.name.is_some() {
        changed.push("name");
    }
    if changes.description.is_some() {
        changed.push("description");
    }
    if changes.s3.is_some() {
        changed.push("s3");
    }
    let at = clock::now();
    let row = daemon
        .store
        .write(move |tx| {
            let row = store::update_project(tx, &slug, &changes, &at)?;
            let event = NewEvent {
                at,
                kind: protocol::events::kind::PROJECT_UPDATED,
                project: Some(row.slug.clone()),
                data: serde_json::json!({ "changed": changed }),
            };
            Ok::<_, StoreError>((row, vec![event]))
        })
        .await?;
    Ok(to_proto(&row))
}

async fn project_delete(
    daemon: Arc<Daemon>,
    params: protocol::project::DeleteParams,
) -> Result<protocol::project::Deleted, ApiError> {
    let slug = project::parse_slug(&params.slug)?;
    if !params.confirm {
        return Err(ApiError::new(
            ErrorKind::Policy,
            "confirmation_required",
            format!("deleting project `{slug}` needs confirm: true"),
        )
        .with_hint("`kromactl project rm` asks for confirmation, or pass --yes"));
    }
    let purge_files = params.purge_files;
    let at = clock::now();
    let (row, detached) = daemon
        .store
        .write(move |tx| {
            let row = store::delete_project(tx, &slug)?;
            let detached = if purge_files {
                Some(project_root::detach(std::path::Path::new(&row.root), &row.id)?)
            } else {
                None
            };
            let event = NewEvent {
                at,
                kind: protocol::events::kind::PROJECT_DELETED,
                project: Some(row.slug.clone()),
                data: serde_json::json!({ "id": row.id, "root": row.root, "purged_files": purge_files }),
            };
            Ok::<_, ApiError>(((row, detached), vec![event]))
        })
        .await?;
    if let Some(detached) = detached {
        let root = row.root.clone();
        let purged = tokio::task::spawn_blocking(move || detached.purge())
            .await
            .map_err(|err| ApiError::new(ErrorKind::Internal, "internal", err.to_string()))?;
        if let Err(err) = purged {
            return Err(ApiError {
                message: format!(
                    "project `{}` was deleted, but removing its files failed: {}",
                    row.slug, err.message
                ),
                ..err
            }
            .with_hint(format!(
                "remove the folder next to {root} whose name ends in .deleting-{} by hand",
                row.id
            )));
        }
    }
    tracing::info!(slug = %row.slug, purge_files, "project deleted");
    Ok(protocol::project::Deleted {
        slug: row.slug,
        root: row.root,
        purged_files: purge_files,
    })
}

/// `events.subscribe`: replay from the database, then follow the broadcast channel. The channel
/// is joined before the replay is read, and ids already sent are skipped, so no event is lost or
/// repeated between the two. A subscriber that falls behind the channel re-reads the database.
fn register_events_subscription(module: &mut RpcModule<Daemon>) {
    type Sub = protocol::events::Subscribe;
    let result = module.register_subscription(
        Sub::NAME,
        Sub::NOTIFICATION,
        Sub::UNSUBSCRIBE,
        |params, pending, daemon, _| async move {
            let params = match parse_params::<<Sub as Subscription>::Params>(params.as_str()) {
                Ok(params) => params,
                Err(err) => {
                    pending.reject(err.to_rpc()).await;
                    return Ok(());
                }
            };
            let mut live = daemon.store.subscribe();
            let sink = pending.accept().await?;
            let mut last_sent = 0;
            if let Some(since) = params.since {
                last_sent = replay(&daemon, &sink, since).await?;
            }
            loop {
                let received = tokio::select! {
                    _ = sink.closed() => return Ok(()),
                    received = live.recv() => received,
                    _ = daemon.shutdown.cancelled() => {
                        // Deliver what is already committed (e.g. daemon.stopping), then end.
                        while let Ok(event) = live.try_recv() {
                            if event.id > last_sent {
                                send_event(&sink, &event).await?;
                                last_sent = event.id;
                            }
                        }
                        return Ok(());
                    }
                };
                match received {
                    Ok(event) if event.id > last_sent => {
                        send_event(&sink, &event).await?;
                        last_sent = event.id;
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(_)) => {
                        last_sent = replay(&daemon, &sink, last_sent).await?
                    }
                    Err(RecvError::Closed) => return Ok(()),
                }
            }
        },
    );
    if let Err(err) = result {
        unreachable!("events.subscribe registered twice: {err}");
    }
}

/// Sends every stored event after `since`; returns the id of the last one sent.
async fn replay(
    daemon: &Daemon,
    sink: &jsonrpsee::SubscriptionSink,
    since: u64,
) -> Result<u64, jsonrpsee::core::SubscriptionError> {
    let mut last = since;
    loop {
        let (events, _) = daemon
            .store
            .read(move |conn| store::list_events(conn, last, REPLAY_PAGE))
            .await
            .map_err(|err| err.to_string())?;
        let Some(newest) = events.last().map(|event| event.id) else {
            return Ok(last);
        };
        for event in &events {
            send_event(sink, event).await?;
        }
        last = newest;
    }
}

async fn send_event(
    sink: &jsonrpsee::SubscriptionSink,
    event: &protocol::events::Event,
) -> Result<(), jsonrpsee::core::SubscriptionError> {
    let message = serde_json::value::to_raw_value(event).map_err(|err| err.to_string())?;
    sink.send(message).await.map_err(|err| err.to_string())?;
    Ok(())
}

/// The wire form of a stored project.
fn to_proto(row: &ProjectRow) -> protocol::project::Project {
    protocol::project::Project {
        id: row.id.clone(),
        slug: row.slug.clone(),
        name: row.name.clone(),
        description: row.description.clone(),
        root: row.root.clone(),
        storage: protocol::project::StorageSettings {
            s3: row.s3.as_ref().map(|s3| protocol::project::S3Settings {
                bucket: s3.bucket.clone(),
                prefix: s3.prefix.clone(),
                region: s3.region.clone(),
                endpoint: s3.endpoint.clone(),
            }),
        },
        created_at: row.created_at.clone(),
        updated_at: row.updated_at.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_drop_secret_fields_and_ignore_key_order() {
        let a = params_digest(Some(r#"{"name":"x","value":"s3cret"}"#), &["value"]);
        let b = params_digest(Some(r#"{"name":"x"}"#), &[]);
        assert_eq!(a, b);
        let c = params_digest(Some(r#"{"b":1,"a":2}"#), &[]);
        let d = params_digest(Some(r#"{"a":2,"b":1}"#), &[]);
        assert_eq!(c, d);
        assert_eq!(a.len(), 64);
    }

    #[test]
    fn params_are_named_objects() {
        let none: protocol::NoParams = parse_params(None).unwrap();
        assert_eq!(none, protocol::NoParams {});
        let _: protocol::NoParams = parse_params(Some("[]")).unwrap();
        assert_eq!(
            parse_params::<protocol::project::ProjectRef>(Some(r#"["a"]"#))
                .unwrap_err()
                .code,
            "params_not_object"
        );
        let err = parse_params::<protocol::project::ProjectRef>(Some("{}")).unwrap_err();
        assert!(
            err.message.contains("missing field `slug`"),
            "{}",
            err.message
        );
        let err = parse_params::<protocol::project::ProjectRef>(Some(r#"{"slug":"a","x":1}"#))
            .unwrap_err();
        assert!(err.message.contains("unknown field `x`"), "{}", err.message);
    }
}
