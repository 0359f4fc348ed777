//! jsonrpsee's client over our framing: one JSON text per line on a local socket.

use std::path::Path;

use interprocess::local_socket::tokio::Stream;
use interprocess::local_socket::tokio::prelude::*;
use jsonrpsee::core::client::{ReceivedMessage, TransportReceiverT, TransportSenderT};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, ReadHalf, WriteHalf};

/// The longest line the client accepts from the daemon.
const MAX_FRAME_BYTES: usize = 64 * 1024 * 1024;

pub struct Sender(WriteHalf<Stream>);
pub struct Receiver {
    reader: BufReader<ReadHalf<Stream>>,
    line: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("kromad closed the connection")]
    Closed,
    #[error("kromad sent a frame longer than {MAX_FRAME_BYTES} bytes")]
    TooLong,
}

pub async fn connect(socket: &Path) -> std::io::Result<(Sender, Receiver)> {
    let stream = Stream::connect(name(socket)?).await?;
    check_server_user(&stream)?;
    let (read, write) = tokio::io::split(stream);
    Ok((
        Sender(write),
        Receiver {
            reader: BufReader::with_capacity(64 * 1024, read),
            line: Vec::new(),
        },
    ))
}

/// Refuses a socket served by another user: it could collect everything sent to it, secrets
/// included.
fn check_server_user(stream: &Stream) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let own = nix::unistd::geteuid().as_raw();
        if let Some(server) = stream.peer_creds().ok().and_then(|creds| creds.euid())
            && server != own
        {
            return Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                format!("the socket is served by uid {server}, not by you (uid {own})"),
            ));
        }
    }
    let _ = stream;
    Ok(())
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

impl TransportSenderT for Sender {
    type Error = TransportError;

    async fn send(&mut self, mut msg: String) -> Result<(), TransportError> {
        msg.push('\n');
        self.0.write_all(msg.as_bytes()).await?;
        self.0.flush().await?;
        Ok(())
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
            if !text.is_empty() {
                return Ok(ReceivedMessage::Text(text.to_owned()));
            }
        }
    }
}
