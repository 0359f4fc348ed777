//! MCP over streamable HTTP (`kroma-mcp --http ADDR`): rmcp's `StreamableHttpService` under axum
//! at `/mcp`, behind a bearer token. Loopback addresses only unless the person passes `--bind`;
//! `Host` must name the address served (rmcp's check, against DNS rebinding); any `Origin`
//! header is refused (browsers send one, agent hosts do not; rmcp leaves this check off unless
//! asked); request bodies are bounded. Every refusal is put in kromad's audit log
//! ([`crate::refusals`]).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;

use kroma_protocol::audit::{HttpRefusal, Refusal};

use crate::server::KromaServer;
use crate::token::BearerToken;

/// The client name refusals of HTTP requests are audited under: no MCP client has spoken yet.
pub const REFUSED_CLIENT: &str = "refused HTTP request";

/// The path MCP is served at.
pub const MCP_PATH: &str = "/mcp";
/// The largest request body accepted.
pub const MAX_REQUEST_BYTES: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum AddressError {
    #[error("{0} is not a loopback address: other machines could reach it; pass --bind to mean it")]
    NotLoopback(SocketAddr),
}

/// Refuses an address other machines can reach, unless `allow_non_loopback`.
pub fn check_address(address: SocketAddr, allow_non_loopback: bool) -> Result<(), AddressError> {
    if address.ip().is_loopback() || allow_non_loopback {
        Ok(())
    } else {
        Err(AddressError::NotLoopback(address))
    }
}

/// Serves `server` on `listener` until `shutdown` is cancelled.
pub async fn serve(
    server: KromaServer,
    listener: tokio::net::TcpListener,
    token: BearerToken,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let address = listener.local_addr()?;
    let mut hosts = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    if !address.ip().is_loopback() && !address.ip().is_unspecified() {
        hosts.push(address.ip().to_string());
    }
    let config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(hosts)
        .with_allowed_origins(Vec::<String>::new())
        .enforce_origin_validation()
        .with_max_request_body_bytes(MAX_REQUEST_BYTES)
        .with_cancellation_token(shutdown.child_token());
    let guard = Arc::new(Guard {
        token,
        server: server.clone(),
    });
    let service = StreamableHttpService::new(
        move || Ok(server.clone()),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let router = axum::Router::new()
        .route_service(MCP_PATH, service)
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&guard),
            record_refusals,
        ))
        .layer(axum::middleware::from_fn_with_state(guard, require_token));
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

/// What the HTTP layers need: the token, and the server whose kromad connection audits.
struct Guard {
    token: BearerToken,
    server: KromaServer,
}

/// Lets a request through only with `Authorization: Bearer <the token>`.
async fn require_token(State(guard): State<Arc<Guard>>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(|value| value.as_bytes().strip_prefix(b"Bearer "));
    let reason = match presented {
        Some(Some(presented)) if guard.token.matches(presented) => {
            return next.run(request).await;
        }
        Some(_) => HttpRefusal::WrongToken,
        None => HttpRefusal::NoToken,
    };
    guard
        .server
        .put_on_record(REFUSED_CLIENT, Refusal::Http { reason })
        .await;
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))],
        "missing or wrong bearer token",
    )
        .into_response()
}

/// Puts on record the requests rmcp refuses: a foreign `Host` or any `Origin` (403, told apart
/// by rmcp's short message) and a body above the bound (413).
async fn record_refusals(
    State(guard): State<Arc<Guard>>,
    request: Request,
    next: Next,
) -> Response {
    let response = next.run(request).await;
    let (response, reason) = match response.status() {
        StatusCode::PAYLOAD_TOO_LARGE => (response, HttpRefusal::BodyTooLarge),
        StatusCode::FORBIDDEN => {
            let (parts, body) = response.into_parts();
            let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
            let reason = forbidden_reason(&text);
            (Response::from_parts(parts, Body::from(text)), reason)
        }
        _ => return response,
    };
    guard
        .server
        .put_on_record(REFUSED_CLIENT, Refusal::Http { reason })
        .await;
    response
}

/// Which check refused a request rmcp answered 403: its message names the header.
fn forbidden_reason(message: &[u8]) -> HttpRefusal {
    if message.windows(4).any(|word| word == b"Host") {
        HttpRefusal::ForeignHost
    } else {
        HttpRefusal::ForeignOrigin
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rmcp_refusals_are_told_apart_by_their_message() {
        // rmcp 3.11's messages (pinned: a change shows here and in tests/e2e/mcp/http.rs).
        for (message, reason) in [
            (
                "Forbidden: Host header is not allowed",
                HttpRefusal::ForeignHost,
            ),
            (
                "Forbidden: Origin header is not allowed",
                HttpRefusal::ForeignOrigin,
            ),
            (
                "Forbidden: Invalid Origin header",
                HttpRefusal::ForeignOrigin,
            ),
        ] {
            assert_eq!(forbidden_reason(message.as_bytes()), reason, "{message}");
        }
    }

    #[test]
    fn only_loopback_addresses_pass_without_bind() {
        let address = |text: &str| text.parse::<SocketAddr>().expect("an address");
        for loopback in ["127.0.0.1:8765", "[::1]:0", "127.0.0.2:1"] {
            assert!(
                check_address(address(loopback), false).is_ok(),
                "{loopback}"
            );
        }
        for open in ["0.0.0.0:8765", "192.168.1.5:80", "[::]:1"] {
            let err = check_address(address(open), false).unwrap_err();
            assert!(err.to_string().contains("pass --bind"), "{err}");
            assert!(check_address(address(open), true).is_ok());
        }
    }
}
