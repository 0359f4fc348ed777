//! `run.*`: planning, confirming, executing and recording generation runs.
//!
//! A run goes `run.plan` (pure: jobs, prompts, calls and the cost estimate) → `run.create` (the
//! plan persisted with an id and a run record; a dry run stops here) → `run.start` (the human
//! confirms the plan's maximum cost; the budgets are reserved; the daemon executes it in the
//! background, resumably) → `run.show` / `run.list` / events for progress → `run.cancel` or
//! `run.retry` when needed.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{ErrorData, Method};

pub use crate::review::{
    Approve, ApproveParams, BaselineList, Baselines, BaselinesParams, RenderSheet, Sheet,
    SheetParams,
};

/// Which pass of the staged workflow a run is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Lock the drawing style on the scenes.
    #[default]
    Style,
    /// Vary the time of day from an approved baseline.
    Time,
    /// Vary the weather (and time) from an approved baseline.
    Weather,
    /// Put characters, with their reference images, into the scenes.
    Character,
}

impl Stage {
    pub const fn as_str(self) -> &'static str {
        match self {
            Stage::Style => "style",
            Stage::Time => "time",
            Stage::Weather => "weather",
            Stage::Character => "character",
        }
    }
}

/// A prompt template to render into every job's prompt.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateUse {
    /// The template's UUID or name.
    pub name: String,
    /// Values for the template's own variables. `stage`, `time`, `weather`, `scene` and
    /// `characters` are filled in by the planner when the template declares them.
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
}

/// What to plan. Absent values come from the settings (`settings.effective`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanParams {
    /// Project slug or UUID.
    pub project: String,
    #[serde(default)]
    pub stage: Stage,
    /// Scenes, one job each: asset ids, or paths of image files or folders (walked recursively,
    /// sorted by name). Paths are imported as `input` assets when the run is created.
    pub scenes: Vec<String>,
    /// Style reference images: asset ids or reference-set names. Added to the style guide's own
    /// reference images.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub style_refs: Vec<String>,
    /// Characters (UUID or name) to put into every scene; `character` stage only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub characters: Vec<String>,
    /// The style guide (UUID or name); defaults to the project's default style guide, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub style_guide: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<TemplateUse>,
    /// `time` and `weather` stages: a `prompts.time_<time>` key, e.g. `day`, `night`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// `weather` stage: a `prompts.weather_<weather>` key, e.g. `clear`, `rain`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weather: Option<String>,
    /// Candidates per scene, 1 to `generation.max_candidates` (at most 6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidates: Option<u32>,
    /// Provider account name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// `WIDTHxHEIGHT`, e.g. `1024x1536`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    /// `low`, `medium` or `high`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<String>,
    /// Local steps after generation; absent fields come from the settings' `[postprocess]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postprocess: Option<PostprocessParams>,
}

/// The post-process chain of a run, in its fixed order: background removal → upscale → colour.
/// The other chain settings (models, matting, background colour) come from `[postprocess]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PostprocessParams {
    /// Remove the background of every generated image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bg_remove: Option<bool>,
    /// Upscale every generated image by 2 or 4; `0` turns the step off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upscale: Option<u32>,
    /// A colour profile for every generated image; `""` turns the step off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
}

/// Where an input image of a job comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum InputRole {
    Scene,
    Style,
    Character,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct InputImage {
    pub role: InputRole,
    /// The asset id, when the image is a project asset (always, once the run is created).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset: Option<String>,
    /// Absolute path of the file.
    pub path: String,
    /// Hex sha256 of the file, when it is a project asset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// The provider endpoint a job calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    /// `POST /images/edits` with the input images.
    Edits,
    /// `POST /images/generations`, prompt only.
    Generations,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PlannedJob {
    /// `<stage>_<n>_<scene stem>`, deterministic.
    pub key: String,
    /// The scene's file name.
    pub scene: String,
    pub prompt: String,
    /// Hex sha256 of the prompt, recorded in every output's provenance.
    pub prompt_sha256: String,
    /// The scene first (its approved baseline, in later stages), then style references, then
    /// character references.
    pub input_images: Vec<InputImage>,
    /// Later stages (time, weather, character): the approved baseline this job starts from;
    /// absent when the scene has none yet (the job starts from the scene itself, and the plan
    /// warns).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Baseline>,
    pub endpoint: Endpoint,
    pub candidates: u32,
    /// The most this job can cost, all candidates.
    pub max_cost_usd: f64,
}

/// Money, estimated before anything is spent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CostEstimate {
    /// Provider calls the run makes when nothing fails.
    pub calls: u32,
    /// The most one call can cost (output at the size and quality, plus its inputs).
    pub per_call_max_usd: f64,
    /// The most the run can cost; `run.start` must confirm at least this.
    pub max_usd: f64,
    /// Where the prices come from: `builtin:<model>` or `settings:pricing.<model>`.
    pub price_source: String,
}

