//! `run.approve`, `run.baselines`, `run.sheet`: a person reviewing a run's results (re-exported
//! from [`crate::run`]). Approving makes a candidate its scene's baseline, which later stages of
//! the scene start from; the contact sheet shows every candidate at a glance.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Method;
use crate::run::Baseline;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApproveParams {
    pub run: String,
    /// The job's key, e.g. `style_1_harbor`.
    pub job: String,
    /// The candidate's index (1-based); it may differ from the ranked winner.
    pub candidate: u32,
}

/// `run.approve`.
pub enum Approve {}

impl Method for Approve {
    const NAME: &'static str = "run.approve";
    const SUMMARY: &'static str =
        "Approve a candidate as its scene's baseline: later stages of the scene start from it";
    const MUTATING: bool = true;
    type Params = ApproveParams;
    type Output = Baseline;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BaselinesParams {
    /// Project slug or UUID.
    pub project: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BaselineList {
    pub baselines: Vec<Baseline>,
}

/// `run.baselines`.
pub enum Baselines {}

impl Method for Baselines {
    const NAME: &'static str = "run.baselines";
    const SUMMARY: &'static str = "List a project's approved scene baselines";
    const MUTATING: bool = false;
    const FOR_AGENTS: bool = true;
    type Params = BaselinesParams;
    type Output = BaselineList;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SheetParams {
    pub run: String,
    /// Thumbnail side in pixels, 64 to 512 (default 192).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumb: Option<u32>,
}

/// A contact sheet of a run: every job's candidates as labelled thumbnails.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Sheet {
    /// The PNG, base64.
    pub png_base64: String,
    pub width: u32,
    pub height: u32,
}

/// `run.sheet`.
pub enum RenderSheet {}

impl Method for RenderSheet {
    const NAME: &'static str = "run.sheet";
    const SUMMARY: &'static str = "Render a run's contact sheet: every candidate as a thumbnail with its verdict, chroma, drift, the winner and the approved baseline";
    const MUTATING: bool = false;
    const FOR_AGENTS: bool = true;
    type Params = SheetParams;
    type Output = Sheet;
}
