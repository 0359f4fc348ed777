//! `audit.*`: who changed what, through which client, and how it ended.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Method;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AuditEntry {
    pub id: u64,
    /// RFC 3339 UTC.
    pub at: String,
    /// The uid of the calling process, where the OS tells it.
    pub peer_uid: Option<u32>,
    /// The calling program's name (e.g. `kromactl`), where the OS tells it.
    pub client: String,
    pub method: String,
    /// SHA-256 (hex) of the params with secret fields removed.
    pub params_digest: String,
    /// `ok`, or the error's `data.code`.
    pub outcome: String,
}

/// `audit.list`.
pub enum List {}

impl Method for List {
    const NAME: &'static str = "audit.list";
    const SUMMARY: &'static str =
        "List audit entries of mutating calls after `since`, oldest first";
    const MUTATING: bool = false;
    type Params = ListParams;
    type Output = AuditPage;
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Return entries with ids above this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<u64>,
    /// At most this many entries (default 100, at most 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
}
