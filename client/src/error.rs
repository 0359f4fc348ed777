//! What can go wrong talking to kromad, in terms a caller can act on.

use std::path::{Path, PathBuf};

use kroma_protocol as protocol;

use crate::transport::TransportError;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing answers at the socket.
    #[error("kromad is not running at {}", socket.display())]
    NotRunning {
        socket: PathBuf,
        source: std::io::Error,
    },
    /// Something is at the socket, but not for this user: talking to it could hand what is sent
    /// (secrets included) to someone else, or the file system does not let this user reach it.
    #[error("{problem}")]
    SocketNotYours {
        socket: PathBuf,
        problem: SocketProblem,
    },
    /// The daemon answered with a JSON-RPC error. A daemon that refuses the whole connection
    /// (too many open) says so with one error line; that error is this case too.
    #[error("{message}")]
    Rpc {
        code: i32,
        message: String,
        /// The structured `data` of a Kroma error; absent only for errors from foreign servers.
        /// Boxed: it is much larger than the other cases.
        data: Option<Box<protocol::ErrorData>>,
    },
    /// The connection ended while a call waited for its answer: kromad stopped or crashed.
    #[error(
        "kromad closed the connection before answering {method} (it may have stopped or crashed)"
    )]
    ClosedBeforeAnswer { socket: PathBuf, method: String },
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

/// Why the socket cannot be used by this user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SocketProblem {
    /// The socket file is another user's.
    #[error("the socket at {} belongs to user {owner}, not you (uid {own})", socket.display())]
    OwnedByOther {
        socket: PathBuf,
        owner: u32,
        own: u32,
    },
    /// The process listening on the socket runs as another user.
    #[error("the socket at {} is served by user {server}, not you (uid {own})", socket.display())]
    ServedByOther {
        socket: PathBuf,
        server: u32,
        own: u32,
    },
    /// The socket's own permissions deny this user (EACCES on connect).
    #[error("permission denied on the socket at {}", socket.display())]
    SocketDenied { socket: PathBuf },
    /// A folder on the way to the socket cannot be entered by this user.
    #[error("permission denied on {}, the folder holding the socket at {}", folder.display(), socket.display())]
    FolderDenied { socket: PathBuf, folder: PathBuf },
}

impl ClientError {
    pub(crate) fn from_jsonrpsee(
        err: jsonrpsee::core::client::Error,
        socket: &Path,
        method: &str,
    ) -> ClientError {
        use jsonrpsee::core::client::Error;
        match err {
            Error::Call(object) => ClientError::Rpc {
                code: object.code(),
                message: object.message().to_owned(),
                data: object
                    .data()
                    .and_then(|data| serde_json::from_str(data.get()).ok())
                    .map(Box::new),
            },
            Error::RequestTimeout => ClientError::Timeout,
            Error::ParseError(err) => ClientError::Decode(err),
            // The connection's background task ended; why it ended is the error worth showing,
            // not jsonrpsee's wrapping of it.
            Error::RestartNeeded(reason) => ClientError::from_ended(&reason, socket, method),
            other => ClientError::from_ended(&other, socket, method),
        }
    }

    /// The error for a call on a connection that ended for `reason`.
    fn from_ended(
        reason: &jsonrpsee::core::client::Error,
        socket: &Path,
        method: &str,
    ) -> ClientError {
        use jsonrpsee::core::client::Error;
        let transport = match reason {
            Error::Transport(err) => err.downcast_ref::<TransportError>(),
            _ => None,
        };
        match transport {
            Some(TransportError::Refused(refusal)) => ClientError::Rpc {
                code: refusal.code,
                message: refusal.message.clone(),
                data: refusal.data.clone().map(Box::new),
            },
            Some(err) if err.is_closed() => ClientError::ClosedBeforeAnswer {
                socket: socket.to_owned(),
                method: method.to_owned(),
            },
            Some(err) => ClientError::Disconnected {
                socket: socket.to_owned(),
                detail: err.to_string(),
            },
            None => ClientError::Disconnected {
                socket: socket.to_owned(),
                detail: reason.to_string(),
            },
        }
    }

