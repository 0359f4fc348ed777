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
    /// `ok`, or the error's `data.code`; for the `mcp.*` entries of `agent.refused`, what
    /// kroma-mcp refused, in words.
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

/// `agent.refused`: kroma-mcp puts on record what it refused before kromad saw it. kromad
/// writes one audit entry for it (method `mcp.host_answer`, `mcp.unknown_tool` or `mcp.http`,
/// outcome the refusal) under the agent's connection, and changes nothing else: the call is not
/// itself audited, its entry is the record.
pub enum Refused {}

impl Method for Refused {
    const NAME: &'static str = "agent.refused";
    const SUMMARY: &'static str = "Put on record what an agent's server refused before it reached \
        kromad: a host's answer that approves nothing, an unknown tool, a refused HTTP request";
    const MUTATING: bool = false;
    const FOR_AGENTS: bool = true;
    type Params = RefusedParams;
    type Output = RefusedAck;
}

/// The most characters of a tool name or instruction id kept in an entry.
pub const MAX_REFUSED_NAME_CHARS: usize = 100;
/// The most refusals one entry stands for.
pub const MAX_REFUSED_COUNT: u32 = 1_000_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RefusedParams {
    pub what: Refusal,
    /// How many refusals of this kind the entry stands for: 1, or more when the server held
    /// some back to keep the log small (1 to 1,000,000).
    #[serde(default = "one")]
    pub count: u32,
}

fn one() -> u32 {
    1
}

/// What kroma-mcp refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Refusal {
    /// An MCP host answered "accept" to the elicitation of a waiting instruction: a host's
    /// answer approves no spending, so the instruction still waits for a person.
    HostAccept {
        instruction: String,
        mode: ElicitationMode,
    },
    /// A call to a tool this server does not offer (made up, or withdrawn by `--read-only` or
    /// `--tools`).
    UnknownTool { name: String },
    /// An HTTP request refused before MCP saw it.
    Http { reason: HttpRefusal },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ElicitationMode {
    /// The plan shown in the host's form.
    Form,
    /// The confirmation page opened by the host.
    Url,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HttpRefusal {
    /// No `Authorization: Bearer` header.
    NoToken,
    /// A bearer token that is not the one kroma-mcp made.
    WrongToken,
    /// An `Origin` header (browsers send one; agent hosts do not).
    ForeignOrigin,
    /// A `Host` that is not the address served.
    ForeignHost,
    /// A body above the bound.
    BodyTooLarge,
}

impl HttpRefusal {
    pub fn as_str(self) -> &'static str {
        match self {
            HttpRefusal::NoToken => "no_token",
            HttpRefusal::WrongToken => "wrong_token",
            HttpRefusal::ForeignOrigin => "foreign_origin",
            HttpRefusal::ForeignHost => "foreign_host",
            HttpRefusal::BodyTooLarge => "body_too_large",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RefusedAck {
    /// The audit entry written.
    pub entry: u64,
}
