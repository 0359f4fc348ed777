//! jsonrpsee's client over our framing: one JSON text per line on a local socket. This module is
//! the one that knows the socket: it checks whose it is before anything is sent.

use std::path::Path;

use interprocess::local_socket::tokio::Stream;
use interprocess::local_socket::tokio::prelude::*;
use jsonrpsee::core::client::{ReceivedMessage, TransportReceiverT, TransportSenderT};
use kroma_protocol as protocol;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, ReadHalf, WriteHalf};

use crate::error::SocketProblem;

/// The longest line the client accepts from the daemon.
const MAX_FRAME_BYTES: usize = 64 * 1024 * 1024;

pub struct Sender(WriteHalf<Stream>);
pub struct Receiver {
    reader: BufReader<ReadHalf<Stream>>,
    line: Vec<u8>,
}

/// Why connecting failed.
#[derive(Debug)]
pub enum ConnectError {
    /// Nothing listens there: no socket, a stale one, or a name the OS cannot use.
    NotRunning(std::io::Error),
    /// Something is there, but not for this user.
    NotYours(SocketProblem),
}

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("kromad closed the connection")]
    Closed,
    #[error("kromad sent a frame longer than {MAX_FRAME_BYTES} bytes")]
    TooLong,
    /// The daemon refused the connection itself (an error line with `"id":null`), e.g. because
    /// it already serves as many connections as it allows.
    #[error("{}", .0.message)]
    Refused(Box<Refusal>),
}

/// The error object of a line the daemon sent about the connection rather than about a call.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Refusal {
    pub code: i32,
    pub message: String,
    #[serde(default, deserialize_with = "kroma_error_data")]
    pub data: Option<protocol::ErrorData>,
}

impl TransportError {
    /// Whether the daemon's end of the connection is gone: it stopped, crashed or hung up.
    pub fn is_closed(&self) -> bool {
        match self {
            TransportError::Closed => true,
            TransportError::Io(err) => matches!(
                err.kind(),
                std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::UnexpectedEof
            ),
            TransportError::TooLong | TransportError::Refused(_) => false,
        }
    }
}

pub async fn connect(socket: &Path) -> Result<(Sender, Receiver), ConnectError> {
    check_socket_file(socket)?;
    let name = name(socket).map_err(ConnectError::NotRunning)?;
    let stream = match Stream::connect(name).await {
        Ok(stream) => stream,
        Err(err) if err.kind() == std::io::ErrorKind::PermissionDenied => {
            return Err(ConnectError::NotYours(permission_denied(socket)));
        }
        Err(err) => return Err(ConnectError::NotRunning(err)),
    };
    check_server_user(socket, &stream)?;
    let (read, write) = tokio::io::split(stream);
    Ok((
        Sender(write),
        Receiver {
            reader: BufReader::with_capacity(64 * 1024, read),
            line: Vec::new(),
        },
    ))
}

/// Refuses a socket file that belongs to another user before connecting: whoever listens there
/// could collect everything sent to it, secrets included. A missing file is left to `connect`.
fn check_socket_file(socket: &Path) -> Result<(), ConnectError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match std::fs::metadata(socket) {
            Ok(meta) => {
                let own = nix::unistd::geteuid().as_raw();
                if let Some(problem) = SocketProblem::of_owner(socket, meta.uid(), own) {
                    return Err(ConnectError::NotYours(problem));
                }
            }
            Err(err) if err.kind() == std::io::ErrorKind::PermissionDenied => {
                return Err(ConnectError::NotYours(permission_denied(socket)));
            }
            Err(_) => {}
        }
    }
    let _ = socket;
    Ok(())
}

/// Refuses a socket served by another user, even when the file is ours (it may have been
/// replaced after the check above).
fn check_server_user(socket: &Path, stream: &Stream) -> Result<(), ConnectError> {
    #[cfg(unix)]
    {
        let own = nix::unistd::geteuid().as_raw();
        if let Some(server) = stream.peer_creds().ok().and_then(|creds| creds.euid())
            && server != own
        {
            return Err(ConnectError::NotYours(SocketProblem::ServedByOther {
                socket: socket.to_owned(),
                server,
                own,
            }));
        }
    }
    let _ = (socket, stream);
    Ok(())
}

/// Which path denied access: the first folder on the way that this user cannot enter, else the
/// socket itself.
fn permission_denied(socket: &Path) -> SocketProblem {
    #[cfg(unix)]
    {
        let mut folders: Vec<&Path> = socket.ancestors().skip(1).collect();
        folders.reverse();
        let denied = folders.into_iter().find(|folder| {
            !folder.as_os_str().is_empty()
                && nix::unistd::access(*folder, nix::unistd::AccessFlags::X_OK).is_err()
        });
        if let Some(folder) = denied {
            return SocketProblem::FolderDenied {
                socket: socket.to_owned(),
                folder: folder.to_path_buf(),
            };
        }
    }
    SocketProblem::SocketDenied {
        socket: socket.to_owned(),
    }
}

