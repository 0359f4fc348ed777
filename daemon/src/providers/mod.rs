//! The one module that knows the OpenAI API over HTTP (and OpenAI-compatible servers): checking an
//! account (`GET /models`), reading model shutdown dates, and the image calls
//! (`POST /images/edits` with input images, `POST /images/generations` without).
//!
//! An image call answers [`Generated`] or a [`CallError`] that says whether the provider can have
//! billed it, which is what the runner needs to never pay twice.
//!
//! Every text that comes back from a provider (error messages, request ids, model lists) passes
//! through the [`Scrubber`] before it leaves this module, so a provider that echoes the key (or
//! any other secret kromad holds) cannot get it stored, logged or shown.

pub mod image_models;

use std::time::{Duration, Instant};

use kroma_protocol as protocol;
use protocol::ErrorCode;
use protocol::provider::{CheckResult, CheckStatus};
use secrecy::{ExposeSecret, SecretString};

use crate::error::Hint;
use crate::secrets::Scrubber;

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
/// `secret` names the secret that holds `key`, for the hint when the key is refused.
pub async fn check(
    http: &reqwest::Client,
    account: &Account<'_>,
    secret: &str,
    key: &SecretString,
    scrubber: &Scrubber,
) -> CheckResult {
    scrubber.remember(key.expose_secret());
    let mut result = check_unscrubbed(http, account, secret, key).await;
    result.message = scrubber.scrub(&result.message);
    result
}

async fn check_unscrubbed(
    http: &reqwest::Client,
    account: &Account<'_>,
    secret: &str,
    key: &SecretString,
) -> CheckResult {
    let started = Instant::now();
    let (url, request) = models_request(http, account, key);
    let result = |status: CheckStatus, message: String, hint: Option<Hint>, models: Option<u32>| {
        let (hint, action) = Hint::parts(hint);
        CheckResult {
            name: account.name.to_owned(),
            ok: status == CheckStatus::Ok,
            status,
            message,
            hint,
            action,
            models,
            elapsed_ms: started.elapsed().as_millis() as u64,
        }
    };
    // Most failures are fixed by another base URL.
    let fix_base_url = |text: &str| {
        Hint::new(
            text,
            protocol::Action::call::<protocol::provider::Update>(
                [("name", account.name.into())],
                &["base_url"],
            ),
        )
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
                Some(fix_base_url(
                    "check the network and the provider's base URL",
                )),
                None,
            );
        }
    };
    let status = response.status();
    if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
        return result(
            CheckStatus::InvalidKey,
            format!("{url} refused the key ({status})"),
            Some(Hint::new(
                format!("store the right key in secret `{secret}`, then check again"),
                protocol::Action::call::<protocol::secret::Set>([("name", secret.into())], &[]),
            )),
            None,
        );
    }
    if status == reqwest::StatusCode::NOT_FOUND {
        return result(
            CheckStatus::WrongBaseUrl,
            format!("{url} does not exist ({status})"),
            Some(fix_base_url(
                "the base URL usually ends in /v1, e.g. https://api.openai.com/v1",
            )),
            None,
        );
    }
    if !status.is_success() {
        return result(
            CheckStatus::Error,
            format!("{url} answered {status}"),
            Some("the provider may be down or rate limiting; try again later".into()),
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
            Some(fix_base_url(
                "check the base URL: it must point at an OpenAI-compatible API",
            )),
            None,
        ),
    }
}

