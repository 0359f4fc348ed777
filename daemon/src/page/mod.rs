//! The confirmation pages: `http://127.0.0.1:PORT/confirm/<page id>`, served on loopback only.
//! A person reads an instruction's plan (scenes as thumbnails, prompts, model, candidates, the
//! maximum cost) and presses Confirm or Decline. This is the page an MCP URL-mode elicitation
//! opens; it is a channel the agent does not drive only as far as the agent cannot run a browser
//! on this machine (see the README's known limits).
//!
//! GET never changes anything. The form posts back a single-use token that is made anew each
//! time the instruction starts waiting; the POST must come from the page's own origin (`Origin`
//! is required and checked) and name this server in `Host` (no DNS rebinding). Bodies are
//! bounded. Every POST, approved or refused, is in the audit log.

mod limit;
mod render;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Form, Router};
use kroma_protocol as protocol;
use protocol::instruction::{Approval, InstructionState};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::Daemon;
use crate::error::Problem;
use crate::instructions::state::Step;
use crate::instructions::{self, apply, code};
use crate::store::instructions::{self as rows, Change, InstructionRow};
use crate::store::{self, NewAuditEntry};

/// Largest form body accepted: a token and a word.
const MAX_BODY_BYTES: usize = 4096;

#[derive(Clone)]
struct PageState {
    daemon: Arc<Daemon>,
    addr: SocketAddr,
}

/// Serves the pages until `stop` is cancelled.
pub async fn serve(
    daemon: Arc<Daemon>,
    listener: tokio::net::TcpListener,
    stop: CancellationToken,
) {
    let addr = match listener.local_addr() {
        Ok(addr) => addr,
        Err(err) => {
            tracing::error!(%err, "the confirmation page listener has no address");
            return;
        }
    };
    let app = Router::new()
        .route("/confirm/{page}", get(show).post(decide))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(PageState { daemon, addr });
    tracing::info!(%addr, "serving confirmation pages");
    let listener = limit::Limited::new(listener, limit::MAX_CONNECTIONS);
    if let Err(err) = axum::serve(listener, app)
        .with_graceful_shutdown(stop.cancelled_owned())
        .await
    {
        tracing::error!(%err, "the confirmation page server stopped");
    }
}

/// The names this server answers to in `Host`, and the origins its own pages post from.
fn own_hosts(addr: SocketAddr) -> Vec<String> {
    let port = addr.port();
    let mut hosts = vec![format!("localhost:{port}")];
    hosts.push(match addr {
        SocketAddr::V4(v4) => format!("{}:{port}", v4.ip()),
        SocketAddr::V6(v6) => format!("[{}]:{port}", v6.ip()),
    });
    hosts
}

fn host_is_ours(headers: &HeaderMap, addr: SocketAddr) -> bool {
    headers
        .get(header::HOST)
        .and_then(|host| host.to_str().ok())
        .is_some_and(|host| {
            own_hosts(addr)
                .iter()
                .any(|own| own.eq_ignore_ascii_case(host))
        })
}

fn origin_is_ours(headers: &HeaderMap, addr: SocketAddr) -> bool {
    headers
        .get(header::ORIGIN)
        .and_then(|origin| origin.to_str().ok())
        .is_some_and(|origin| {
            own_hosts(addr)
                .iter()
                .any(|own| origin.eq_ignore_ascii_case(&format!("http://{own}")))
        })
}

async fn show(
    State(state): State<PageState>,
    Path(page): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !host_is_ours(&headers, state.addr) {
        return plain(
            StatusCode::MISDIRECTED_REQUEST,
            "this server answers only to its own address",
        );
    }
    match load(&state.daemon, &page).await {
        Ok(Some(row)) => match render::page(&state.daemon, &row, None).await {
            Ok(html) => page_response(StatusCode::OK, html),
            Err(err) => plain(StatusCode::INTERNAL_SERVER_ERROR, &err.message),
        },
        Ok(None) => plain(StatusCode::NOT_FOUND, "no such confirmation page"),
        Err(err) => plain(StatusCode::INTERNAL_SERVER_ERROR, &err.message),
    }
}

#[derive(Debug, Deserialize)]
struct Decision {
    token: String,
    decision: String,
}

