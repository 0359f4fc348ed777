//! The socket side of the daemon: accepting connections, checking who is calling, reading
//! newline-delimited frames, and writing replies and subscription notifications back.
//!
//! Each connection has a reader loop (this task), one task per in-flight frame, one forwarder per
//! open subscription and one writer task; all of them are tracked, so shutdown can wait for them.

pub mod dispatch;
pub mod socket;
pub mod wire;

use std::sync::Arc;

use interprocess::local_socket::tokio::Stream;
use interprocess::local_socket::tokio::prelude::*;
use jsonrpsee::Methods;
use kroma_protocol as protocol;
use protocol::{ErrorCode, ErrorKind};
use tokio::io::{
    AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, BufWriter, ReadHalf, WriteHalf,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Limits;
use crate::error::Problem;
use crate::server::wire::ToWire;
use socket::Listener;

/// Who is on the other end of a connection. Handlers read it from the request extensions.
#[derive(Debug, Clone)]
pub struct Peer {
    pub uid: Option<u32>,
    pub pid: Option<u32>,
    /// The calling program's name, where the OS tells it.
    pub client: String,
    /// The name the connection declared with `agent.hello`; once set, the connection may call
    /// only the methods open to agents, for the rest of its life.
    pub agent: Arc<std::sync::OnceLock<String>>,
}

/// Accepts connections until `shutdown` is cancelled. Connection tasks are spawned on `tracker`.
pub async fn accept_loop(
    listener: &Listener,
    methods: Methods,
    limits: Limits,
    connections: Arc<Semaphore>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let own_uid = own_uid();
    loop {
        let stream = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.inner.accept() => match accepted {
                Ok(stream) => stream,
                Err(err) => {
                    // Usually out of file descriptors: back off instead of spinning.
                    tracing::warn!(%err, "accepting a connection failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let peer = peer_of(&stream);
        if own_uid.is_some() && peer.uid != own_uid {
            tracing::warn!(peer_uid = ?peer.uid, pid = ?peer.pid, "refused a connection from another user");
            let err = Problem::new(
                ErrorKind::Policy,
                ErrorCode::PermissionDenied,
                "this kromad serves only the user who started it",
            )
            .with_hint("start a kromad of your own")
            .with_action(protocol::Action::StartDaemon);
            tracker.spawn(refuse(stream, err));
            continue;
        }
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            tracing::warn!(
                max = limits.max_connections,
                "refused a connection: too many open"
            );
            let err = Problem::new(
                ErrorKind::Infra,
                ErrorCode::TooManyConnections,
                format!(
                    "kromad already serves {} connections",
                    limits.max_connections
                ),
            )
            .with_hint("close idle clients or raise limits.max_connections");
            tracker.spawn(refuse(stream, err));
            continue;
        };
        let mut methods = methods.clone();
        methods.extensions_mut().insert(peer);
        let limits = limits.clone();
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            serve_connection(stream, methods, limits, shutdown).await;
            drop(permit);
        });
    }
}

/// Writes one error line to a connection that will not be served, then closes it.
async fn refuse(stream: Stream, err: Problem) {
    let mut send = stream;
    let line = format!("{}\n", err.to_response("null"));
    let write = async {
        send.write_all(line.as_bytes()).await?;
        send.flush().await
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), write).await;
}

/// A line for the writer task, holding its share of the connection's reply budget until written.
struct Outgoing {
    line: String,
    _budget: Option<OwnedSemaphorePermit>,
}

impl Outgoing {
    fn unbudgeted(line: String) -> Outgoing {
        Outgoing {
            line,
            _budget: None,
        }
    }
}

/// A byte budget as a semaphore of KiB permits.
fn kib_budget(bytes: usize) -> Arc<Semaphore> {
    Arc::new(Semaphore::new(bytes.div_ceil(1024).max(1)))
}

/// Takes `bytes` (at most the whole budget) from `budget`, waiting until that much is free.
async fn take_budget(
    budget: &Arc<Semaphore>,
    bytes: usize,
    whole: usize,
) -> Option<OwnedSemaphorePermit> {
    let kib = bytes.min(whole).div_ceil(1024).max(1);
    budget
        .clone()
        .acquire_many_owned(u32::try_from(kib).unwrap_or(u32::MAX))
        .await
        .ok()
}

/// The write half of a connection, buffered.
type Writer = BufWriter<WriteHalf<Stream>>;

/// What the reader loop, the frame tasks and the forwarders of one connection share.
struct Connection {
    methods: Methods,
    /// The methods' extensions (the caller's `Peer`), handed to each call.
    extensions: jsonrpsee::Extensions,
    /// Lines for the writer task.
    out_tx: mpsc::Sender<Outgoing>,
    /// Taken by the writer task for each batch, or by the reader loop to write a quick answer
    /// itself when no one else is writing.
    writer: Arc<tokio::sync::Mutex<Writer>>,
    /// Frame tasks and forwarders.
    tasks: TaskTracker,
    /// Cancelled when the client goes away: its subscriptions end, its unbounded calls stop.
    disconnected: CancellationToken,
    subscriptions: Arc<Semaphore>,
    owned: Arc<dispatch::Owned>,
    reply_budget: Arc<Semaphore>,
    limits: Limits,
}

