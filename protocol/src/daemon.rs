//! `daemon.*`: the daemon itself.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{Method, NoParams};

/// `daemon.version`: the versions of the daemon and of this contract.
pub enum Version {}

impl Method for Version {
    const NAME: &'static str = "daemon.version";
    const SUMMARY: &'static str = "Report the daemon version and the protocol version";
    const MUTATING: bool = false;
    const FOR_AGENTS: bool = true;
    type Params = NoParams;
    type Output = VersionInfo;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct VersionInfo {
    /// The kromad package version.
    pub version: String,
    /// [`crate::PROTOCOL_VERSION`] as the daemon knows it.
    pub protocol_version: u32,
}

/// `daemon.status`: what the daemon is and holds.
pub enum Status {}

impl Method for Status {
    const NAME: &'static str = "daemon.status";
    const SUMMARY: &'static str = "Report pid, uptime, socket, data dir, schema version and counts";
    const MUTATING: bool = false;
    const FOR_AGENTS: bool = true;
    type Params = NoParams;
    type Output = DaemonStatus;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DaemonStatus {
    pub version: String,
    pub protocol_version: u32,
    pub pid: u32,
    pub uptime_secs: u64,
    /// The local socket the daemon listens on.
    pub socket: String,
    pub data_dir: String,
    /// The SQLite schema version (the number of applied migrations).
    pub schema_version: u32,
    /// The active secret store and whether it answers.
    pub secret_store: crate::secret::StoreStatus,
    pub counts: DaemonCounts,
    /// Whether a service manager started kromad, and how.
    #[serde(default)]
    pub service: Supervision,
}

/// How kromad was started: by a service manager (a systemd user unit, a launchd job) or by hand
/// (`kromactl daemon start`, a terminal).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Supervision {
    /// The service manager kromad runs under; `None`: started by hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manager: Option<ServiceManager>,
    /// The systemd unit or launchd job label, where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Whether the service manager handed kromad its listening socket (socket activation).
    #[serde(default)]
    pub socket_activated: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ServiceManager {
    Systemd,
    Launchd,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DaemonCounts {
    pub projects: u64,
    pub events: u64,
    pub audit_events: u64,
    /// Client connections open right now, this one included.
    pub connections: u64,
}

/// `daemon.shutdown`: stop accepting, finish in-flight calls, exit.
pub enum Shutdown {}

impl Method for Shutdown {
    const NAME: &'static str = "daemon.shutdown";
    const SUMMARY: &'static str = "Stop the daemon after in-flight calls finish";
    const MUTATING: bool = true;
    type Params = NoParams;
    type Output = ShutdownAck;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ShutdownAck {
    /// The pid of the daemon that is stopping, so a caller can wait for it to exit.
    pub pid: u32,
}

/// `daemon.check`: the daemon's own health, for `kromactl doctor`.
pub enum Check {}

impl Method for Check {
    const NAME: &'static str = "daemon.check";
    const SUMMARY: &'static str =
        "Check the database integrity, the secret store (a real round trip) and free disk space";
    const MUTATING: bool = false;
    type Params = NoParams;
    type Output = Health;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Health {
    pub schema_version: u32,
    /// `ok`, or what SQLite's integrity check found.
    pub database_integrity: String,
    pub secret_store: crate::secret::StoreStatus,
    /// Whether a probe value could be written, read back and deleted; `None` when the store is
    /// unavailable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_round_trip: Option<Result<(), String>>,
    pub data_dir: String,
    /// Free bytes on the file system of the data dir, where the OS tells it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_dir_free_bytes: Option<u64>,
}
