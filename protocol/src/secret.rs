//! `secret.*`: provider keys and other secrets. Values go in once through `secret.set` and never
//! come back out of any method; the daemon stores only names and where each value lives.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{Method, NoParams};

/// The rule a secret name follows.
pub const NAME_RULE: &str = "[A-Za-z0-9_.-]{1,64}";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SecretInfo {
    pub name: String,
    /// Where the value lives: `keyring`, `file` or `env`.
    pub store: String,
    /// When it was last set through kromad (absent for environment-only secrets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    /// A `KROMA_SECRET_<NAME>` variable overrides the stored value.
    pub env_override: bool,
}

/// `secret.set`: store a value. The value is never echoed, logged or audited.
pub enum Set {}

impl Method for Set {
    const NAME: &'static str = "secret.set";
    const SUMMARY: &'static str =
        "Store a secret value in the active secret store (never echoed back)";
    const MUTATING: bool = true;
    const SECRET_FIELDS: &'static [&'static str] = &["value"];
    type Params = SetParams;
    type Output = SecretInfo;
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetParams {
    pub name: String,
    pub value: String,
}

impl std::fmt::Debug for SetParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SetParams")
            .field("name", &self.name)
            .field("value", &"<redacted>")
            .finish()
    }
}

/// `secret.list`.
pub enum List {}

impl Method for List {
    const NAME: &'static str = "secret.list";
    const SUMMARY: &'static str =
        "List secret names, where they live and the active store (never values)";
    const MUTATING: bool = false;
    type Params = NoParams;
    type Output = SecretList;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SecretList {
    /// The store `secret.set` writes to, e.g. `keyring (Secret Service)`, with its state.
    pub store: StoreStatus,
    pub secrets: Vec<SecretInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StoreStatus {
    /// `keyring` or `file`.
    pub kind: String,
    /// Which keyring or file.
    pub detail: String,
    /// Whether it answers right now.
    pub available: bool,
    /// Why not, when it does not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// `secret.delete`.
pub enum Delete {}

impl Method for Delete {
    const NAME: &'static str = "secret.delete";
    const SUMMARY: &'static str = "Delete a stored secret (needs confirm: true)";
    const MUTATING: bool = true;
    type Params = DeleteParams;
    type Output = SecretInfo;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteParams {
    pub name: String,
    /// Must be `true`.
    pub confirm: bool,
}

/// `secret.test`: can kromad read the value?
pub enum Test {}

impl Method for Test {
    const NAME: &'static str = "secret.test";
    const SUMMARY: &'static str = "Check that kromad can read a secret (the value is not returned)";
    const MUTATING: bool = false;
    type Params = SecretRef;
    type Output = TestResult;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretRef {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TestResult {
    pub name: String,
    /// Where the value was read from.
    pub store: String,
    pub ok: bool,
    pub message: String,
}
