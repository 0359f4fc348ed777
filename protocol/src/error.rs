//! Error kinds and the `data` object every Kroma error carries.
//!
//! A JSON-RPC error from kromad always has a stable numeric `code` (one per kind, listed in
//! [`ErrorKind::code`]) and `data: {kind, code, message, hint}`, where `data.code` is a stable
//! snake_case name of the exact condition (`project_not_found`) that scripts can branch on.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// JSON-RPC 2.0 reserved codes used by the transport.
pub const PARSE_ERROR: i32 = -32700;
pub const INVALID_REQUEST: i32 = -32600;
pub const METHOD_NOT_FOUND: i32 = -32601;

/// What went wrong, in the terms a caller branches on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The request itself is wrong: fix the input.
    Validation,
    /// A named thing does not exist.
    NotFound,
    /// The request clashes with existing state (a taken slug, a second daemon).
    Conflict,
    /// A rule forbids it: spend, budget, a missing confirmation, another user.
    Policy,
    /// A remote API failed.
    Provider,
    /// The machine failed: disk, database, a timeout, too many connections.
    Infra,
    /// A bug in kromad.
    Internal,
}

impl ErrorKind {
    /// The JSON-RPC error code of this kind. Stable: clients may match on it.
    pub const fn code(self) -> i32 {
        match self {
            ErrorKind::Validation => -32602,
            ErrorKind::NotFound => -32001,
            ErrorKind::Conflict => -32002,
            ErrorKind::Policy => -32003,
            ErrorKind::Provider => -32004,
            ErrorKind::Infra => -32005,
            ErrorKind::Internal => -32603,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Validation => "validation",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Policy => "policy",
            ErrorKind::Provider => "provider",
            ErrorKind::Infra => "infra",
            ErrorKind::Internal => "internal",
        }
    }

    pub const ALL: [ErrorKind; 7] = [
        ErrorKind::Validation,
        ErrorKind::NotFound,
        ErrorKind::Conflict,
        ErrorKind::Policy,
        ErrorKind::Provider,
        ErrorKind::Infra,
        ErrorKind::Internal,
    ];
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `data` member of every Kroma JSON-RPC error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ErrorData {
    pub kind: ErrorKind,
    /// Stable snake_case name of the exact condition, e.g. `project_not_found`.
    pub code: String,
    pub message: String,
    /// What to do next, when there is something to do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_own_code() {
        let mut codes: Vec<i32> = ErrorKind::ALL.iter().map(|kind| kind.code()).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), ErrorKind::ALL.len());
        for kind in ErrorKind::ALL {
            let json = serde_json::to_value(kind).unwrap();
            assert_eq!(json, kind.as_str());
        }
    }
}
