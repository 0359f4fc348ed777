//! A local stand-in for the OpenAI API on 127.0.0.1, for tests only: the paid remote API is the
//! one thing tests may not call. It speaks the real request and response shapes (bearer auth,
//! `GET /v1/models`, OpenAI error bodies) and counts the requests it gets.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;

/// A running stub; it stops when dropped.
pub struct OpenAiStub {
    pub addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    server: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
struct Stub {
    key: String,
    requests: Arc<AtomicUsize>,
}

impl OpenAiStub {
    /// Serves the OpenAI API accepting only `key`.
    pub async fn start(key: &str) -> OpenAiStub {
        let requests = Arc::new(AtomicUsize::new(0));
        let stub = Stub {
            key: key.to_owned(),
            requests: requests.clone(),
        };
        let app = axum::Router::new()
            .route("/v1/models", get(models))
            .with_state(stub);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind stub");
        let addr = listener.local_addr().expect("stub address");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        OpenAiStub {
            addr,
            requests,
            server,
        }
    }

    /// The base URL to configure, `http://127.0.0.1:<port>/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for OpenAiStub {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn models(
    State(stub): State<Stub>,
    headers: HeaderMap,
) -> (StatusCode, Json<serde_json::Value>) {
    stub.requests.fetch_add(1, Ordering::SeqCst);
    let authorized = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        == Some(stub.key.as_str());
    if !authorized {
        return (
            StatusCode::UNAUTHORIZED,
            Json(serde_json::json!({
                "error": {
                    "message": "Incorrect API key provided.",
                    "type": "invalid_request_error",
                    "param": null,
                    "code": "invalid_api_key"
                }
            })),
        );
    }
    (
        StatusCode::OK,
        Json(serde_json::json!({
            "object": "list",
            "data": [
                {"id": "gpt-image-1", "object": "model", "created": 1745517030, "owned_by": "system"},
                {"id": "dall-e-3", "object": "model", "created": 1698785189, "owned_by": "system"}
            ]
        })),
    )
}