/// Everything a run will do, decided before any spend. The same params and project knowledge
/// always give the same plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Plan {
    pub project: String,
    pub stage: Stage,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weather: Option<String>,
    /// The provider account name.
    pub provider: String,
    /// The provider's API base URL.
    pub base_url: String,
    pub model: String,
    pub size: String,
    pub quality: String,
    pub candidates: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub style_guide: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub characters: Vec<String>,
    pub jobs: Vec<PlannedJob>,
    pub cost: CostEstimate,
    /// The local steps each generated image goes through, in order, e.g. `["color:cold_rain"]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub postprocess: Vec<String>,
    /// The effective settings the plan was made with (`settings.effective` values).
    pub settings: serde_json::Value,
    /// Things the user should know, e.g. a model that shuts down soon.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// `run.plan`: the plan, computed and returned; nothing is stored or spent.
pub enum PlanRun {}

impl Method for PlanRun {
    const NAME: &'static str = "run.plan";
    const SUMMARY: &'static str =
        "Plan a run: jobs, composed prompts, provider calls and the cost estimate (no spend)";
    const MUTATING: bool = false;
    const FOR_AGENTS: bool = true;
    type Params = PlanParams;
    type Output = Plan;
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateParams {
    #[serde(flatten)]
    pub plan: PlanParams,
    /// Record the plan as a dry run that can never be started.
    #[serde(default)]
    pub dry_run: bool,
}

/// `run.create`.
pub enum Create {}

impl Method for Create {
    const NAME: &'static str = "run.create";
    const SUMMARY: &'static str =
        "Plan a run and store it with its run record, ready for run.start (or as a dry run)";
    const MUTATING: bool = true;
    type Params = CreateParams;
    type Output = RunDetail;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Created, waiting for `run.start`.
    Planned,
    /// A dry run: recorded, never executed.
    DryRun,
    /// Started; candidates are being generated.
    Running,
    /// Cancel asked; calls in flight are finishing.
    Canceling,
    /// Every candidate succeeded.
    Done,
    /// Some candidates succeeded, others failed, were canceled or are unknown.
    Partial,
    /// No candidate succeeded.
    Failed,
    /// Canceled before every job finished.
    Canceled,
}

impl RunStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            RunStatus::Planned => "planned",
            RunStatus::DryRun => "dry_run",
            RunStatus::Running => "running",
            RunStatus::Canceling => "canceling",
            RunStatus::Done => "done",
            RunStatus::Partial => "partial",
            RunStatus::Failed => "failed",
            RunStatus::Canceled => "canceled",
        }
    }

    /// Whether the run can still change without a new `run.start` or `run.retry`.
    pub const fn is_active(self) -> bool {
        matches!(self, RunStatus::Running | RunStatus::Canceling)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CandidateStatus {
    /// Not called yet.
    Planned,
    /// The paid call was (or was about to be) sent.
    Calling,
    /// The image is stored and recorded.
    Succeeded,
    /// The call failed; see the error.
    Failed,
    /// The daemon stopped during a call the provider may have billed; the result is lost. Check
    /// the provider's usage page; `run.retry` calls again (and may pay again).
    Unknown,
    /// Canceled before its call.
    Canceled,
}

impl CandidateStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            CandidateStatus::Planned => "planned",
            CandidateStatus::Calling => "calling",
            CandidateStatus::Succeeded => "succeeded",
            CandidateStatus::Failed => "failed",
            CandidateStatus::Unknown => "unknown",
            CandidateStatus::Canceled => "canceled",
        }
    }
}

/// One line of `run.list`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunSummary {
    pub id: String,
    /// Project slug.
    pub project: String,
    pub stage: Stage,
    pub status: RunStatus,
    pub model: String,
    pub jobs: u32,
    pub candidates: u32,
    pub succeeded: u32,
    pub failed: u32,
    pub max_cost_usd: f64,
    /// What was confirmed at `run.start` (and `run.retry`), summed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmed_cost_usd: Option<f64>,
    /// Recorded cost of the calls made so far.
    pub spent_usd: f64,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// The run record JSON, absolute path.
    pub record: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CandidateDetail {
    /// 1-based.
    pub index: u32,
    pub status: CandidateStatus,
    /// Calls sent for this candidate, retries included.
    pub attempts: u32,
    /// The generated image's asset id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset: Option<String>,
    /// Absolute path of the generated image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    /// The provider's request id, when it sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorData>,
    /// The post-process chain of a succeeded candidate: `pending`, `done` or `failed`; absent
    /// when the run has no chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postprocess: Option<String>,
    /// The chain's last output (an asset `derived_from` the generated image).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_asset: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_output: Option<String>,
    /// Why the chain failed; the generated image is kept either way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postprocess_error: Option<ErrorData>,
    /// The QA guard's verdict on the final output, once checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qa: Option<CandidateQa>,
}

