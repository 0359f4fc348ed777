//! `daemon.*` handlers that need more than a line.

use std::sync::Arc;

use kroma_protocol as protocol;

use crate::Daemon;
use crate::error::ApiError;
use crate::store;

pub async fn status(
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
        secret_store: daemon.secrets.status(),
        counts: protocol::daemon::DaemonCounts {
            projects,
            events,
            audit_events,
            connections: open as u64,
        },
    })
}
