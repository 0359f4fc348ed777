//! From one frame (a line of text) to the replies it gets: JSON-RPC 2.0 envelope checks, batches,
//! notifications, timeouts and panics. jsonrpsee's [`Methods`] does the method dispatch; this module
//! owns everything it does not do for a raw socket.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use jsonrpsee::MethodCallback;
use jsonrpsee::Methods;
use kroma_protocol as protocol;
use protocol::{ErrorCode, ErrorKind};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use crate::error::Problem;
use crate::server::wire::ToWire;

/// Most requests a batch may hold.
pub const MAX_BATCH_LEN: usize = 10_000;

/// Notifications one subscription may have queued before the subscription waits.
const SUBSCRIPTION_BUFFER: usize = 256;

/// Requests of one batch run at once.
const BATCH_CONCURRENCY: usize = 8;

/// What one frame produced.
#[derive(Default)]
pub struct Reply {
    /// The response line, if the frame asked for one (notifications do not).
    pub response: Option<String>,
    /// Subscriptions the frame opened: their notifications go out on the same connection, and
    /// each holds one of the connection's subscription permits while it is open.
    pub subscriptions: Vec<OpenSubscription>,
}

/// A subscription a frame opened.
pub struct OpenSubscription {
    /// Its id as JSON text, as the connection's [`Owned`] set holds it.
    pub id: String,
    pub notifications: mpsc::Receiver<Box<RawValue>>,
    pub permit: OwnedSemaphorePermit,
}

/// The ids of the subscriptions one connection holds: `events.unsubscribe` ends only those, so
/// no connection can end another's by guessing its id.
pub type Owned = std::sync::Mutex<std::collections::HashSet<String>>;

/// The fields of a request object as sent, before any of them is trusted.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    jsonrpc: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    method: Option<&'a RawValue>,
    #[serde(borrow, default)]
    params: Option<&'a RawValue>,
}

/// Keeps an explicit `null` id (`Some("null")`) apart from an absent one (`None`).
fn present<'de, D>(deserializer: D) -> Result<Option<&'de RawValue>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    <&RawValue>::deserialize(deserializer).map(Some)
}

/// How long a call may take and how much it may hold.
#[derive(Clone, Copy)]
pub struct Bounds<'a> {
    /// For every method but the unbounded ones.
    pub timeout: Duration,
    /// Cancelled when the caller disconnects: unbounded calls stop then.
    pub caller_left: &'a CancellationToken,
    /// The connection's subscription permits: a subscription without one is refused.
    pub subscriptions: &'a Arc<Semaphore>,
    /// The ids of the connection's open subscriptions.
    pub owned: &'a Owned,
    /// Most bytes one frame's answers may take; the requests of a batch beyond it are not run.
    pub max_reply_bytes: usize,
    /// What every call of the connection carries (its `Peer`).
    pub extensions: &'a jsonrpsee::Extensions,
}

/// The methods whose length follows their input ([`protocol::Method::UNBOUNDED`]).
fn is_unbounded(method: &str) -> bool {
    static UNBOUNDED: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
        protocol::openrpc::method_infos()
            .into_iter()
            .filter(|info| info.unbounded)
            .map(|info| info.name)
            .collect()
    });
    UNBOUNDED.contains(&method)
}

/// Handles one frame. `frame` is the raw line without its newline.
pub async fn handle_frame(methods: &Methods, frame: &[u8], bounds: Bounds<'_>) -> Reply {
    let Ok(text) = std::str::from_utf8(frame) else {
        return error_reply(parse_error("frame is not valid UTF-8"), "null");
    };
    if serde_json::from_str::<&RawValue>(text).is_err() {
        let detail = serde_json::from_str::<serde::de::IgnoredAny>(text)
            .err()
            .map(|err| err.to_string())
            .unwrap_or_default();
        return error_reply(
            parse_error(&format!("frame is not valid JSON: {detail}")),
            "null",
        );
    }
    if text.trim_start().starts_with('[') {
        handle_batch(methods, text, bounds).await
    } else {
        let (response, subscription) = handle_single(methods, text, bounds).await;
        Reply {
            response,
            subscriptions: subscription.into_iter().collect(),
        }
    }
}

