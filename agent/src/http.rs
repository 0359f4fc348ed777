//! MCP over streamable HTTP (`kroma-mcp --http ADDR`): rmcp's `StreamableHttpService` under axum
//! at `/mcp`, behind a bearer token. Loopback addresses only unless the person passes `--bind`;
//! `Host` must name the address served (rmcp's check, against DNS rebinding); any `Origin`
//! header is refused (browsers send one, agent hosts do not; rmcp leaves this check off unless
//! asked); request bodies are bounded.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;

use crate::server::KromaServer;
use crate::token::BearerToken;

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
    let service = StreamableHttpService::new(
        move || Ok(server.clone()),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let router = axum::Router::new().route_service(MCP_PATH, service).layer(
        axum::middleware::from_fn_with_state(Arc::new(token), require_token),
    );
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

/// Lets a request through only with `Authorization: Bearer <the token>`.
async fn require_token(
    State(token): State<Arc<BearerToken>>,
    request: Request,
    next: Next,
) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.as_bytes().strip_prefix(b"Bearer "));
    match presented {
        Some(presented) if token.matches(presented) => next.run(request).await,
        _ => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))],
            "missing or wrong bearer token",
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
