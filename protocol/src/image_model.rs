//! `image_model.list`: the image models Kroma knows, their prices and their shutdown dates.
//!
//! Kroma ships a registry of known models; a provider's `GET /models` refreshes shutdown dates
//! where the provider reports them. Planning with a model past its shutdown date fails and names
//! the replacement.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Method;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Lifecycle {
    Active,
    /// Has a shutdown date in the future.
    Retiring,
    /// Past its shutdown date: planning refuses it.
    Retired,
}

/// USD for one output image of 1024×1024 at each quality; other sizes scale by pixel count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ImagePrices {
    pub low: f64,
    pub medium: f64,
    pub high: f64,
}

/// USD per million tokens, used to turn a response's `usage` into the actual cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TokenPrices {
    pub text_input: f64,
    pub image_input: f64,
    pub image_output: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ModelInfo {
    pub id: String,
    pub lifecycle: Lifecycle,
    /// `YYYY-MM-DD`, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shutdown_date: Option<String>,
    /// The model to use instead, when it is retiring or retired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replacement: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_prices: Option<ImagePrices>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_prices: Option<TokenPrices>,
    /// `builtin`, `settings` or `provider:<name>` (where the shutdown date came from).
    pub source: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Ask this provider account's `GET /models` first and store the shutdown dates it reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ModelList {
    pub models: Vec<ModelInfo>,
    /// Today's date (UTC) the lifecycles were judged against.
    pub today: String,
}

/// `image_model.list`.
pub enum List {}

impl Method for List {
    const NAME: &'static str = "image_model.list";
    const SUMMARY: &'static str =
        "List known image models with prices and shutdown dates (optionally refreshed)";
    const MUTATING: bool = false;
    const FOR_AGENTS: bool = true;
    type Params = ListParams;
    type Output = ModelList;
}
