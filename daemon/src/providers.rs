//! The one module that knows the OpenAI API over HTTP (and OpenAI-compatible servers). For now:
//! checking an account with one cheap authenticated call, `GET {base_url}/models`.

use std::time::{Duration, Instant};

use kroma_protocol as protocol;
use protocol::provider::{CheckResult, CheckStatus};
use secrecy::{ExposeSecret, SecretString};

/// How long a check may take before it counts as "no network".
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything a check needs about the account.
pub struct Account<'a> {
    pub name: &'a str,
    pub base_url: &'a str,
    pub organization: Option<&'a str>,
}

#[derive(serde::Deserialize)]
struct ModelList {
    data: Vec<serde_json::Value>,
}

/// Lists the models the key can see and turns every way this can fail into a status with a hint.
pub async fn check(
    http: &reqwest::Client,
    account: &Account<'_>,
    key: &SecretString,
) -> CheckResult {
    let started = Instant::now();
    let url = format!("{}/models", account.base_url.trim_end_matches('/'));
    let mut request = http
        .get(&url)
        .bearer_auth(key.expose_secret())
        .timeout(CHECK_TIMEOUT);
    if let Some(organization) = account.organization {
        request = request.header("OpenAI-Organization", organization);
    }
    let result = |status: CheckStatus, message: String, hint: Option<&str>, models: Option<u32>| {
        CheckResult {
            name: account.name.to_owned(),
            ok: status == CheckStatus::Ok,
            status,
            message,
            hint: hint.map(str::to_owned),
            models,
            elapsed_ms: started.elapsed().as_millis() as u64,
        }
    };
    let response = match request.send().await {
        Ok(response) => response,
        Err(err) => {
            let what = if err.is_timeout() {
                format!("{url} did not answer within {} s", CHECK_TIMEOUT.as_secs())
            } else {
                // The error chain names the cause (DNS, refused, TLS) but never the key.
                format!("cannot reach {url}: {}", error_chain(&err))
            };
            return result(
                CheckStatus::NoNetwork,
                what,
                Some(
                    "check the network and the base URL (kromactl provider update NAME --base-url URL)",
                ),
                None,
            );
        }
    };
    let status = response.status();
    if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
        return result(
            CheckStatus::InvalidKey,
            format!("{url} refused the key ({status})"),
            Some("store the right key with `kromactl secret set NAME`, then check again"),
            None,
        );
    }
    if status == reqwest::StatusCode::NOT_FOUND {
        return result(
            CheckStatus::WrongBaseUrl,
            format!("{url} does not exist ({status})"),
            Some("the base URL usually ends in /v1, e.g. https://api.openai.com/v1"),
            None,
        );
    }
    if !status.is_success() {
        return result(
            CheckStatus::Error,
            format!("{url} answered {status}"),
            Some("the provider may be down or rate limiting; try again later"),
            None,
        );
    }
    match response.json::<ModelList>().await {
        Ok(list) => result(
            CheckStatus::Ok,
            format!("the key works: {} models visible", list.data.len()),
            None,
            Some(list.data.len() as u32),
        ),
        Err(_) => result(
            CheckStatus::WrongBaseUrl,
            format!("{url} answered, but not with an OpenAI-style model list"),
            Some("check the base URL: it must point at an OpenAI-compatible API"),
            None,
        ),
    }
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
