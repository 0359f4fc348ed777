//! `cost.summary`: what was spent, from the cost events every provider call writes.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Method;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SummaryParams {
    /// Only this project (slug or UUID).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// Only events at or after this RFC 3339 time or `YYYY-MM-DD` date (UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CostLine {
    /// The project slug, model id or `YYYY-MM-DD` day the line is about.
    pub key: String,
    pub calls: u64,
    pub usd: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CostSummary {
    pub calls: u64,
    pub usd: f64,
    /// Of `usd`, how much came from the responses' `usage` (the rest is from the price table).
    pub usd_from_usage: f64,
    pub by_project: Vec<CostLine>,
    pub by_model: Vec<CostLine>,
    pub by_day: Vec<CostLine>,
    /// Reserved by runs still going: the most they can still spend.
    pub reserved_usd: f64,
}

/// `cost.summary`.
pub enum Summary {}

impl Method for Summary {
    const NAME: &'static str = "cost.summary";
    const SUMMARY: &'static str = "Sum recorded spend by project, model and day";
    const MUTATING: bool = false;
    const FOR_AGENTS: bool = true;
    type Params = SummaryParams;
    type Output = CostSummary;
}