/// The code of a refusal (a 4xx other than 429) and what to do about it. The call's run and the
/// provider's secret are the runner's to know, so the action leaves them to `needs`.
fn rejected(status: reqwest::StatusCode) -> (ErrorCode, Hint) {
    use protocol::Action;
    match status.as_u16() {
        401 | 403 => (
            ErrorCode::ProviderAuth,
            Hint::new(
                "the provider refused the key: store the right key in the provider's secret, \
                 check the provider, then retry the run",
                Action::call::<protocol::secret::Set>([], &["name"]),
            ),
        ),
        404 => (
            ErrorCode::ProviderNotFound,
            Hint::new(
                "check the model name and the provider's base URL",
                Action::call::<protocol::image_model::List>([], &[]),
            ),
        ),
        _ => (
            ErrorCode::ProviderRejected,
            Hint::new(
                "the provider refused the request; fix what it names, then retry the run",
                Action::call::<protocol::run::Retry>([], &["run", "confirm_cost_usd"]),
            ),
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

/// `GET {base_url}/models` with the account's key and organization.
fn models_request(
    http: &reqwest::Client,
    account: &Account<'_>,
    key: &SecretString,
) -> (String, reqwest::RequestBuilder) {
    let url = format!("{}/models", account.base_url.trim_end_matches('/'));
    let mut request = http
        .get(&url)
        .bearer_auth(key.expose_secret())
        .timeout(CHECK_TIMEOUT);
    if let Some(organization) = account.organization {
        request = request.header("OpenAI-Organization", organization);
    }
    (url, request)
}

/// Model ids and shutdown dates (`YYYY-MM-DD`) from `GET /models`. OpenAI reports
/// `shutdown_date` on models that are being retired; other servers may report nothing.
pub async fn list_models(
    http: &reqwest::Client,
    account: &Account<'_>,
    key: &SecretString,
    scrubber: &Scrubber,
) -> Result<Vec<(String, Option<String>)>, String> {
    scrubber.remember(key.expose_secret());
    match list_models_unscrubbed(http, account, key).await {
        Ok(models) => Ok(models
            .into_iter()
            .map(|(id, date)| (scrubber.scrub(&id), date))
            .collect()),
        Err(err) => Err(scrubber.scrub(&err)),
    }
}

async fn list_models_unscrubbed(
    http: &reqwest::Client,
    account: &Account<'_>,
    key: &SecretString,
) -> Result<Vec<(String, Option<String>)>, String> {
    let (url, request) = models_request(http, account, key);
    let response = request
        .send()
        .await
        .map_err(|err| format!("cannot reach {url}: {}", error_chain(&err)))?;
    if !response.status().is_success() {
        return Err(format!("{url} answered {}", response.status()));
    }
    let list: ModelList = response
        .json()
        .await
        .map_err(|_| format!("{url} answered, but not with an OpenAI-style model list"))?;
    Ok(list
        .data
        .iter()
        .filter_map(|model| {
            let id = model.get("id")?.as_str()?.to_owned();
            let date = match model.get("shutdown_date") {
                Some(serde_json::Value::String(date)) => date.get(..10).map(str::to_owned),
                Some(serde_json::Value::Number(secs)) => secs
                    .as_i64()
                    .and_then(|secs| time::OffsetDateTime::from_unix_timestamp(secs).ok())
                    .map(|at| crate::clock::format(at)[..10].to_owned()),
                _ => None,
            };
            Some((id, date))
        })
        .collect())
}

/// One image to send with an edit call.
pub struct InputFile {
    pub file_name: String,
    pub bytes: Vec<u8>,
}

/// One image call.
pub struct ImageCall<'a> {
    pub base_url: &'a str,
    pub organization: Option<&'a str>,
    pub model: &'a str,
    pub prompt: &'a str,
    pub size: &'a str,
    pub quality: &'a str,
    /// Empty: `/images/generations`; else `/images/edits` with these as `image[]` parts.
    pub images: Vec<InputFile>,
    pub idempotency_key: &'a str,
    pub timeout: Duration,
}

/// A successful call: the decoded image and what the provider said about it.
#[derive(Debug)]
pub struct Generated {
    pub bytes: Vec<u8>,
    pub usage: Option<crate::providers::image_models::Usage>,
    pub request_id: Option<String>,
}

#[derive(Debug, Clone)]
pub enum CallError {
    /// The provider said "not now" (429, 5xx) or the request never left (connection refused):
    /// nothing was billed; worth another attempt after `retry_after` if given.
    Retry {
        message: String,
        retry_after: Option<Duration>,
    },
    /// The request may have reached the provider and got no answer in time (or the connection
    /// broke after sending): it may have been billed.
    Lost { message: String },
    /// The provider refused the request (4xx other than 429): not billed, and sending it again
    /// will not help.
    Rejected {
        message: String,
        code: ErrorCode,
        /// What to do, with its action: it reaches the candidate's error as it is.
        hint: Hint,
    },
    /// The provider answered 200 (and billed) but the answer is unusable.
    BadAnswer {
        message: String,
        usage: Option<crate::providers::image_models::Usage>,
        request_id: Option<String>,
    },
}

/// Most bytes of one answer (a 4096×4096 PNG in base64 is about 60 MB).
const MAX_ANSWER_BYTES: usize = 128 * 1024 * 1024;

/// Makes one image call. Never retries: the runner decides, from the error, whether to.
pub async fn generate(
    http: &reqwest::Client,
    call: ImageCall<'_>,
    key: &SecretString,
    scrubber: &Scrubber,
) -> Result<Generated, CallError> {
    scrubber.remember(key.expose_secret());
    let scrub_id = |id: Option<String>| id.map(|id| scrubber.scrub(&id));
    match generate_unscrubbed(http, call, key).await {
        Ok(generated) => Ok(Generated {
            request_id: scrub_id(generated.request_id),
            ..generated
        }),
        Err(CallError::Retry {
            message,
            retry_after,
        }) => Err(CallError::Retry {
            message: scrubber.scrub(&message),
            retry_after,
        }),
        Err(CallError::Lost { message }) => Err(CallError::Lost {
            message: scrubber.scrub(&message),
        }),
        Err(CallError::Rejected {
            message,
            code,
            hint,
        }) => Err(CallError::Rejected {
            message: scrubber.scrub(&message),
            code,
            hint,
        }),
        Err(CallError::BadAnswer {
            message,
            usage,
            request_id,
        }) => Err(CallError::BadAnswer {
            message: scrubber.scrub(&message),
            usage,
            request_id: scrub_id(request_id),
        }),
    }
}

async fn generate_unscrubbed(
    http: &reqwest::Client,
    call: ImageCall<'_>,
    key: &SecretString,
) -> Result<Generated, CallError> {
    let base = call.base_url.trim_end_matches('/');
    let mut request = if call.images.is_empty() {
        http.post(format!("{base}/images/generations"))
            .json(&serde_json::json!({
                "model": call.model,
                "prompt": call.prompt,
                "size": call.size,
                "quality": call.quality,
                "output_format": "png",
                "n": 1,
            }))
    } else {
        let mut form = reqwest::multipart::Form::new()
            .text("model", call.model.to_owned())
            .text("prompt", call.prompt.to_owned())
            .text("size", call.size.to_owned())
            .text("quality", call.quality.to_owned())
            .text("output_format", "png")
            .text("input_fidelity", "high");
        for image in call.images {
            let mime = mime_of(&image.file_name);
            let part = reqwest::multipart::Part::bytes(image.bytes)
                .file_name(image.file_name)
                .mime_str(mime)
                .map_err(|err| CallError::Rejected {
                    message: format!("cannot attach an input image: {err}"),
                    code: ErrorCode::BadInput,
                    hint: "check the input image files".into(),
                })?;
            form = form.part("image[]", part);
        }
        http.post(format!("{base}/images/edits")).multipart(form)
    };
    request = request
        .bearer_auth(key.expose_secret())
        .header("Idempotency-Key", call.idempotency_key)
        .timeout(call.timeout);
    if let Some(organization) = call.organization {
        request = request.header("OpenAI-Organization", organization);
    }
    let response = match request.send().await {
        Ok(response) => response,
        Err(err) if err.is_connect() => {
            return Err(CallError::Retry {
                message: format!("cannot reach {base}: {}", error_chain(&err)),
                retry_after: None,
            });
        }
        Err(err) if err.is_timeout() => {
            return Err(CallError::Lost {
                message: format!("{base} did not answer within {} s", call.timeout.as_secs()),
            });
        }
        Err(err) => {
            return Err(CallError::Lost {
                message: format!("the call to {base} broke off: {}", error_chain(&err)),
            });
        }
    };
    let status = response.status();
    let request_id = response
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<f64>().ok())
        .filter(|secs| secs.is_finite() && *secs >= 0.0)
        .map(|secs| Duration::from_secs_f64(secs.min(3600.0)));
    let body = match read_capped(response).await {
        Ok(body) => body,
        Err(err) if status.is_success() => {
            return Err(CallError::Lost {
                message: format!("the answer from {base} broke off: {err}"),
            });
        }
        Err(_) => Vec::new(),
    };
    if !status.is_success() {
        let detail = error_message(&body).unwrap_or_else(|| format!("HTTP {status}"));
        if status == reqwest::StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            return Err(CallError::Retry {
                message: format!("{base} answered {status}: {detail}"),
                retry_after,
            });
        }
        let (code, hint) = rejected(status);
        return Err(CallError::Rejected {
            message: format!("{base} answered {status}: {detail}"),
            code,
            hint,
        });
    }
    let answer: ImageAnswer = match serde_json::from_slice(&body) {
        Ok(answer) => answer,
        Err(err) => {
            return Err(CallError::BadAnswer {
                message: format!(
                    "{base} answered 200 with a body that is not the expected JSON: {err}"
                ),
                usage: None,
                request_id,
            });
        }
    };
    let usage = answer.usage.as_ref().map(ImageUsage::tokens);
    let Some(b64) = answer
        .data
        .first()
        .and_then(|item| item.b64_json.as_deref())
    else {
        return Err(CallError::BadAnswer {
            message: format!("{base} answered 200 without an image (no data[0].b64_json)"),
            usage,
            request_id,
        });
    };
    use base64::Engine as _;
    match base64::engine::general_purpose::STANDARD.decode(b64.trim()) {
        Ok(bytes) => Ok(Generated {
            bytes,
            usage,
            request_id,
        }),
        Err(err) => Err(CallError::BadAnswer {
            message: format!("{base} answered 200 with an image that is not valid base64: {err}"),
            usage,
            request_id,
        }),
    }
}