async fn handle_batch(methods: &Methods, text: &str, bounds: Bounds<'_>) -> Reply {
    let elements: Vec<&RawValue> = match serde_json::from_str(text) {
        Ok(elements) => elements,
        Err(err) => return error_reply(parse_error(&err.to_string()), "null"),
    };
    if elements.is_empty() {
        return error_reply(
            invalid_request("a batch must hold at least one request"),
            "null",
        );
    }
    if elements.len() > MAX_BATCH_LEN {
        return error_reply(
            invalid_request(&format!("a batch holds at most {MAX_BATCH_LEN} requests")),
            "null",
        );
    }
    // A few at a time, each started only while the answers so far fit the reply budget: the
    // requests beyond it are not run and get a `reply_too_large` error each, so the reply (and
    // the work behind it) stays bounded whatever the batch asks for.
    let mut used = 0usize;
    let mut members = elements.iter();
    let mut running = futures::stream::FuturesOrdered::new();
    let mut results = Vec::with_capacity(elements.len());
    loop {
        while running.len() < BATCH_CONCURRENCY {
            let Some(element) = members.next() else {
                break;
            };
            let run = used < bounds.max_reply_bytes;
            running.push_back(batch_member(methods, element.get(), bounds, run));
        }
        let Some((response, subscription)) = running.next().await else {
            break;
        };
        used += response
            .as_ref()
            .map_or(0, |response: &String| response.len() + 1);
        results.push((response, subscription));
    }
    let mut reply = Reply::default();
    let mut responses = Vec::new();
    for (response, subscription) in results {
        responses.extend(response);
        reply.subscriptions.extend(subscription);
    }
    if !responses.is_empty() {
        reply.response = Some(format!("[{}]", responses.join(",")));
    }
    reply
}

/// One member of a batch: run, or answered `reply_too_large` without running when `run` is false.
async fn batch_member(
    methods: &Methods,
    text: &str,
    bounds: Bounds<'_>,
    run: bool,
) -> (Option<String>, Option<OpenSubscription>) {
    if run {
        handle_single(methods, text, bounds).await
    } else {
        (reply_too_large(text, bounds.max_reply_bytes), None)
    }
}

/// The answer to a batch member that was not run because the batch's answers were already at
/// the limit; none for a notification.
fn reply_too_large(text: &str, limit: usize) -> Option<String> {
    let envelope: Envelope<'_> = serde_json::from_str(text).ok()?;
    let id = envelope.id.filter(|id| valid_id(id))?;
    Some(
        Problem::new(
            ErrorKind::Infra,
            ErrorCode::ReplyTooLarge,
            format!(
                "not run: the batch's answers already take the {} KiB one frame may get back",
                limit / 1024
            ),
        )
        .with_hint("send fewer requests per batch, or raise limits.max_reply_bytes")
        .to_response(id.get()),
    )
}

