//! `ApiError`, the error every handler returns, and its one mapping onto a JSON-RPC error object.

use jsonrpsee::types::ErrorObjectOwned;
use kroma_protocol as protocol;
use protocol::ErrorKind;

use crate::store::StoreError;

/// A failed call, as the client will see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub kind: ErrorKind,
    /// Stable snake_case name of the condition.
    pub code: &'static str,
    pub message: String,
    pub hint: Option<String>,
    /// Replaces the kind's numeric code; only for the JSON-RPC reserved codes (parse error,
    /// invalid request, method not found) that generic clients recognise.
    pub rpc_code: Option<i32>,
}

impl ApiError {
    pub fn new(kind: ErrorKind, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            kind,
            code,
            message: message.into(),
            hint: None,
            rpc_code: None,
        }
    }

    pub fn validation(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::Validation, code, message)
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> ApiError {
        self.hint = Some(hint.into());
        self
    }

    pub fn with_rpc_code(mut self, code: i32) -> ApiError {
        self.rpc_code = Some(code);
        self
    }

    /// The `data` member alone, for per-item results such as one file of an import.
    pub fn to_data(&self) -> protocol::ErrorData {
        protocol::ErrorData {
            kind: self.kind,
            code: self.code.to_owned(),
            message: self.message.clone(),
            hint: self.hint.clone(),
            action: None,
        }
    }

    /// The JSON-RPC error object: the kind's numeric code, the message, and `data`.
    pub fn to_rpc(&self) -> ErrorObjectOwned {
        let data = self.to_data();
        ErrorObjectOwned::owned(
            self.rpc_code.unwrap_or(self.kind.code()),
            self.message.clone(),
            Some(data),
        )
    }

    /// The error as a complete JSON-RPC response line for `id` (raw JSON, `null` when unknown).
    pub fn to_response(&self, id: &str) -> String {
        let error = serde_json::to_string(&self.to_rpc()).unwrap_or_else(|_| {
            format!(
                r#"{{"code":{},"message":"internal error"}}"#,
                ErrorKind::Internal.code()
            )
        });
        format!(r#"{{"jsonrpc":"2.0","error":{error},"id":{id}}}"#)
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> ApiError {
        match &err {
            StoreError::ProjectNotFound(slug) => ApiError::new(
                ErrorKind::NotFound,
                "project_not_found",
                format!("project `{slug}` not found"),
            )
            .with_hint("`kromactl project list` shows the projects that exist"),
            StoreError::SlugTaken(slug) => ApiError::new(
                ErrorKind::Conflict,
                "slug_taken",
                format!("a project with slug `{slug}` already exists"),
            )
            .with_hint("pick another name or pass a different --slug"),
            StoreError::AssetNotFound(id) => ApiError::new(
                ErrorKind::NotFound,
                "asset_not_found",
                format!("asset `{id}` not found in this project"),
            )
            .with_hint("`kromactl asset list PROJECT` shows the project's assets"),
            StoreError::LinkExists => ApiError::new(
                ErrorKind::Conflict,
                "link_exists",
                "these assets are already linked this way",
            ),
            StoreError::EntityNotFound { what, key } => ApiError::new(
                ErrorKind::NotFound,
                "not_found",
                format!("{what} `{key}` not found in this project"),
            )
            .with_hint(
                "list them with kromactl (style, character, refset or template list PROJECT)",
            ),
            StoreError::NameTaken { what, name } => ApiError::new(
                ErrorKind::Conflict,
                "name_taken",
                format!("a {what} named `{name}` already exists in this project"),
            )
            .with_hint("names are unique per project, ignoring case; pick another"),
            StoreError::NewerSchema { .. } => {
                ApiError::new(ErrorKind::Infra, "newer_schema", err.to_string())
                    .with_hint("upgrade kromad to the version that wrote this database")
            }
            StoreError::Open { .. }
            | StoreError::Migrate { .. }
            | StoreError::Sqlite(_)
            | StoreError::Corrupt(_)
            | StoreError::Task(_) => {
                ApiError::new(ErrorKind::Infra, "database_error", err.to_string())
                    .with_hint("check the disk and the kromad log; the request was not applied")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_line_carries_kind_code_and_hint() {
        let err = ApiError::validation("bad_slug", "slug `A` is invalid").with_hint("use a-z");
        let line: serde_json::Value = serde_json::from_str(&err.to_response("7")).unwrap();
        assert_eq!(
            line,
            serde_json::json!({
                "jsonrpc": "2.0",
                "id": 7,
                "error": {
                    "code": -32602,
                    "message": "slug `A` is invalid",
                    "data": {"kind": "validation", "code": "bad_slug", "message": "slug `A` is invalid", "hint": "use a-z"}
                }
            })
        );
    }
}
