//! A real HTTP server on 127.0.0.1 that speaks the OpenAI Images API, for tests, benchmarks and
//! demos: the paid remote API is the one thing Kroma's tests may not call.
//!
//! It serves, under `/v1` and behind `Authorization: Bearer <key>`:
//! - `GET /v1/models`: the configured [`FakeModel`]s;
//! - `POST /v1/images/generations` (JSON) and `POST /v1/images/edits` (multipart with `image[]`
//!   parts): checked like the real API, answered with real PNGs whose pixels derive from a hash of
//!   the request, and a deterministic `usage` block.
//!
//! Tests steer it with [`Fault`]s (a FIFO queue, each applying to one image request) and read
//! [`Stats`]; another process can do both over HTTP with `POST /_fake/faults` (a JSON array of
//! faults) and `GET /_fake/stats` (no auth on `/_fake/*`).
//!
//! Billing follows the real API as far as a client can tell: an answered request is billed once;
//! a request carrying an `Idempotency-Key` already billed gets the stored answer again, unbilled.
//!
//! ```no_run
//! # async fn example() -> std::io::Result<()> {
//! use kroma_fake_provider::{FakeConfig, FakeProvider, Fault};
//! let provider = FakeProvider::start(FakeConfig::default()).await?;
//! provider.push_fault(Fault::RateLimit { retry_after_secs: 1 });
//! // Point a client at provider.base_url() with the key "sk-fake"...
//! assert_eq!(provider.stats().billed, 0);
//! # Ok(())
//! # }
//! ```

mod render;
mod request;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::multipart::MultipartRejection;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Multipart, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

use request::{Endpoint, OpenAiError, RawImageRequest};

/// The largest request body accepted; edits carry images (the real API takes up to 50 MB each).
const MAX_BODY_BYTES: usize = 256 * 1024 * 1024;
/// The `created` timestamp `GET /v1/models` reports for every model.
const MODEL_CREATED: u64 = 1_745_517_030;

/// What the fake provider accepts and answers.
#[derive(Clone, Debug)]
pub struct FakeConfig {
    /// The only API key accepted.
    pub key: String,
    /// When set, every PNG has this size whatever the request asked for (benchmarks and tests keep
    /// images small this way); `size` and `usage` in the answer still follow the request.
    pub render_size: Option<(u32, u32)>,
    /// The models `GET /v1/models` lists and image requests may name.
    pub models: Vec<FakeModel>,
    /// Slept before answering each image request that has the right key, before its checks.
    pub latency: Duration,
}

/// One model listed by `GET /v1/models`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeModel {
    pub id: String,
    /// `YYYY-MM-DD`, listed as `shutdown_date` only when set.
    pub shutdown_date: Option<String>,
}

impl Default for FakeConfig {
    /// Key `sk-fake`, no render size, `gpt-image-2` and `gpt-image-1-mini` (shutting down on
    /// 2026-12-01), no latency.
    fn default() -> FakeConfig {
        FakeConfig {
            key: "sk-fake".to_owned(),
            render_size: None,
            models: vec![
                FakeModel {
                    id: "gpt-image-2".to_owned(),
                    shutdown_date: None,
                },
                FakeModel {
                    id: "gpt-image-1-mini".to_owned(),
                    shutdown_date: Some("2026-12-01".to_owned()),
                },
            ],
            latency: Duration::ZERO,
        }
    }
}

/// A failure to inject into the next image request that passes auth, the request checks and the
/// idempotency replay (faults wait in a FIFO queue, one per request).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// An OpenAI-shaped error with this status: 401 `invalid_api_key`, 429 `rate_limit_exceeded`,
    /// 5xx `server_error`, any other `invalid_request_error`. A status that is no HTTP status
    /// answers 500. Not billed.
    Status { status: u16 },
    /// 429 with `Retry-After` and the OpenAI `rate_limit_exceeded` body. Not billed.
    RateLimit { retry_after_secs: u64 },
    /// Bills and stores the answer first, then sleeps, then answers normally: a client that times
    /// out has still paid, and a retry with the same `Idempotency-Key` gets the stored answer.
    Stall { secs: u64 },
    /// 200 with a body that is not JSON. Billed.
    MalformedJson,
    /// 200 with valid JSON whose `b64_json` decodes to bytes that are no image. Billed.
    NotAnImage,
    /// 200 with valid JSON and `"data": []`. Billed.
    Empty,
    /// A hostile or careless provider: an OpenAI-shaped error with this status whose message
    /// and `x-request-id` repeat the request's `Authorization` header. Not billed.
    EchoAuthorization { status: u16 },
}

