//! `daemon.*` handlers that need more than a line.

use std::sync::Arc;

use kroma_protocol as protocol;

use crate::Daemon;
use crate::error::Problem;
use crate::store;

pub async fn status(
    daemon: Arc<Daemon>,
    _: protocol::NoParams,
) -> Result<protocol::daemon::DaemonStatus, Problem> {
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
        secret_store: daemon.secrets.get().await.status(),
        counts: protocol::daemon::DaemonCounts {
            projects,
            events,
            audit_events,
            connections: open as u64,
        },
        service: daemon.config.service.clone(),
    })
}

/// The name of the throwaway secret `daemon.check` writes and deletes.
const PROBE_SECRET: &str = "kroma-doctor-probe";

pub async fn check(
    daemon: Arc<Daemon>,
    _: protocol::NoParams,
) -> Result<protocol::daemon::Health, Problem> {
    let database_integrity = daemon.store.read(store::integrity_check).await?;
    let secret_store = daemon.secrets.get().await.status();
    let secret_round_trip = if secret_store.available {
        let secrets = daemon.secrets.get().await;
        let outcome = tokio::task::spawn_blocking(move || {
            let probe = format!("probe-{}", uuid::Uuid::new_v4());
            secrets
                .set(PROBE_SECRET, &probe)
                .map_err(|err| err.to_string())?;
            let read = secrets.get(PROBE_SECRET).map_err(|err| err.to_string());
            let deleted = secrets.delete(PROBE_SECRET).map_err(|err| err.to_string());
            let (value, _) = read?;
            deleted?;
            if secrecy::ExposeSecret::expose_secret(&value) == probe {
                Ok(())
            } else {
                Err("the value read back differs from the value written".to_owned())
            }
        })
        .await
        .map_err(|err| Problem::from(crate::store::StoreError::Task(err.to_string())))?;
        Some(outcome)
    } else {
        None
    };
    Ok(protocol::daemon::Health {
        schema_version: store::Store::schema_version(),
        database_integrity,
        secret_store,
        secret_round_trip,
        data_dir: daemon.config.data_dir.display().to_string(),
        data_dir_free_bytes: free_bytes(&daemon.config.data_dir),
    })
}

fn free_bytes(path: &std::path::Path) -> Option<u64> {
    #[cfg(unix)]
    {
        let stats = nix::sys::statvfs::statvfs(path).ok()?;
        Some(stats.blocks_available() as u64 * stats.fragment_size() as u64)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}