/// What a POST came to.
enum Verdict {
    Approved(String),
    Declined(String),
    Refused(StatusCode, &'static str, String),
}

async fn decide(
    State(state): State<PageState>,
    Path(page): Path<String>,
    headers: HeaderMap,
    form: Result<Form<Decision>, axum::extract::rejection::FormRejection>,
) -> Response {
    let daemon = &state.daemon;
    let verdict = if !host_is_ours(&headers, state.addr) {
        Verdict::Refused(
            StatusCode::MISDIRECTED_REQUEST,
            "foreign_host",
            "this server answers only to its own address".to_owned(),
        )
    } else if !origin_is_ours(&headers, state.addr) {
        Verdict::Refused(
            StatusCode::FORBIDDEN,
            "foreign_origin",
            "the confirmation must come from the page itself".to_owned(),
        )
    } else {
        match form {
            Err(_) => Verdict::Refused(
                StatusCode::BAD_REQUEST,
                "bad_form",
                "the form is not one this page sends".to_owned(),
            ),
            Ok(Form(decision)) => match judge(daemon, &page, decision).await {
                Ok(verdict) => verdict,
                Err(err) => return plain(StatusCode::INTERNAL_SERVER_ERROR, &err.message),
            },
        }
    };
    let (method, outcome, instruction) = match &verdict {
        Verdict::Approved(id) => ("page.confirm", "ok", Some(id.clone())),
        Verdict::Declined(id) => ("page.decline", "ok", Some(id.clone())),
        Verdict::Refused(_, code, _) => ("page.confirm", *code, None),
    };
    audit(daemon, method, &page, outcome).await;
    match verdict {
        Verdict::Approved(id) => {
            if let Err(err) = instructions::execute(daemon.clone(), id.clone()).await {
                tracing::error!(instruction = %id, message = %err.message, "could not carry out the instruction");
            }
            result(
                daemon,
                instruction.as_deref(),
                "Confirmed: the work has started.",
            )
            .await
        }
        Verdict::Declined(_) => {
            result(
                daemon,
                instruction.as_deref(),
                "Declined: nothing will be spent.",
            )
            .await
        }
        Verdict::Refused(status, _, message) => plain(status, &message),
    }
}

/// Checks the token and moves the instruction in one transaction.
async fn judge(daemon: &Arc<Daemon>, page: &str, decision: Decision) -> Result<Verdict, Problem> {
    let page = page.to_owned();
    let at = daemon.clock.now();
    let today = daemon.clock.today();
    daemon
        .store
        .write(move |tx| {
            let Some(row) = rows::by_page(tx, &page)? else {
                return Ok((
                    Verdict::Refused(StatusCode::NOT_FOUND, "not_found", "no such confirmation page".to_owned()),
                    Vec::new(),
                ));
            };
            let token_ok = row.state()? == InstructionState::AwaitingConfirmation
                && row
                    .page_token
                    .as_deref()
                    .is_some_and(|token| code::same_hash(token, &decision.token));
            if !token_ok {
                return Ok((
                    Verdict::Refused(
                        StatusCode::CONFLICT,
                        "stale_page",
                        "this page was already used, or the instruction changed since it was shown: reload it".to_owned(),
                    ),
                    Vec::new(),
                ));
            }
            let (step, change, verdict) = match decision.decision.as_str() {
                "confirm" => (
                    Step::Approve,
                    instructions::approved(Approval::Page, row.max_cost_usd, &today),
                    Verdict::Approved(row.id.clone()),
                ),
                "decline" => (Step::Cancel, Change::default(), Verdict::Declined(row.id.clone())),
                _ => {
                    return Ok((
                        Verdict::Refused(StatusCode::BAD_REQUEST, "bad_form", "the form is not one this page sends".to_owned()),
                        Vec::new(),
                    ));
                }
            };
            let reason = matches!(verdict, Verdict::Declined(_)).then_some("declined on the confirmation page");
            let (_, event) = apply(tx, &row.id, step, &change, reason, &at)?;
            Ok::<_, Problem>((verdict, vec![event]))
        })
        .await
}

async fn load(daemon: &Daemon, page: &str) -> Result<Option<InstructionRow>, Problem> {
    let page = page.to_owned();
    Ok(daemon
        .store
        .read(move |conn| rows::by_page(conn, &page))
        .await?)
}

async fn result(daemon: &Arc<Daemon>, id: Option<&str>, message: &str) -> Response {
    let Some(id) = id else {
        return plain(StatusCode::OK, message);
    };
    let id = id.to_owned();
    let row = daemon.store.read(move |conn| rows::get(conn, &id)).await;
    match row {
        Ok(Some(row)) => match render::page(daemon, &row, Some(message)).await {
            Ok(html) => page_response(StatusCode::OK, html),
            Err(_) => plain(StatusCode::OK, message),
        },
        _ => plain(StatusCode::OK, message),
    }
}

/// The audit entry of a POST: the page is the channel; there is no uid to tell.
async fn audit(daemon: &Daemon, method: &'static str, page: &str, outcome: &str) {
    let entry = NewAuditEntry {
        at: daemon.clock.now(),
        peer_uid: None,
        client: "confirmation page".to_owned(),
        method,
        params_digest: store::params_digest(
            Some(&serde_json::json!({ "page": page }).to_string()),
            &[],
        ),
        outcome: outcome.to_owned(),
    };
    let written = daemon
        .store
        .write(move |tx| {
            store::insert_audit(tx, &entry)?;
            Ok::<_, store::StoreError>(((), Vec::new()))
        })
        .await;
    if let Err(err) = written {
        tracing::error!(%err, "could not audit a confirmation page answer");
    }
}

/// Headers every answer carries: nothing cached, framed or loaded from elsewhere, no referrer
/// to other sites. (`no-referrer` would make browsers send `Origin: null` with the form, which the
/// origin check refuses.)
fn harden(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; img-src data:; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
}

fn page_response(status: StatusCode, html: String) -> Response {
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html,
    )
        .into_response();
    harden(&mut response);
    response
}

fn plain(status: StatusCode, message: &str) -> Response {
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{message}\n"),
    )
        .into_response();
    harden(&mut response);
    response
}