/// What the fake provider has seen so far.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(default)]
pub struct Stats {
    /// Image requests (generations and edits), every one: refused keys, bad requests, faults and
    /// replays included. `GET /v1/models` is counted in `models_requests` instead.
    pub requests: u64,
    /// Image requests billed.
    pub billed: u64,
    /// Image requests answered from the idempotency store, unbilled.
    pub replays: u64,
    /// `GET /v1/models` requests, every one (refused keys included).
    pub models_requests: u64,
    /// Billed image requests by `Idempotency-Key`, `-` for requests without one.
    pub billed_by_key: BTreeMap<String, u64>,
    /// One record per image request that passed the key check, in arrival order: billed or not
    /// (a bad request, an injected error, a replay) as `billed` and `status` tell.
    pub calls: Vec<CallRecord>,
}

/// One image request that passed the key check.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct CallRecord {
    /// `generations` or `edits`.
    pub endpoint: String,
    /// The fields as sent; empty when missing or when the body could not be read.
    pub model: String,
    pub size: String,
    pub quality: String,
    pub prompt: String,
    /// The number of input image parts (0 for generations).
    pub images: usize,
    pub idempotency_key: Option<String>,
    pub billed: bool,
    /// The HTTP status answered.
    pub status: u16,
}

/// A running fake provider; the server stops when this is dropped.
pub struct FakeProvider {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: AbortOnDrop,
}

