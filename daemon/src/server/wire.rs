//! A [`Problem`] on the wire: its JSON-RPC error object (the kind's numeric code, or a reserved
//! one, the message, and `data`) and a whole response line. The only place that maps one.

use jsonrpsee::types::ErrorObjectOwned;
use kroma_protocol::ErrorKind;

use crate::error::Problem;

/// A problem as JSON-RPC.
pub trait ToWire {
    /// The JSON-RPC error object.
    fn to_rpc(&self) -> ErrorObjectOwned;
    /// A complete JSON-RPC response line for `id` (raw JSON, `null` when unknown).
    fn to_response(&self, id: &str) -> String;
}

impl ToWire for Problem {
    /// The JSON-RPC error object: the kind's numeric code, the message, and `data`.
    fn to_rpc(&self) -> ErrorObjectOwned {
        let data = self.to_data();
        ErrorObjectOwned::owned(
            self.rpc_code.unwrap_or(self.kind.code()),
            self.message.clone(),
            Some(data),
        )
    }

    /// The error as a complete JSON-RPC response line for `id` (raw JSON, `null` when unknown).
    fn to_response(&self, id: &str) -> String {
        let error = serde_json::to_string(&self.to_rpc()).unwrap_or_else(|_| {
            format!(
                r#"{{"code":{},"message":"internal error"}}"#,
                ErrorKind::Internal.code()
            )
        });
        format!(r#"{{"jsonrpc":"2.0","error":{error},"id":{id}}}"#)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kroma_protocol::ErrorCode;

    #[test]
    fn response_line_carries_kind_code_and_hint() {
        let err =
            Problem::validation(ErrorCode::InvalidSlug, "slug `A` is invalid").with_hint("use a-z");
        let line: serde_json::Value = serde_json::from_str(&err.to_response("7")).unwrap();
        assert_eq!(
            line,
            serde_json::json!({
                "jsonrpc": "2.0",
                "id": 7,
                "error": {
                    "code": -32602,
                    "message": "slug `A` is invalid",
                    "data": {"kind": "validation", "code": "invalid_slug", "message": "slug `A` is invalid", "hint": "use a-z"}
                }
            })
        );
    }
}