/// One request object: its response (none for a notification) and the subscription it opened.
async fn handle_single(
    methods: &Methods,
    text: &str,
    bounds: Bounds<'_>,
) -> (Option<String>, Option<OpenSubscription>) {
    let envelope: Envelope<'_> = match serde_json::from_str(text) {
        Ok(envelope) => envelope,
        Err(_) => {
            return (
                Some(invalid_request("a request must be a JSON object").to_response("null")),
                None,
            );
        }
    };
    let id = match envelope.id {
        Some(id) if valid_id(id) => Some(id.get()),
        Some(_) => {
            return (
                Some(
                    invalid_request("`id` must be a string, a number or null").to_response("null"),
                ),
                None,
            );
        }
        None => None,
    };
    let reply_id = id.unwrap_or("null");
    if envelope.jsonrpc.map(RawValue::get) != Some(r#""2.0""#) {
        return (
            Some(invalid_request(r#"`jsonrpc` must be exactly "2.0""#).to_response(reply_id)),
            None,
        );
    }
    let Some(method) = envelope
        .method
        .and_then(|method| serde_json::from_str::<String>(method.get()).ok())
    else {
        return (
            Some(invalid_request("`method` must be a string").to_response(reply_id)),
            None,
        );
    };
    let callback = methods.method(&method);
    if callback.is_none() {
        let err = Problem::new(
            ErrorKind::NotFound,
            ErrorCode::MethodNotFound,
            format!("method `{method}` does not exist"),
        )
        .with_hint("rpc.discover lists every method")
        .with_action(protocol::Action::call::<protocol::rpc::Discover>([], &[]))
        .with_rpc_code(protocol::error::METHOD_NOT_FOUND);
        return (id.map(|_| err.to_response(reply_id)), None);
    }
    let is_subscription = matches!(callback, Some(MethodCallback::Subscription(_)));
    if matches!(callback, Some(MethodCallback::Unsubscription(_)))
        && let Some(id) = id
        && !owned_by_caller(envelope.params, bounds.owned)
    {
        // What jsonrpsee answers for an id that is not an open subscription.
        return (
            Some(format!(r#"{{"jsonrpc":"2.0","id":{id},"result":false}}"#)),
            None,
        );
    }
    let subscription_permit = if is_subscription && id.is_some() {
        match bounds.subscriptions.clone().try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) => {
                let err = Problem::new(
                    ErrorKind::Infra,
                    ErrorCode::TooManySubscriptions,
                    "this connection already holds as many subscriptions as kromad allows",
                )
                .with_hint(
                    "end some with events.unsubscribe, or raise limits.max_subscriptions_per_connection",
                );
                return (Some(err.to_response(reply_id)), None);
            }
        }
    } else {
        None
    };

    // jsonrpsee answers every call; a notification gets a stand-in id and its answer is dropped.
    // jsonrpsee takes only strings, unsigned integers and null as ids; any other number the spec
    // allows (negative, fractional, huge) is swapped for a stand-in and restored in the answer.
    let passes_through =
        id.is_some_and(|id| id == "null" || id.starts_with('"') || id.parse::<u64>().is_ok());
    let dispatch_id = if passes_through { reply_id } else { "0" };
    let call = AssertUnwindSafe(call_method(
        methods,
        bounds.extensions,
        callback,
        envelope.method,
        envelope.params,
        dispatch_id,
    ))
    .catch_unwind();
    let timeout = bounds.timeout;
    let outcome = if is_unbounded(&method) {
        tokio::select! {
            outcome = call => Ok(outcome),
            _ = bounds.caller_left.cancelled() => {
                tracing::info!(%method, "the caller left; its call is stopped");
                return (None, None);
            }
        }
    } else {
        tokio::time::timeout(timeout, call).await
    };
    let (response, notifications) = match outcome {
        Ok(Ok(Ok((response, notifications)))) if passes_through || id.is_none() => {
            (response.get().to_owned(), notifications)
        }
        Ok(Ok(Ok((response, notifications)))) => (restore_id(&response, reply_id), notifications),
        Ok(Ok(Err(_))) => (
            invalid_request("the request could not be decoded").to_response(reply_id),
            None,
        ),
        Ok(Err(_panic)) => {
            tracing::error!(%method, "a method handler panicked");
            (
                Problem::new(
                    ErrorKind::Internal,
                    ErrorCode::Internal,
                    format!("`{method}` failed inside kromad"),
                )
                .with_hint("this is a bug in kromad; the daemon keeps running, see its log")
                .to_response(reply_id),
                None,
            )
        }
        Err(_elapsed) => (
            Problem::new(
                ErrorKind::Infra,
                ErrorCode::RequestTimeout,
                format!(
                    "`{method}` did not finish within {} s",
                    timeout.as_secs_f64()
                ),
            )
            .with_hint("retry; if it keeps happening, raise limits.request_timeout_secs")
            .to_response(reply_id),
            None,
        ),
    };
    // Only a subscribe call's answer is read back, for its subscription id.
    let subscription = match (notifications, subscription_permit) {
        (Some(notifications), Some(permit)) => subscription_id(&response).map(|sub_id| {
            lock_owned(bounds.owned).insert(sub_id.clone());
            OpenSubscription {
                id: sub_id,
                notifications,
                permit,
            }
        }),
        _ => None,
    };
    (id.map(|_| response), subscription)
}

/// Runs one call. A plain method's callback is called straight away with the params as sent;
/// a subscription goes through jsonrpsee's own request path, which sets up its sink and answers
/// its notifications' channel.
async fn call_method(
    methods: &Methods,
    extensions: &jsonrpsee::Extensions,
    callback: Option<&MethodCallback>,
    method: Option<&RawValue>,
    params: Option<&RawValue>,
    dispatch_id: &str,
) -> Result<(Box<RawValue>, Option<mpsc::Receiver<Box<RawValue>>>), serde_json::Error> {
    if let Some(MethodCallback::Async(callback)) = callback {
        let id = match dispatch_id {
            "null" => jsonrpsee::types::Id::Null,
            text if text.starts_with('"') => {
                jsonrpsee::types::Id::Str(serde_json::from_str::<String>(text)?.into())
            }
            text => jsonrpsee::types::Id::Number(
                text.parse::<u64>()
                    .map_err(|_| <serde_json::Error as serde::de::Error>::custom("bad id"))?,
            ),
        };
        let params = jsonrpsee::types::Params::new(params.map(RawValue::get)).into_owned();
        let mut extensions = extensions.clone();
        extensions.insert(jsonrpsee::ConnectionId(0));
        let response = callback(
            id,
            params,
            jsonrpsee::ConnectionId(0),
            usize::MAX,
            extensions,
        )
        .await;
        let (body, _, _) = response.into_parts();
        return Ok((body, None));
    }
    let request = match params {
        Some(params) => format!(
            r#"{{"jsonrpc":"2.0","id":{},"method":{},"params":{}}}"#,
            dispatch_id,
            method.map(RawValue::get).unwrap_or("null"),
            params.get()
        ),
        None => format!(
            r#"{{"jsonrpc":"2.0","id":{},"method":{}}}"#,
            dispatch_id,
            method.map(RawValue::get).unwrap_or("null"),
        ),
    };
    let (response, notifications) = methods
        .raw_json_request(&request, SUBSCRIPTION_BUFFER)
        .await?;
    Ok((response, Some(notifications)))
}

/// The subscription id in a successful answer to a subscribe call, as normalised JSON text.
fn subscription_id(response: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Answer<'a> {
        #[serde(borrow)]
        result: &'a RawValue,
    }
    let answer: Answer<'_> = serde_json::from_str(response).ok()?;
    let id: serde_json::Value = serde_json::from_str(answer.result.get()).ok()?;
    Some(id.to_string())
}

