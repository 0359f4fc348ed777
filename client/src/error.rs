//! What can go wrong talking to kromad, in terms a caller can act on.

use std::path::PathBuf;

use kroma_protocol as protocol;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing answers at the socket.
    #[error("kromad is not running at {}", socket.display())]
    NotRunning {
        socket: PathBuf,
        source: std::io::Error,
    },
    /// The daemon answered with a JSON-RPC error.
    #[error("{message}")]
    Rpc {
        code: i32,
        message: String,
        /// The structured `data` of a Kroma error; absent only for errors from foreign servers.
        data: Option<protocol::ErrorData>,
    },
    /// The connection broke or the daemon stopped answering.
    #[error("lost the connection to kromad at {}: {detail}", socket.display())]
    Disconnected { socket: PathBuf, detail: String },
    #[error("kromad did not answer within the request timeout")]
    Timeout,
    #[error("encoding the request: {0}")]
    Encode(serde_json::Error),
    #[error("decoding the daemon's answer: {0}")]
    Decode(serde_json::Error),
}

impl ClientError {
    pub(crate) fn from_jsonrpsee(
        err: jsonrpsee::core::client::Error,
        socket: &std::path::Path,
    ) -> ClientError {
        use jsonrpsee::core::client::Error;
        match err {
            Error::Call(object) => ClientError::Rpc {
                code: object.code(),
                message: object.message().to_owned(),
                data: object
                    .data()
                    .and_then(|data| serde_json::from_str(data.get()).ok()),
            },
            Error::RequestTimeout => ClientError::Timeout,
            Error::ParseError(err) => ClientError::Decode(err),
            other => ClientError::Disconnected {
                socket: socket.to_owned(),
                detail: other.to_string(),
            },
        }
    }

    /// What the user should do next, when there is something to do.
    pub fn hint(&self) -> Option<String> {
        match self {
            ClientError::NotRunning { .. } => Some("start it with `kromactl daemon start`".to_owned()),
            ClientError::Rpc { data, .. } => data.as_ref().and_then(|data| data.hint.clone()),
            ClientError::Disconnected { .. } => {
                Some("check `kromactl daemon status` and the kromad log".to_owned())
            }
            ClientError::Timeout => Some("the daemon may be overloaded; retry".to_owned()),
            ClientError::Encode(_) | ClientError::Decode(_) => {
                Some("kromactl and kromad may be different versions; compare `kromactl --version` with `kromactl daemon status`".to_owned())
            }
        }
    }

    /// The error kind, for Kroma errors.
    pub fn kind(&self) -> Option<protocol::ErrorKind> {
        match self {
            ClientError::Rpc { data, .. } => data.as_ref().map(|data| data.kind),
            _ => None,
        }
    }
}