/// The QA guard on one candidate's final output, and its drift from the job's baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CandidateQa {
    pub verdict: crate::qa::Verdict,
    /// The file checked (the chain's last output, or the generated image).
    pub checked: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chroma_delta: Option<f64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hard_fail_reasons: Vec<crate::qa::Reason>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub soft_warnings: Vec<crate::qa::Reason>,
    pub rank: crate::qa::Rank,
    /// Against the job's baseline, in later stages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift: Option<DriftScore>,
    /// Where a hard-failed output was moved (`archive/bad/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archived: Option<String>,
}

/// How far a candidate strays from its baseline: each 0 (same) to 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DriftScore {
    /// Edge-map distance: geometry and perspective changed.
    pub structure: f64,
    /// Colour-histogram distance.
    pub palette: f64,
    /// Above `qa.max_structure_drift` or `qa.max_palette_drift`: ranked below the others, and
    /// `run.retry` with `only_drifted` asks for it again.
    pub drifted: bool,
    /// The baseline's asset id.
    pub baseline_asset: String,
}

/// A scene's approved baseline: the image later stages of the scene start from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Baseline {
    /// The scene's asset id (the scene the job was planned from).
    pub scene_asset: String,
    /// The approved image's asset id (the candidate's final output).
    pub asset: String,
    /// Absolute path of the approved image.
    pub path: String,
    pub run: String,
    pub job: String,
    pub candidate: u32,
    pub stage: Stage,
    pub approved_at: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Planned,
    Running,
    /// At least one candidate succeeded and none is pending.
    Done,
    /// Nothing is pending and no candidate succeeded.
    Failed,
    /// Candidates succeeded, but every one failed the QA guard.
    FailedOutputGuard,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct JobDetail {
    pub key: String,
    pub status: JobStatus,
    pub candidates: Vec<CandidateDetail>,
    /// Checked candidates that did not fail hard, best first (reference §4.4, drift added).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ranking: Vec<u32>,
    /// The ranked winner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub winner: Option<u32>,
    /// Why the winner won, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// The baseline this job started from (later stages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Baseline>,
    /// The candidate a person approved as the scene's (current) baseline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved: Option<u32>,
}

/// A run with its plan and the state of every candidate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunDetail {
    pub run: RunSummary,
    pub plan: Plan,
    pub jobs: Vec<JobDetail>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunRef {
    /// The run's UUID.
    pub run: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StartParams {
    /// The id `run.create` answered with.
    pub plan_id: String,
    /// The most the human agrees to spend; must be at least the plan's `cost.max_usd`.
    pub confirm_cost_usd: f64,
}

/// `run.start`.
pub enum Start {}

impl Method for Start {
    const NAME: &'static str = "run.start";
    const SUMMARY: &'static str =
        "Start a created run after confirming its maximum cost; budgets are reserved first";
    const MUTATING: bool = true;
    type Params = StartParams;
    type Output = RunSummary;
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Only this project's runs (slug or UUID).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// Only runs in this status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<RunStatus>,
    /// At most this many, newest first (default 50, at most 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunList {
    pub runs: Vec<RunSummary>,
}

/// `run.list`.
pub enum List {}

impl Method for List {
    const NAME: &'static str = "run.list";
    const SUMMARY: &'static str = "List runs, newest first";
    const MUTATING: bool = false;
    const FOR_AGENTS: bool = true;
    type Params = ListParams;
    type Output = RunList;
}

/// `run.show`.
pub enum Show {}

impl Method for Show {
    const NAME: &'static str = "run.show";
    const SUMMARY: &'static str = "Show a run: its plan and every job and candidate";
    const MUTATING: bool = false;
    const FOR_AGENTS: bool = true;
    type Params = RunRef;
    type Output = RunDetail;
}

/// `run.cancel`.
pub enum Cancel {}

impl Method for Cancel {
    const NAME: &'static str = "run.cancel";
    const SUMMARY: &'static str =
        "Cancel a run between calls; calls in flight finish and are recorded";
    const MUTATING: bool = true;
    type Params = RunRef;
    type Output = RunSummary;
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryParams {
    pub run: String,
    /// Call again only `failed` candidates; otherwise also `unknown` and `canceled` ones. Failed
    /// post-process chains of succeeded candidates run again either way, at no cost.
    #[serde(default)]
    pub only_failed: bool,
    /// Call again only the candidates marked `drifted` (they succeeded: this pays again; their
    /// earlier outputs move to `archive/replaced/`).
    #[serde(default)]
    pub only_drifted: bool,
    /// The most the human agrees to spend on the retried calls.
    pub confirm_cost_usd: f64,
}

/// `run.retry`.
pub enum Retry {}

impl Method for Retry {
    const NAME: &'static str = "run.retry";
    const SUMMARY: &'static str =
        "Call again for the candidates that did not succeed (never for stored results)";
    const MUTATING: bool = true;
    type Params = RetryParams;
    type Output = RunSummary;
}
