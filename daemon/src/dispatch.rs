//! From one frame (a line of text) to the replies it gets: JSON-RPC 2.0 envelope checks, batches,
//! notifications, timeouts and panics. jsonrpsee's [`Methods`] does the method dispatch; this module
//! owns everything it does not do for a raw socket.

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures::FutureExt;
use jsonrpsee::MethodCallback;
use jsonrpsee::Methods;
use kroma_protocol as protocol;
use protocol::ErrorKind;
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::error::ApiError;

/// Most requests a batch may hold.
pub const MAX_BATCH_LEN: usize = 10_000;

/// Notifications one subscription may have queued before the subscription waits.
const SUBSCRIPTION_BUFFER: usize = 256;

/// What one frame produced.
#[derive(Default)]
pub struct Reply {
    /// The response line, if the frame asked for one (notifications do not).
    pub response: Option<String>,
    /// Subscriptions the frame opened: their notifications go out on the same connection.
    pub subscriptions: Vec<mpsc::Receiver<Box<RawValue>>>,
}

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

/// How long a call may take.
#[derive(Clone, Copy)]
pub struct Bounds<'a> {
    /// For every method but the unbounded ones.
    pub timeout: Duration,
    /// Cancelled when the caller disconnects: unbounded calls stop then.
    pub caller_left: &'a CancellationToken,
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
    let results = futures::future::join_all(
        elements
            .iter()
            .map(|element| handle_single(methods, element.get(), bounds)),
    )
    .await;
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

/// One request object: its response (none for a notification) and the subscription it opened.
async fn handle_single(
    methods: &Methods,
    text: &str,
    bounds: Bounds<'_>,
) -> (Option<String>, Option<mpsc::Receiver<Box<RawValue>>>) {
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
        let err = ApiError::new(
            ErrorKind::NotFound,
            "method_not_found",
            format!("method `{method}` does not exist"),
        )
        .with_hint("`kromactl rpc schema` lists every method")
        .with_rpc_code(protocol::error::METHOD_NOT_FOUND);
        return (id.map(|_| err.to_response(reply_id)), None);
    }
    let is_subscription = matches!(callback, Some(MethodCallback::Subscription(_)));

    // jsonrpsee answers every call; a notification gets a stand-in id and its answer is dropped.
    // jsonrpsee takes only strings, unsigned integers and null as ids; any other number the spec
    // allows (negative, fractional, huge) is swapped for a stand-in and restored in the answer.
    let passes_through =
        id.is_some_and(|id| id == "null" || id.starts_with('"') || id.parse::<u64>().is_ok());
    let dispatch_id = if passes_through { reply_id } else { "0" };
    let request = match envelope.params {
        Some(params) => format!(
            r#"{{"jsonrpc":"2.0","id":{},"method":{},"params":{}}}"#,
            dispatch_id,
            envelope.method.map(RawValue::get).unwrap_or("null"),
            params.get()
        ),
        None => format!(
            r#"{{"jsonrpc":"2.0","id":{},"method":{}}}"#,
            dispatch_id,
            envelope.method.map(RawValue::get).unwrap_or("null"),
        ),
    };
    let call =
        AssertUnwindSafe(methods.raw_json_request(&request, SUBSCRIPTION_BUFFER)).catch_unwind();
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
            (response.get().to_owned(), Some(notifications))
        }
        Ok(Ok(Ok((response, notifications)))) => {
            (restore_id(&response, reply_id), Some(notifications))
        }
        Ok(Ok(Err(_))) => (
            invalid_request("the request could not be decoded").to_response(reply_id),
            None,
        ),
        Ok(Err(_panic)) => {
            tracing::error!(%method, "a method handler panicked");
            (
                ApiError::new(
                    ErrorKind::Internal,
                    "internal",
                    format!("`{method}` failed inside kromad"),
                )
                .with_hint("this is a bug in kromad; the daemon keeps running, see its log")
                .to_response(reply_id),
                None,
            )
        }
        Err(_elapsed) => (
            ApiError::new(
                ErrorKind::Infra,
                "request_timeout",
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
    let subscription = if is_subscription && id.is_some() {
        notifications
    } else {
        None
    };
    (id.map(|_| response), subscription)
}

/// Puts the caller's own id back into an answer dispatched under a stand-in id.
fn restore_id(response: &RawValue, id: &str) -> String {
    let mut value: serde_json::Value = match serde_json::from_str(response.get()) {
        Ok(value) => value,
        Err(_) => return response.get().to_owned(),
    };
    if let (Some(object), Ok(id)) = (value.as_object_mut(), serde_json::from_str(id)) {
        object.insert("id".to_owned(), id);
    }
    value.to_string()
}

fn valid_id(id: &RawValue) -> bool {
    let text = id.get();
    text == "null"
        || text.starts_with('"')
        || text.starts_with('-')
        || text.starts_with(|c: char| c.is_ascii_digit())
}

fn error_reply(err: ApiError, id: &str) -> Reply {
    Reply {
        response: Some(err.to_response(id)),
        subscriptions: Vec::new(),
    }
}

pub fn parse_error(detail: &str) -> ApiError {
    ApiError::validation("parse_error", format!("parse error: {detail}"))
        .with_hint("send one JSON-RPC 2.0 request (or batch) per line, UTF-8 encoded")
        .with_rpc_code(protocol::error::PARSE_ERROR)
}

pub fn invalid_request(detail: &str) -> ApiError {
    ApiError::validation("invalid_request", format!("invalid request: {detail}"))
        .with_hint(r#"a request looks like {"jsonrpc":"2.0","id":1,"method":"daemon.version"}"#)
        .with_rpc_code(protocol::error::INVALID_REQUEST)
}