async fn serve_connection(
    stream: Stream,
    methods: Methods,
    limits: Limits,
    shutdown: CancellationToken,
) {
    let (recv, send) = tokio::io::split(stream);
    let (out_tx, out_rx) = mpsc::channel::<Outgoing>(256);
    let writer = Arc::new(tokio::sync::Mutex::new(BufWriter::with_capacity(
        64 * 1024,
        send,
    )));
    let writer_task = tokio::spawn(write_loop(writer.clone(), out_rx));
    let in_flight = Arc::new(Semaphore::new(limits.max_in_flight_per_connection));
    // Memory a connection can make kromad hold: frames read but not answered, answers not yet
    // written, and open subscriptions, each bounded on its own.
    let request_budget = kib_budget(limits.max_in_flight_bytes);
    let mut methods = methods;
    let extensions = methods.extensions().clone();
    let connection = Arc::new(Connection {
        methods,
        extensions,
        out_tx,
        writer,
        tasks: TaskTracker::new(),
        disconnected: CancellationToken::new(),
        subscriptions: Arc::new(Semaphore::new(limits.max_subscriptions_per_connection)),
        owned: Arc::default(),
        reply_budget: kib_budget(limits.max_reply_bytes),
        limits,
    });
    let limits = &connection.limits;
    let mut reader = BufReader::with_capacity(64 * 1024, recv);
    let mut frame = Vec::new();
    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            permit = in_flight.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let read = tokio::select! {
            _ = shutdown.cancelled() => break,
            read = read_frame(&mut reader, &mut frame, limits.max_frame_bytes, limits.frame_timeout) => read,
        };
        let closing = match read {
            Ok(Frame::Line) => None,
            Ok(Frame::End) | Err(_) => break,
            Ok(Frame::TooLong) => Some(
                dispatch::invalid_request(&format!(
                    "frame longer than {} bytes; closing the connection",
                    limits.max_frame_bytes
                ))
                .with_hint("split the work into smaller requests"),
            ),
            Ok(Frame::Stalled) => Some(
                dispatch::invalid_request(&format!(
                    "a frame was started but not finished within {} s; closing the connection",
                    limits.frame_timeout.as_secs_f64()
                ))
                .with_hint("send each request as one complete line, ending with a newline"),
            ),
        };
        if let Some(err) = closing {
            let _ = connection
                .out_tx
                .send(Outgoing::unbudgeted(err.to_response("null")))
                .await;
            break;
        }
        if frame.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let bytes = std::mem::take(&mut frame);
        let request_share = tokio::select! {
            _ = shutdown.cancelled() => break,
            share = take_budget(&request_budget, bytes.len(), limits.max_in_flight_bytes) => share,
        };
        let shared = connection.clone();
        let mut call = Box::pin(async move {
            let reply = {
                let bounds = dispatch::Bounds {
                    timeout: shared.limits.request_timeout,
                    caller_left: &shared.disconnected,
                    subscriptions: &shared.subscriptions,
                    owned: &shared.owned,
                    max_reply_bytes: shared.limits.max_reply_bytes,
                    extensions: &shared.extensions,
                };
                dispatch::handle_frame(&shared.methods, &bytes, bounds).await
            };
            drop(bytes);
            drop(request_share);
            (reply, shared)
        });
        // Most calls finish at their first poll: answered right here, written by this loop when
        // no one else is writing, a call costs no task and no hop to the writer (a client that
        // sends one call at a time waits for two hops less). A call that has to wait goes on in
        // a task of its own, and the next frame is read meanwhile.
        match futures::poll!(call.as_mut()) {
            std::task::Poll::Ready((reply, shared)) => {
                // An answer that is ready goes out even while kromad stops (`daemon.shutdown`'s
                // own answer is one); a caller that stopped reading is cut off by `run`'s grace.
                deliver(reply, &shared, true).await;
                drop(permit);
            }
            std::task::Poll::Pending => {
                connection.tasks.spawn(async move {
                    let (reply, shared) = call.await;
                    deliver(reply, &shared, false).await;
                    drop(permit);
                });
            }
        }
    }
    if !shutdown.is_cancelled() {
        connection.disconnected.cancel();
    }
    connection.tasks.close();
    connection.tasks.wait().await;
    // The writer ends once every sender is gone: ours now, the tasks' with them.
    drop(connection);
    let _ = writer_task.await;
}