impl FakeProvider {
    /// Serves on 127.0.0.1 on a free port.
    pub async fn start(config: FakeConfig) -> std::io::Result<FakeProvider> {
        FakeProvider::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), config).await
    }

    /// Serves on `addr` (port 0 picks a free one).
    pub async fn start_on(addr: SocketAddr, config: FakeConfig) -> std::io::Result<FakeProvider> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            config,
            state: Mutex::new(ServerState::default()),
        });
        let app = router(shared.clone());
        let server = tokio::spawn(async move {
            // Serving only ends on an accept error; the task's end is what `wait` reports.
            let _ = axum::serve(listener, app).await;
        });
        Ok(FakeProvider {
            addr,
            shared,
            server: AbortOnDrop(server),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL to configure: `http://127.0.0.1:<port>/v1` (the bound address, with
    /// 127.0.0.1 for an unspecified one).
    pub fn base_url(&self) -> String {
        let mut addr = self.addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(Ipv4Addr::LOCALHOST.into());
        }
        format!("http://{addr}/v1")
    }

    /// Queues a fault for the next image request (see [`Fault`]).
    pub fn push_fault(&self, fault: Fault) {
        self.shared.lock().faults.push_back(fault);
    }

    /// A copy of the counters and call records.
    pub fn stats(&self) -> Stats {
        self.shared.lock().stats.clone()
    }

    /// Serves until the server task ends (it does not on its own); for the command line.
    pub async fn wait(mut self) {
        let _ = (&mut self.server.0).await;
    }
}

/// Aborts the server task when dropped, also when [`FakeProvider::wait`] is cancelled. Aborting
/// `axum::serve` makes its connection tasks close gracefully.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

struct Shared {
    config: FakeConfig,
    state: Mutex<ServerState>,
}

#[derive(Default)]
struct ServerState {
    faults: VecDeque<Fault>,
    stats: Stats,
    /// Answers of billed requests, by `Idempotency-Key`.
    answers: HashMap<String, Answer>,
}

impl Shared {
    /// Locks the state; lock scopes stay short and never cross an `.await`. Nothing panics while
    /// holding it, but a poisoned lock would still hold consistent counters.
    fn lock(&self) -> MutexGuard<'_, ServerState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            == Some(self.config.key.as_str())
    }

    /// Counts an image request, checks its key and sleeps the configured latency. `Some` is the
    /// answer for a refused key.
    async fn admit_image_request(&self, headers: &HeaderMap) -> Option<Answer> {
        self.lock().stats.requests += 1;
        if !self.authorized(headers) {
            return Some(Answer::error(&OpenAiError::invalid_api_key()));
        }
        if !self.config.latency.is_zero() {
            tokio::time::sleep(self.config.latency).await;
        }
        None
    }

    /// Checks, renders, replays or injects a fault, bills and records one admitted image request.
    async fn answer_image_request(
        self: Arc<Self>,
        endpoint: Endpoint,
        headers: &HeaderMap,
        parsed: Result<RawImageRequest, OpenAiError>,
    ) -> Answer {
        let idempotency_key = headers
            .get("idempotency-key")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let raw = match parsed {
            Ok(raw) => raw,
            Err(error) => {
                let record = call_record(endpoint, &RawImageRequest::default(), &idempotency_key);
                return self.refuse(record, &error);
            }
        };
        let mut record = call_record(endpoint, &raw, &idempotency_key);
        let shared = self.clone();
        let created = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs());
        // Rendering happens before the replay check so that the check and the billing share one
        // short lock scope; a replayed or faulted request just throws its render away.
        let rendered = tokio::task::spawn_blocking(move || {
            request::check(&raw, endpoint, &shared.config)
                .and_then(|job| render::render(&job, created))
        })
        .await
        .unwrap_or_else(|err| {
            Err(OpenAiError {
                status: 500,
                message: format!("The fake provider failed to render: {err}"),
                error_type: "server_error",
                param: None,
                code: None,
            })
        });
        let rendered = match rendered {
            Ok(rendered) => rendered,
            Err(error) => return self.refuse(record, &error),
        };

        let (answer, stall) = {
            let mut state = self.lock();
            if let Some(key) = &idempotency_key
                && let Some(stored) = state.answers.get(key).cloned()
            {
                state.stats.replays += 1;
                record.status = stored.status;
                state.stats.calls.push(record);
                return stored;
            }
            let fault = state.faults.pop_front();
            let authorization = headers
                .get(axum::http::header::AUTHORIZATION)
                .and_then(|value| value.to_str().ok())
                .unwrap_or_default();
            let outcome = outcome(fault, &rendered, &record.model, authorization);
            if outcome.billed {
                state.stats.billed += 1;
                let key = idempotency_key.clone().unwrap_or_else(|| "-".to_owned());
                *state.stats.billed_by_key.entry(key).or_default() += 1;
                if let Some(key) = idempotency_key {
                    state.answers.insert(key, outcome.answer.clone());
                }
            }
            record.billed = outcome.billed;
            record.status = outcome.answer.status;
            state.stats.calls.push(record);
            (outcome.answer, outcome.stall)
        };
        if let Some(stall) = stall {
            tokio::time::sleep(stall).await;
        }
        answer
    }

    /// Records an unbilled request refused with `error` and answers it.
    fn refuse(&self, mut record: CallRecord, error: &OpenAiError) -> Answer {
        record.status = error.status;
        self.lock().stats.calls.push(record);
        Answer::error(error)
    }
}

fn call_record(
    endpoint: Endpoint,
    raw: &RawImageRequest,
    idempotency_key: &Option<String>,
) -> CallRecord {
    CallRecord {
        endpoint: endpoint.name().to_owned(),
        model: raw.model.clone().unwrap_or_default(),
        size: raw.size.clone().unwrap_or_default(),
        quality: raw.quality.clone().unwrap_or_default(),
        prompt: raw.prompt.clone().unwrap_or_default(),
        images: raw.images.len(),
        idempotency_key: idempotency_key.clone(),
        billed: false,
        status: 0,
    }
}

/// What one checked, rendered request turns into under a fault (or none).
struct Outcome {
    answer: Answer,
    billed: bool,
    /// Slept after billing and before answering.
    stall: Option<Duration>,
}

