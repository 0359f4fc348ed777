//! A real S3-compatible server on 127.0.0.1, for tests, benchmarks and demos: s3s-fs serving a
//! folder (bucket `b` is the folder `<root>/b`, key `k/x.png` the file `<root>/b/k/x.png`), with
//! SigV4 checked against one access key and secret. Path-style requests only
//! (`http://127.0.0.1:PORT/bucket/key`): clients must set `force_path_style`.
//!
//! Around s3s sits a thin layer that tests steer and read:
//! - [`S3Server::count`] and [`S3Server::parts_uploaded`] say what arrived;
//! - [`S3Server::deny`] refuses every request on one object with 403 `AccessDenied`;
//! - [`S3Server::hold_parts_after`], [`S3Server::wait_until_held`] and [`S3Server::release`] stop
//!   a multipart upload midway, for tests that interrupt and resume one.
//!
//! ```no_run
//! # async fn example(root: &std::path::Path) -> std::io::Result<()> {
//! use kroma_s3_server::{Request, S3Server};
//! let server = S3Server::start(root, "test-access-key", "test-secret-key").await?;
//! // Point an S3 client at server.endpoint() with force_path_style(true)...
//! assert_eq!(server.count(Request::PutObject), 0);
//! # Ok(())
//! # }
//! ```

mod classify;

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Method, StatusCode, header};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnectionBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::{S3Service, S3ServiceBuilder};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::{JoinHandle, JoinSet};

/// The body of the 403 that [`S3Server::deny`] answers, shaped like the one S3 sends.
const ACCESS_DENIED_XML: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
    <Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>";

/// A running S3 server. Dropping it stops the accept loop and closes the open connections.
pub struct S3Server {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept_loop: JoinHandle<()>,
}

/// The kinds of request [`S3Server::count`] tells apart, by method, path and query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Request {
    /// `PUT /bucket/key` (a CopyObject too: it is told apart only by a header).
    PutObject,
    /// `POST /bucket/key?uploads`.
    CreateMultipartUpload,
    /// `PUT /bucket/key?partNumber=N&uploadId=ID`.
    UploadPart,
    /// `POST /bucket/key?uploadId=ID`.
    CompleteMultipartUpload,
    /// `DELETE /bucket/key?uploadId=ID`.
    AbortMultipartUpload,
    /// `GET /bucket/key`.
    GetObject,
    /// `HEAD /bucket/key`.
    HeadObject,
    /// `GET /bucket` with only listing parameters (ListObjects and ListObjectsV2).
    ListObjects,
    /// `DELETE /bucket/key`.
    DeleteObject,
    /// `POST /bucket?delete`.
    DeleteObjects,
    /// `HEAD /bucket`.
    HeadBucket,
    /// Anything else: CreateBucket, ListBuckets, ListParts, tagging, ACLs...
    Other,
}

impl S3Server {
    /// Serves the folder `root` (must exist; bucket `b` is folder `root/b`) on 127.0.0.1:0 with
    /// SigV4 checked against one key pair.
    pub async fn start(root: &Path, access_key: &str, secret_key: &str) -> io::Result<S3Server> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        S3Server::start_on(addr, root, access_key, secret_key).await
    }

    /// Like [`S3Server::start`], on `addr` (port 0 picks a free one).
    pub async fn start_on(
        addr: SocketAddr,
        root: &Path,
        access_key: &str,
        secret_key: &str,
    ) -> io::Result<S3Server> {
        if !root.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("the S3 server's root {} is not a folder", root.display()),
            ));
        }
        // s3s-fs's error type has no `Display`; its `Debug` carries the cause.
        let file_system = s3s_fs::FileSystem::new(root).map_err(|err| {
            io::Error::other(format!("opening {} for s3s-fs: {err:?}", root.display()))
        })?;
        let mut builder = S3ServiceBuilder::new(file_system);
        builder.set_auth(SimpleAuth::from_single(access_key, secret_key));
        // No `set_host`: requests are path-style only.
        let s3 = builder.build();

        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let accept_loop = tokio::spawn(accept_loop(listener, Arc::clone(&shared), s3));
        Ok(S3Server {
            addr,
            shared,
            accept_loop,
        })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The endpoint to configure: `http://127.0.0.1:PORT` (with 127.0.0.1 for an unspecified
    /// bound address).
    pub fn endpoint(&self) -> String {
        let mut addr = self.addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(Ipv4Addr::LOCALHOST.into());
        }
        format!("http://{addr}")
    }

    /// Answers 403 AccessDenied (a proper S3 XML error body, Content-Type application/xml) to
    /// every request on this object, like a bucket policy that denies one key. `key` without the
    /// bucket. The refusal comes before the signature check, and covers only requests whose path
    /// names the object (not its entry in a DeleteObjects body, nor a copy's source).
    pub fn deny(&self, bucket: &str, key: &str) {
        let object = (bucket.to_owned(), key.to_owned());
        self.shared.lock().denied.insert(object);
    }

    /// Lets `n` more UploadPart requests through, then holds every later UploadPart (the request
    /// waits, unanswered) until `release`. For tests that interrupt a multipart upload.
    pub fn hold_parts_after(&self, n: usize) {
        self.shared.lock().parts_before_hold = Some(n);
    }

    /// Answers the held UploadParts and lets every later one through, until the next
    /// [`S3Server::hold_parts_after`].
    pub fn release(&self) {
        self.shared.lock().parts_before_hold = None;
        // Each held part registered for this wake-up under the lock, before the gate opened.
        self.shared.released.notify_waiters();
    }

    /// How many requests of this kind arrived (answered or not).
    pub fn count(&self, request: Request) -> usize {
        self.shared
            .lock()
            .counts
            .get(&request)
            .copied()
            .unwrap_or(0)
    }

    /// Part numbers of every UploadPart that was answered with success, in arrival order.
    pub fn parts_uploaded(&self) -> Vec<u32> {
        let mut parts = self.shared.lock().parts_uploaded.clone();
        parts.sort_by_key(|part| part.arrival_idx);
        parts.iter().map(|part| part.part_number).collect()
    }

    /// Resolves when the server has received (not answered) a held UploadPart: lets a test know
    /// the upload is stuck at the gate. Resolves at once while one is held.
    pub async fn wait_until_held(&self) {
        loop {
            // Registered before looking, so a part held right after the look still wakes us.
            let held = self.shared.held.notified();
            if self.shared.lock().n_held > 0 {
                return;
            }
            held.await;
        }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        // The connections live in the accept loop's `JoinSet`, which aborts them when dropped.
        self.accept_loop.abort();
    }
}