async fn read_capped(mut response: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|err| error_chain(&err))? {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(format!(
                "the answer is larger than {MAX_ANSWER_BYTES} bytes"
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The `error.message` of an OpenAI error body, if it is one.
fn error_message(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let message = value.get("error")?.get("message")?.as_str()?;
    Some(message.chars().take(500).collect())
}

fn mime_of(file_name: &str) -> &'static str {
    let extension = file_name
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .unwrap_or_default();
    match extension.as_str() {
        "png" => "image/png",
        "webp" => "image/webp",
        "jpg" | "jpeg" => "image/jpeg",
        _ => "application/octet-stream",
    }
}

#[derive(serde::Deserialize)]
struct ImageAnswer {
    #[serde(default)]
    data: Vec<ImageItem>,
    #[serde(default)]
    usage: Option<ImageUsage>,
}

#[derive(serde::Deserialize)]
struct ImageItem {
    #[serde(default)]
    b64_json: Option<String>,
}

#[derive(serde::Deserialize)]
struct ImageUsage {
    #[serde(default)]
    input_tokens: u64,
    #[serde(default)]
    input_tokens_details: Option<InputTokens>,
    #[serde(default)]
    output_tokens: u64,
}

#[derive(serde::Deserialize)]
struct InputTokens {
    #[serde(default)]
    text_tokens: u64,
    #[serde(default)]
    image_tokens: u64,
}

impl ImageUsage {
    fn tokens(&self) -> crate::providers::image_models::Usage {
        match &self.input_tokens_details {
            Some(details) => crate::providers::image_models::Usage {
                text_input: details.text_tokens,
                image_input: details.image_tokens,
                output: self.output_tokens,
            },
            // Without the split, count every input token at the (higher) image rate.
            None => crate::providers::image_models::Usage {
                text_input: 0,
                image_input: self.input_tokens,
                output: self.output_tokens,
            },
        }
    }
}
