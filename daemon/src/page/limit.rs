//! At most [`MAX_CONNECTIONS`] connections to the confirmation pages at once: the listener
//! waits for one to close before it accepts another (later ones wait in the kernel's queue), so
//! a local program opening connections without end cannot exhaust kromad's tasks or files.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Connections served at once; a person needs a handful.
pub const MAX_CONNECTIONS: usize = 64;

/// A TCP listener that holds a permit per open connection.
pub struct Limited {
    inner: TcpListener,
    permits: Arc<Semaphore>,
}

impl Limited {
    pub fn new(inner: TcpListener, max: usize) -> Limited {
        Limited {
            inner,
            permits: Arc::new(Semaphore::new(max)),
        }
    }
}

/// A connection and its permit, given back when the connection is dropped.
pub struct Permitted {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
}

impl axum::serve::Listener for Limited {
    type Io = Permitted;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Permitted, std::net::SocketAddr) {
        loop {
            // The semaphore is never closed.
            let Ok(permit) = self.permits.clone().acquire_owned().await else {
                continue;
            };
            match self.inner.accept().await {
                Ok((stream, addr)) => {
                    return (
                        Permitted {
                            stream,
                            _permit: permit,
                        },
                        addr,
                    );
                }
                Err(err) => {
                    // Out of files, or a connection reset before it was taken: wait, then go on.
                    tracing::warn!(%err, "the confirmation page could not accept a connection");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.inner.local_addr()
    }
}

impl AsyncRead for Permitted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Permitted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::serve::Listener as _;
    use futures::FutureExt as _;

    #[tokio::test]
    async fn a_connection_past_the_limit_waits_until_one_closes() {
        let inner = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = inner.local_addr().unwrap();
        let mut listener = Limited::new(inner, 1);
        let _first_client = TcpStream::connect(addr).await.unwrap();
        let (first, _) = listener.accept().await;
        let _second_client = TcpStream::connect(addr).await.unwrap();
        assert!(
            listener.accept().now_or_never().is_none(),
            "no permit is left while the first connection is open"
        );
        drop(first);
        let (second, _) = listener.accept().await;
        drop(second);
    }
}