fn outcome(
    fault: Option<Fault>,
    rendered: &render::Rendered,
    model: &str,
    authorization: &str,
) -> Outcome {
    let billed = |answer: Answer| Outcome {
        answer,
        billed: true,
        stall: None,
    };
    match fault {
        None => billed(Answer::json(200, rendered.success.clone())),
        Some(Fault::Stall { secs }) => Outcome {
            stall: Some(Duration::from_secs(secs)),
            ..billed(Answer::json(200, rendered.success.clone()))
        },
        Some(Fault::MalformedJson) => billed(Answer::json(
            200,
            Bytes::from_static(b"{\"created\": 1745517030, \"data\": [{\"b64_json\": \"iVBOR"),
        )),
        Some(Fault::NotAnImage) => billed(Answer::json(200, rendered.not_an_image.clone())),
        Some(Fault::Empty) => billed(Answer::json(200, rendered.empty.clone())),
        Some(Fault::Status { status }) => Outcome {
            answer: Answer::error(&status_error(status, model)),
            billed: false,
            stall: None,
        },
        Some(Fault::EchoAuthorization { status }) => {
            let mut error = status_error(status, model);
            error.message = format!("Request with header 'Authorization: {authorization}' failed");
            let mut answer = Answer::error(&error);
            answer.request_id = Some(format!("req-{authorization}"));
            Outcome {
                answer,
                billed: false,
                stall: None,
            }
        }
        Some(Fault::RateLimit { retry_after_secs }) => {
            let mut answer = Answer::error(&rate_limit_error(model, Some(retry_after_secs)));
            answer.retry_after_secs = Some(retry_after_secs);
            Outcome {
                answer,
                billed: false,
                stall: None,
            }
        }
    }
}

/// The OpenAI error body for an injected status.
fn status_error(status: u16, model: &str) -> OpenAiError {
    let status = StatusCode::from_u16(status).map_or(500, |code| code.as_u16());
    match status {
        401 => OpenAiError::invalid_api_key(),
        429 => rate_limit_error(model, None),
        500..=599 => OpenAiError {
            status,
            message: "The server had an error while processing your request. Sorry about that!"
                .to_owned(),
            error_type: "server_error",
            param: None,
            code: None,
        },
        _ => OpenAiError {
            status,
            ..OpenAiError::invalid(
                format!("The fake provider was told to answer {status}."),
                None,
                None,
            )
        },
    }
}

fn rate_limit_error(model: &str, retry_after_secs: Option<u64>) -> OpenAiError {
    let retry = retry_after_secs.map_or_else(
        || "Please try again later.".to_owned(),
        |secs| format!("Please try again in {secs}s."),
    );
    OpenAiError {
        status: 429,
        message: format!(
            "Rate limit reached for {model} in organization org-fake on images per minute (IPM). {retry}"
        ),
        error_type: "requests",
        param: None,
        code: Some("rate_limit_exceeded"),
    }
}

/// One HTTP answer, kept whole so that an idempotent replay sends the same bytes.
#[derive(Clone, Debug)]
struct Answer {
    status: u16,
    retry_after_secs: Option<u64>,
    /// Sent as `x-request-id` when set.
    request_id: Option<String>,
    /// Sent as `application/json`, also when it is not (see [`Fault::MalformedJson`]).
    body: Bytes,
}

impl Answer {
    fn json(status: u16, body: Bytes) -> Answer {
        Answer {
            status,
            retry_after_secs: None,
            request_id: None,
            body,
        }
    }

    fn error(error: &OpenAiError) -> Answer {
        Answer::json(error.status, Bytes::from(error.body().to_string()))
    }
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            self.body,
        )
            .into_response();
        if let Some(secs) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, secs.into());
        }
        if let Some(id) = self
            .request_id
            .and_then(|id| header::HeaderValue::from_str(&id).ok())
        {
            response.headers_mut().insert("x-request-id", id);
        }
        response
    }
}

fn router(shared: Arc<Shared>) -> axum::Router {
    axum::Router::new()
        .route("/v1/models", get(models))
        .route("/v1/images/generations", post(generations))
        .route("/v1/images/edits", post(edits))
        .route("/_fake/faults", post(push_faults))
        .route("/_fake/stats", get(stats))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(shared)
}