/// What the request handlers and the [`S3Server`] share.
#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    /// Woken when an UploadPart starts waiting at the gate.
    held: Notify,
    /// Woken by [`S3Server::release`].
    released: Notify,
}

#[derive(Default)]
struct State {
    counts: HashMap<Request, usize>,
    /// Denied objects, as (bucket, key).
    denied: HashSet<(String, String)>,
    /// How many more UploadParts pass before the gate closes; `None` while it is open.
    parts_before_hold: Option<usize>,
    /// UploadParts waiting at the gate right now.
    n_held: usize,
    parts_uploaded: Vec<UploadedPart>,
}

/// One UploadPart answered with success.
#[derive(Clone, Copy)]
struct UploadedPart {
    /// Its place among the UploadParts that arrived, from 0.
    arrival_idx: usize,
    part_number: u32,
}

impl Shared {
    /// Locks the state; lock scopes stay short and never cross an `.await`. Nothing panics while
    /// holding it, but a poisoned lock would still hold consistent counters.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts a request; returns its place among the requests of its kind, from 0.
    fn arrived(&self, request: Request) -> usize {
        let mut state = self.lock();
        let count = state.counts.entry(request).or_insert(0);
        *count += 1;
        *count - 1
    }

    fn is_denied(&self, object: &Option<(String, String)>) -> bool {
        object
            .as_ref()
            .is_some_and(|object| self.lock().denied.contains(object))
    }

    /// Lets an UploadPart through, or holds it until [`S3Server::release`].
    async fn pass_gate(&self) {
        let released = {
            let mut state = self.lock();
            match state.parts_before_hold {
                None => return,
                Some(0) => {}
                Some(n) => {
                    state.parts_before_hold = Some(n - 1);
                    return;
                }
            }
            state.n_held += 1;
            // Registered under the lock, before `release` can open the gate.
            self.released.notified()
        };
        let _held = HeldPart { shared: self };
        self.held.notify_waiters();
        released.await;
    }
}

/// Counts a part as held until it is released or its request goes away (the client hung up, or
/// the server was dropped).
struct HeldPart<'a> {
    shared: &'a Shared,
}

impl Drop for HeldPart<'_> {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.n_held = state.n_held.saturating_sub(1);
    }
}

/// Accepts connections until aborted; the connections end with it.
async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, s3: S3Service) {
    let http = ConnectionBuilder::new(TokioExecutor::new());
    let mut connections = JoinSet::new();
    loop {
        let socket = match listener.accept().await {
            Ok((socket, _peer)) => socket,
            Err(_) => {
                // Out of file descriptors and the like: wait a little rather than spin.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        // Forget the connections that have ended.
        while connections.try_join_next().is_some() {}
        let shared = Arc::clone(&shared);
        let s3 = s3.clone();
        let service = hyper::service::service_fn(move |request| {
            handle(Arc::clone(&shared), s3.clone(), request)
        });
        let connection = http
            .serve_connection(TokioIo::new(socket), service)
            .into_owned();
        connections.spawn(async move {
            // A connection error (the client hung up) concerns only that connection.
            let _ = connection.await;
        });
    }
}

/// One request: count it, refuse it if its object is denied, hold it at the gate if it is an
/// UploadPart, then let s3s answer it.
async fn handle(
    shared: Arc<Shared>,
    s3: S3Service,
    request: hyper::Request<Incoming>,
) -> Result<hyper::Response<s3s::Body>, s3s::HttpError> {
    let target = classify::classify(
        request.method(),
        request.uri().path(),
        request.uri().query(),
    );
    let arrival_idx = shared.arrived(target.request);
    if shared.is_denied(&target.object) {
        let is_head = request.method() == Method::HEAD;
        // Read the body first: a client still sending it would otherwise see the connection
        // close instead of the answer.
        let mut body = request.into_body();
        while let Some(frame) = body.frame().await {
            if frame.is_err() {
                break;
            }
        }
        return Ok(access_denied(is_head));
    }
    if target.request == Request::UploadPart {
        shared.pass_gate().await;
    }
    let response = s3.call(request.map(s3s::Body::from)).await?;
    if let Some(part_number) = target.part_number
        && response.status().is_success()
    {
        shared.lock().parts_uploaded.push(UploadedPart {
            arrival_idx,
            part_number,
        });
    }
    Ok(response)
}

/// The 403 of a denied object; a HEAD answer has no body, as in S3.
fn access_denied(is_head: bool) -> hyper::Response<s3s::Body> {
    let body = if is_head {
        s3s::Body::empty()
    } else {
        s3s::Body::from(ACCESS_DENIED_XML.to_owned())
    };
    let mut response = hyper::Response::new(body);
    *response.status_mut() = StatusCode::FORBIDDEN;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/xml"),
    );
    response
}