/// Whether the subscription an unsubscribe call names (`[id]` or `id`) is one of the caller's.
fn owned_by_caller(params: Option<&RawValue>, owned: &Owned) -> bool {
    let Some(params) =
        params.and_then(|params| serde_json::from_str::<serde_json::Value>(params.get()).ok())
    else {
        return false;
    };
    let named = match params {
        serde_json::Value::Array(mut items) if !items.is_empty() => items.swap_remove(0),
        other => other,
    };
    lock_owned(owned).contains(&named.to_string())
}

pub fn lock_owned(owned: &Owned) -> std::sync::MutexGuard<'_, std::collections::HashSet<String>> {
    owned
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Puts the caller's own id back into an answer dispatched under a stand-in id, exactly as the
/// caller wrote it (a number is never re-read as a float).
fn restore_id(response: &RawValue, id: &str) -> String {
    #[derive(Deserialize)]
    struct Answer<'a> {
        #[serde(borrow, default)]
        result: Option<&'a RawValue>,
        #[serde(borrow, default)]
        error: Option<&'a RawValue>,
    }
    match serde_json::from_str::<Answer<'_>>(response.get()) {
        Ok(Answer {
            result: Some(result),
            ..
        }) => format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{}}}"#, result.get()),
        Ok(Answer {
            error: Some(error), ..
        }) => format!(r#"{{"jsonrpc":"2.0","id":{id},"error":{}}}"#, error.get()),
        _ => response.get().to_owned(),
    }
}

fn valid_id(id: &RawValue) -> bool {
    let text = id.get();
    text == "null"
        || text.starts_with('"')
        || text.starts_with('-')
        || text.starts_with(|c: char| c.is_ascii_digit())
}

fn error_reply(err: Problem, id: &str) -> Reply {
    Reply {
        response: Some(err.to_response(id)),
        subscriptions: Vec::new(),
    }
}

pub fn parse_error(detail: &str) -> Problem {
    Problem::validation(ErrorCode::ParseError, format!("parse error: {detail}"))
        .with_hint("send one JSON-RPC 2.0 request (or batch) per line, UTF-8 encoded")
        .with_rpc_code(protocol::error::PARSE_ERROR)
}

pub fn invalid_request(detail: &str) -> Problem {
    Problem::validation(
        ErrorCode::InvalidRequest,
        format!("invalid request: {detail}"),
    )
    .with_hint(r#"a request looks like {"jsonrpc":"2.0","id":1,"method":"daemon.version"}"#)
    .with_rpc_code(protocol::error::INVALID_REQUEST)
}