/// Sends a frame's answer and starts the forwarders of the subscriptions it opened. With
/// `inline`, the answer is written straight away when no one else holds the writer.
async fn deliver(reply: dispatch::Reply, connection: &Connection, inline: bool) {
    if let Some(response) = reply.response {
        let mut sent = false;
        if inline && let Ok(mut writer) = connection.writer.try_lock() {
            // A broken connection is noticed by the reader; nothing more to do here.
            if write_line(&mut writer, &response).await.is_ok() {
                let _ = writer.flush().await;
            }
            sent = true;
        }
        if !sent {
            let limit = connection.limits.max_reply_bytes;
            let share = take_budget(&connection.reply_budget, response.len(), limit).await;
            let _ = connection
                .out_tx
                .send(Outgoing {
                    line: response,
                    _budget: share,
                })
                .await;
        }
    }
    for subscription in reply.subscriptions {
        connection.tasks.spawn(forward(
            subscription,
            connection.out_tx.clone(),
            connection.disconnected.clone(),
            connection.owned.clone(),
        ));
    }
}

/// Moves a subscription's notifications onto the connection until it ends or the client leaves;
/// the subscription's permit is returned when it ends.
async fn forward(
    subscription: dispatch::OpenSubscription,
    out_tx: mpsc::Sender<Outgoing>,
    disconnected: CancellationToken,
    owned: Arc<dispatch::Owned>,
) {
    let dispatch::OpenSubscription {
        id,
        mut notifications,
        permit,
    } = subscription;
    loop {
        let notification = tokio::select! {
            _ = disconnected.cancelled() => break,
            notification = notifications.recv() => notification,
        };
        let Some(notification) = notification else {
            break;
        };
        if out_tx
            .send(Outgoing::unbudgeted(notification.get().to_owned()))
            .await
            .is_err()
        {
            break;
        }
    }
    dispatch::lock_owned(&owned).remove(&id);
    drop(permit);
}

async fn write_loop(writer: Arc<tokio::sync::Mutex<Writer>>, mut lines: mpsc::Receiver<Outgoing>) {
    while let Some(outgoing) = lines.recv().await {
        let mut writer = writer.lock().await;
        if write_line(&mut writer, &outgoing.line).await.is_err() {
            return;
        }
        drop(outgoing);
        // Write whatever else is ready before paying for one flush.
        while let Ok(outgoing) = lines.try_recv() {
            if write_line(&mut writer, &outgoing.line).await.is_err() {
                return;
            }
        }
        if writer.flush().await.is_err() {
            return;
        }
    }
}

async fn write_line(writer: &mut Writer, line: &str) -> std::io::Result<()> {
    writer.write_all(line.as_bytes()).await?;
    writer.write_all(b"\n").await
}

enum Frame {
    /// A complete frame is in the buffer, without its line ending.
    Line,
    /// The client closed the connection.
    End,
    /// The frame exceeds the limit; the connection cannot be resynchronised.
    TooLong,
    /// The frame was started but not finished in time.
    Stalled,
}

/// Reads one newline-terminated frame of at most `max` bytes into `frame`. Waiting for a frame to
/// start takes as long as the client likes; once its first byte is here, the rest must follow
/// within `timeout`, so half-sent frames cannot hold connection slots forever.
async fn read_frame(
    reader: &mut BufReader<ReadHalf<Stream>>,
    frame: &mut Vec<u8>,
    max: usize,
    timeout: std::time::Duration,
) -> std::io::Result<Frame> {
    frame.clear();
    if reader.fill_buf().await?.is_empty() {
        return Ok(Frame::End);
    }
    let limit = max as u64 + 1;
    let mut limited = (&mut *reader).take(limit);
    let read = tokio::time::timeout(timeout, limited.read_until(b'\n', frame));
    let n = match read.await {
        Ok(read) => read?,
        Err(_elapsed) => return Ok(Frame::Stalled),
    };
    if n == 0 {
        return Ok(Frame::End);
    }
    if frame.last() == Some(&b'\n') {
        frame.pop();
        if frame.last() == Some(&b'\r') {
            frame.pop();
        }
        return Ok(Frame::Line);
    }
    if frame.len() > max {
        return Ok(Frame::TooLong);
    }
    // The last frame of a client that closed without a final newline.
    Ok(Frame::Line)
}

fn peer_of(stream: &Stream) -> Peer {
    let creds = stream.peer_creds().ok();
    let uid = creds.as_ref().and_then(|creds| creds.euid());
    let pid = creds
        .as_ref()
        .and_then(|creds| creds.pid())
        .and_then(|pid| u32::try_from(pid).ok());
    Peer {
        uid,
        pid,
        client: pid
            .and_then(process_name)
            .unwrap_or_else(|| "unknown".to_owned()),
        agent: Arc::default(),
    }
}

/// The short name of a process, from `/proc` where there is one.
fn process_name(pid: u32) -> Option<String> {
    let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    let name = name.trim();
    (!name.is_empty()).then(|| name.to_owned())
}

fn own_uid() -> Option<u32> {
    #[cfg(unix)]
    {
        Some(nix::unistd::geteuid().as_raw())
    }
    #[cfg(not(unix))]
    {
        None
    }
}