fn name(path: &Path) -> std::io::Result<interprocess::local_socket::Name<'_>> {
    #[cfg(unix)]
    {
        use interprocess::local_socket::{GenericFilePath, ToFsName};
        path.to_fs_name::<GenericFilePath>()
    }
    #[cfg(windows)]
    {
        use interprocess::local_socket::{GenericNamespaced, ToNsName};
        path.file_name()
            .unwrap_or(path.as_os_str())
            .to_ns_name::<GenericNamespaced>()
    }
}

/// A line about the connection rather than a call: an error whose id is null or absent. kromad
/// sends one when it refuses a connection, then closes it.
fn connection_error(text: &str) -> Option<Refusal> {
    #[derive(serde::Deserialize)]
    struct ErrorLine {
        #[serde(default)]
        id: serde_json::Value,
        error: Refusal,
    }
    if !text.starts_with('{') || !text.contains("\"error\"") {
        return None;
    }
    let line: ErrorLine = serde_json::from_str(text).ok()?;
    line.id.is_null().then_some(line.error)
}

/// `data` as Kroma's [`protocol::ErrorData`]; anything else is dropped rather than failing the
/// whole line.
fn kroma_error_data<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<protocol::ErrorData>, D::Error> {
    let value: serde_json::Value = serde::Deserialize::deserialize(deserializer)?;
    Ok(serde_json::from_value(value).ok())
}

impl TransportSenderT for Sender {
    type Error = TransportError;

    async fn send(&mut self, mut msg: String) -> Result<(), TransportError> {
        msg.push('\n');
        let written = async {
            self.0.write_all(msg.as_bytes()).await?;
            self.0.flush().await
        };
        match written.await {
            Ok(()) => Ok(()),
            // The daemon has closed its end. Why is on the read side (its refusal line, or the
            // end of the stream), which ends the connection with that reason; failing here
            // would race it and hide the daemon's message.
            Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
            Err(err) => Err(err.into()),
        }
    }

    async fn close(&mut self) -> Result<(), TransportError> {
        self.0.shutdown().await?;
        Ok(())
    }
}

impl TransportReceiverT for Receiver {
    type Error = TransportError;

    async fn receive(&mut self) -> Result<ReceivedMessage, TransportError> {
        loop {
            self.line.clear();
            let n = (&mut self.reader)
                .take(MAX_FRAME_BYTES as u64 + 1)
                .read_until(b'\n', &mut self.line)
                .await?;
            if n == 0 {
                return Err(TransportError::Closed);
            }
            if self.line.last() != Some(&b'\n') && self.line.len() > MAX_FRAME_BYTES {
                return Err(TransportError::TooLong);
            }
            let text = String::from_utf8_lossy(&self.line);
            let text = text.trim();
            if let Some(refusal) = connection_error(text) {
                return Err(TransportError::Refused(Box::new(refusal)));
            }
            if !text.is_empty() {
                return Ok(ReceivedMessage::Text(text.to_owned()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_errors_without_an_id_are_about_the_connection() {
        let busy = r#"{"jsonrpc":"2.0","error":{"code":-32003,"message":"kromad already serves 1 connections","data":{"kind":"infra","code":"too_many_connections","message":"kromad already serves 1 connections","hint":"close idle clients or raise limits.max_connections"}},"id":null}"#;
        let refusal = connection_error(busy).expect("a refusal");
        assert_eq!(refusal.message, "kromad already serves 1 connections");
        let data = refusal.data.expect("Kroma error data");
        assert_eq!(data.code, "too_many_connections");
        assert_eq!(
            data.hint.as_deref(),
            Some("close idle clients or raise limits.max_connections")
        );

        let foreign =
            r#"{"jsonrpc":"2.0","error":{"code":-32700,"message":"Parse error","data":[1]}}"#;
        let refusal = connection_error(foreign).expect("an error without id");
        assert!(refusal.data.is_none());

        for not_about_the_connection in [
            r#"{"jsonrpc":"2.0","error":{"code":-32601,"message":"no"},"id":3}"#,
            r#"{"jsonrpc":"2.0","result":{"error":"a field"},"id":null}"#,
            r#"{"jsonrpc":"2.0","method":"events.item","params":{"error":1}}"#,
            r#"[{"jsonrpc":"2.0","error":{"code":1,"message":"x"},"id":null}]"#,
            "",
        ] {
            assert!(
                connection_error(not_about_the_connection).is_none(),
                "{not_about_the_connection}"
            );
        }
    }
}
