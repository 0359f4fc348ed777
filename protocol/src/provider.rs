//! `provider.*`: accounts at image APIs (OpenAI, or any OpenAI-compatible endpoint). An account
//! names the secret that holds its key; the key itself never passes through these methods.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{Method, NoParams};

/// The base URL of the OpenAI API.
pub const OPENAI_BASE_URL: &str = "https://api.openai.com/v1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    /// The OpenAI Images API.
    Openai,
    /// Any server that speaks the OpenAI API at its own base URL.
    OpenaiCompatible,
}

impl ProviderKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Openai => "openai",
            ProviderKind::OpenaiCompatible => "openai_compatible",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Provider {
    /// Short unique name, e.g. `openai`.
    pub name: String,
    pub kind: ProviderKind,
    /// API base URL, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    pub default_model: String,
    /// Sent as `OpenAI-Organization` when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<String>,
    /// The name of the secret that holds the API key (see `secret.*`).
    pub secret: String,
    /// The endpoint answers a repeated `Idempotency-Key` with the first answer and does not bill
    /// twice. Only then does Kroma re-send a call that may have reached the provider (after a
    /// timeout or a crash); otherwise such a candidate is marked `unknown`. OpenAI does not.
    pub honors_idempotency_key: bool,
    pub created_at: String,
    pub updated_at: String,
}

/// `provider.create`.
pub enum Create {}

impl Method for Create {
    const NAME: &'static str = "provider.create";
    const SUMMARY: &'static str = "Add a provider account (its key lives in a secret)";
    const MUTATING: bool = true;
    type Params = CreateParams;
    type Output = Provider;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateParams {
    /// `[a-z0-9][a-z0-9_-]{0,63}`.
    pub name: String,
    pub kind: ProviderKind,
    /// Defaults to the OpenAI API for `openai`; required for `openai_compatible`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// Defaults to `gpt-image-2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<String>,
    /// The secret holding the key; defaults to the provider's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// See [`Provider::honors_idempotency_key`]; default `false`.
    #[serde(default)]
    pub honors_idempotency_key: bool,
}

/// `provider.list`.
pub enum List {}

impl Method for List {
    const NAME: &'static str = "provider.list";
    const SUMMARY: &'static str = "List provider accounts";
    const MUTATING: bool = false;
    type Params = NoParams;
    type Output = ProviderList;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ProviderList {
    pub providers: Vec<Provider>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderRef {
    pub name: String,
}

/// `provider.get`.
pub enum Get {}

impl Method for Get {
    const NAME: &'static str = "provider.get";
    const SUMMARY: &'static str = "Show one provider account";
    const MUTATING: bool = false;
    type Params = ProviderRef;
    type Output = Provider;
}

/// `provider.update`.
pub enum Update {}

impl Method for Update {
    const NAME: &'static str = "provider.update";
    const SUMMARY: &'static str =
        "Change a provider account's base URL, default model, organization or secret";
    const MUTATING: bool = true;
    type Params = UpdateParams;
    type Output = Provider;
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateParams {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_model: Option<String>,
    /// An empty string removes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub honors_idempotency_key: Option<bool>,
}

/// `provider.delete`.
pub enum Delete {}

impl Method for Delete {
    const NAME: &'static str = "provider.delete";
    const SUMMARY: &'static str =
        "Delete a provider account (its secret is kept; needs confirm: true)";
    const MUTATING: bool = true;
    type Params = DeleteParams;
    type Output = Provider;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteParams {
    pub name: String,
    /// Must be `true`.
    pub confirm: bool,
}

/// `provider.check`: one cheap authenticated call (list models).
pub enum Check {}

impl Method for Check {
    const NAME: &'static str = "provider.check";
    const SUMMARY: &'static str =
        "Make one cheap authenticated call (list models) and say what is wrong, if anything";
    const MUTATING: bool = false;
    type Params = ProviderRef;
    type Output = CheckResult;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    Ok,
    /// The API refused the key (401/403).
    InvalidKey,
    /// The secret with the key is not set or the secret store does not answer.
    NoKey,
    /// The host could not be reached (DNS, refused connection, timeout, TLS).
    NoNetwork,
    /// Something answered, but not an OpenAI-style API (404, not JSON).
    WrongBaseUrl,
    /// Any other answer, e.g. a 5xx.
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CheckResult {
    pub name: String,
    pub ok: bool,
    pub status: CheckStatus,
    pub message: String,
    /// What to do about it: prose for people, naming no program.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// The hint's next step as data, as in an error's `data.action`; an action of a type a
    /// client does not know reads as absent.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::action::known"
    )]
    #[schemars(with = "Option<crate::Action>")]
    pub action: Option<crate::Action>,
    /// How many models the key can see, when the check passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub models: Option<u32>,
    pub elapsed_ms: u64,
}