async fn models(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Answer {
    shared.lock().stats.models_requests += 1;
    if !shared.authorized(&headers) {
        return Answer::error(&OpenAiError::invalid_api_key());
    }
    let data: Vec<serde_json::Value> = shared
        .config
        .models
        .iter()
        .map(|model| {
            let mut entry = serde_json::json!({
                "id": model.id,
                "object": "model",
                "created": MODEL_CREATED,
                "owned_by": "system",
            });
            if let Some(date) = &model.shutdown_date {
                entry["shutdown_date"] = date.as_str().into();
            }
            entry
        })
        .collect();
    let body = serde_json::json!({ "object": "list", "data": data });
    Answer::json(200, Bytes::from(body.to_string()))
}

async fn generations(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    if let Some(refused) = shared.admit_image_request(&headers).await {
        return refused;
    }
    let parsed = body
        .map_err(|rejection| {
            OpenAiError::invalid(
                format!("We could not read the body of your request: {rejection}"),
                None,
                None,
            )
        })
        .and_then(|body| request::parse_generation(&body));
    answer_to_the_end(shared, Endpoint::Generations, headers, parsed).await
}

async fn edits(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    form: Result<Multipart, MultipartRejection>,
) -> Answer {
    if let Some(refused) = shared.admit_image_request(&headers).await {
        return refused;
    }
    let parsed = match form {
        Ok(form) => request::parse_edit(form).await,
        Err(rejection) => Err(OpenAiError::invalid(
            format!("Edits take a multipart/form-data body: {rejection}"),
            None,
            None,
        )),
    };
    answer_to_the_end(shared, Endpoint::Edits, headers, parsed).await
}

/// Answers a request that has been read, on a task of its own: like a real provider, the fake
/// works on (and bills) a request to the end even when the client hangs up while it waits.
async fn answer_to_the_end(
    shared: Arc<Shared>,
    endpoint: Endpoint,
    headers: HeaderMap,
    parsed: Result<RawImageRequest, OpenAiError>,
) -> Answer {
    let task = tokio::spawn(async move {
        shared
            .answer_image_request(endpoint, &headers, parsed)
            .await
    });
    task.await.unwrap_or_else(|err| {
        Answer::error(&OpenAiError {
            status: 500,
            message: format!("The fake provider failed: {err}"),
            error_type: "server_error",
            param: None,
            code: None,
        })
    })
}

/// `POST /_fake/faults`: appends a JSON array of [`Fault`]s; answers `{"queued": <queue length>}`.
async fn push_faults(State(shared): State<Arc<Shared>>, body: Bytes) -> Answer {
    let faults: Vec<Fault> = match serde_json::from_slice(&body) {
        Ok(faults) => faults,
        Err(err) => {
            return Answer::error(&OpenAiError::invalid(
                format!("expected a JSON array of faults: {err}"),
                None,
                None,
            ));
        }
    };
    if let Some(status) = faults.iter().find_map(|fault| match fault {
        Fault::Status { status } | Fault::EchoAuthorization { status }
            if !(400..=599).contains(status) =>
        {
            Some(*status)
        }
        _ => None,
    }) {
        return Answer::error(&OpenAiError::invalid(
            format!("fault status {status} is not an error status (400 to 599)"),
            None,
            None,
        ));
    }
    let queued = {
        let mut state = shared.lock();
        state.faults.extend(faults);
        state.faults.len()
    };
    Answer::json(
        200,
        Bytes::from(serde_json::json!({ "queued": queued }).to_string()),
    )
}

/// `GET /_fake/stats`: the [`Stats`] as JSON.
async fn stats(State(shared): State<Arc<Shared>>) -> Answer {
    let stats = shared.lock().stats.clone();
    let body = serde_json::to_vec(&stats).unwrap_or_default();
    Answer::json(200, Bytes::from(body))
}

/// Any other path: the real API's 404 body.
async fn not_found(method: Method, uri: Uri) -> Answer {
    Answer::error(&OpenAiError {
        status: 404,
        message: format!("Invalid URL ({method} {})", uri.path()),
        error_type: "invalid_request_error",
        param: None,
        code: None,
    })
}