    /// What the user should do next, when there is something to do.
    pub fn hint(&self) -> Option<String> {
        match self {
            ClientError::NotRunning { .. } => Some("start it with `kromactl daemon start`".to_owned()),
            ClientError::SocketNotYours { problem, .. } => Some(problem.hint()),
            ClientError::Rpc { data, .. } => data.as_ref().and_then(|data| data.hint.clone()),
            ClientError::ClosedBeforeAnswer { .. } | ClientError::Disconnected { .. } => Some(
                "check `kromactl daemon status` and the kromad log in <data dir>/logs".to_owned(),
            ),
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

    /// The exact condition, for Kroma errors with a code this build knows; a caller that finds
    /// none goes by [`ClientError::kind`].
    pub fn code(&self) -> Option<protocol::ErrorCode> {
        match self {
            ClientError::Rpc { data, .. } => data.as_ref().and_then(|data| data.code()),
            _ => None,
        }
    }

    /// The next step as data, when kromad named one (next to the prose of [`ClientError::hint`]).
    pub fn action(&self) -> Option<&protocol::Action> {
        match self {
            ClientError::Rpc { data, .. } => data.as_ref().and_then(|data| data.action.as_ref()),
            _ => None,
        }
    }
}

impl SocketProblem {
    /// Judges a socket file by its owner: only the user's own socket may be used.
    #[cfg_attr(not(unix), allow(dead_code))]
    pub(crate) fn of_owner(socket: &Path, owner: u32, own: u32) -> Option<SocketProblem> {
        (owner != own).then(|| SocketProblem::OwnedByOther {
            socket: socket.to_owned(),
            owner,
            own,
        })
    }

    fn hint(&self) -> String {
        match self {
            SocketProblem::OwnedByOther { .. } | SocketProblem::ServedByOther { .. } => {
                "send nothing there: another user could read it, secrets included; point --socket \
                 or KROMA_SOCKET at your own daemon, or start one with `kromactl daemon start`"
                    .to_owned()
            }
            SocketProblem::SocketDenied { socket } => format!(
                "kromad makes its socket 0600 for the user who started it: check `ls -l {}`, and \
                 use the socket of your own daemon",
                socket.display()
            ),
            SocketProblem::FolderDenied { folder, .. } => format!(
                "check `ls -ld {}`: the socket belongs in a folder of your own (the default is \
                 under $XDG_RUNTIME_DIR); point --socket or KROMA_SOCKET there",
                folder.display()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kroma_error_gives_its_code_and_action() {
        let rpc = |data: Option<protocol::ErrorData>| ClientError::Rpc {
            code: protocol::ErrorKind::Provider.code(),
            message: "the key of provider `openai` cannot be read".to_owned(),
            data: data.map(Box::new),
        };
        let action = protocol::Action::call::<protocol::secret::Set>(
            [("name", serde_json::json!("openai"))],
            &[],
        );
        let data = protocol::ErrorData::new(
            protocol::ErrorKind::Provider,
            protocol::ErrorCode::NoKey,
            "the key of provider `openai` cannot be read",
        )
        .with_hint("store the key in secret `openai`")
        .with_action(action.clone());
        let err = rpc(Some(data.clone()));
        assert_eq!(err.code(), Some(protocol::ErrorCode::NoKey));
        assert_eq!(err.kind(), Some(protocol::ErrorKind::Provider));
        assert_eq!(err.action(), Some(&action));
        assert_eq!(
            err.hint().as_deref(),
            Some("store the key in secret `openai`")
        );

        // A code from a later kromad: no code, but the kind, hint and action still read.
        let later = protocol::ErrorData {
            code: "added_later".to_owned(),
            ..data
        };
        let err = rpc(Some(later));
        assert_eq!(err.code(), None);
        assert_eq!(err.kind(), Some(protocol::ErrorKind::Provider));
        assert_eq!(err.action(), Some(&action));
        let foreign = rpc(None);
        assert_eq!((foreign.code(), foreign.action()), (None, None));
        assert_eq!(ClientError::Timeout.code(), None);
    }

    #[test]
    fn only_the_users_own_socket_passes() {
        let socket = Path::new("/run/user/1000/kroma/kromad.sock");
        assert_eq!(SocketProblem::of_owner(socket, 1000, 1000), None);
        let problem = SocketProblem::of_owner(socket, 1001, 1000).expect("another user's");
        assert_eq!(
            problem.to_string(),
            "the socket at /run/user/1000/kroma/kromad.sock belongs to user 1001, not you (uid 1000)"
        );
        // Root is no exception: a kromad serves only the user who started it.
        assert!(SocketProblem::of_owner(socket, 1000, 0).is_some());
        assert!(SocketProblem::of_owner(socket, 0, 1000).is_some());
    }
}
