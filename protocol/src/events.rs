//! `events.*`: the ordered log of every state change, replayable and followable.
//!
//! Every change the daemon makes appends one [`Event`] with a strictly increasing id. `since` is
//! the last id a client has seen: a call with `since: N` returns the events with ids above `N`.
//!
//! Each kind's `data` has one type here ([`RunProgress`] for `run.progress`, ...), tied to its
//! kind by [`EventData`]: the daemon writes `data` from it and clients read it back with
//! [`Event::payload`], so neither side spells field names. On the wire `data` stays plain JSON,
//! so a client tolerates kinds (and fields) added after it was built.

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::asset::{AssetKind, Relation};
use crate::bootstrap::ImportMode;
use crate::postprocess::Step;
use crate::run::{CandidateStatus, JobStatus, RunStatus};
use crate::{ErrorData, Method, Subscription};

/// Event kinds the daemon emits today. Clients must tolerate kinds they do not know.
pub mod kind {
    pub const DAEMON_STARTED: &str = "daemon.started";
    pub const DAEMON_STOPPING: &str = "daemon.stopping";
    pub const PROJECT_CREATED: &str = "project.created";
    pub const PROJECT_UPDATED: &str = "project.updated";
    pub const PROJECT_DELETED: &str = "project.deleted";
    pub const ASSET_IMPORTED: &str = "asset.imported";
    pub const ASSET_DELETED: &str = "asset.deleted";
    pub const ASSET_LINKED: &str = "asset.linked";
    pub const STYLE_GUIDE_CHANGED: &str = "style_guide.changed";
    pub const CHARACTER_CHANGED: &str = "character.changed";
    pub const REFERENCE_SET_CHANGED: &str = "reference_set.changed";
    pub const PROMPT_TEMPLATE_CHANGED: &str = "prompt_template.changed";
    pub const BOOTSTRAP_IMPORTED: &str = "bootstrap.imported";
    /// Carries the secret's name only, never its value.
    pub const SECRET_CHANGED: &str = "secret.changed";
    pub const PROVIDER_CHANGED: &str = "provider.changed";
    /// A run was created (planned or dry run).
    pub const RUN_CREATED: &str = "run.created";
    /// `run.start` or `run.retry` queued a run's candidates.
    pub const RUN_STARTED: &str = "run.started";
    /// Progress of a running run: counts, spend so far and an ETA.
    pub const RUN_PROGRESS: &str = "run.progress";
    /// A run reached `done`, `partial`, `failed` or `canceled`.
    pub const RUN_FINISHED: &str = "run.finished";
    pub const JOB_STARTED: &str = "job.started";
    pub const JOB_FINISHED: &str = "job.finished";
    pub const CANDIDATE_STARTED: &str = "candidate.started";
    pub const CANDIDATE_FINISHED: &str = "candidate.finished";
    pub const CANDIDATE_FAILED: &str = "candidate.failed";
    /// A succeeded candidate's post-process chain ended: `{run, job, index, status: done|failed,
    /// final_output?, error?}`.
    pub const CANDIDATE_POSTPROCESSED: &str = "candidate.postprocessed";
    /// A file went through a one-off post-process step (or failed to): `{step, input, output?,
    /// error?, done, total}`.
    pub const POSTPROCESS_FILE: &str = "postprocess.file";
    /// A long local step advanced within one file: `{step, input, tiles_done, tiles}` for one-off
    /// steps, `{step, run, job, index, candidate, status, tiles_done, tiles}` in a run's post-process chain.
    pub const POSTPROCESS_PROGRESS: &str = "postprocess.progress";
    /// An export advanced: `{project, target, phase, done, total, bytes_done, bytes_total}`.
    pub const EXPORT_PROGRESS: &str = "export.progress";
    /// A storage sync advanced: `{project, direction, done, total, bytes_done, bytes_total}`.
    pub const STORAGE_PROGRESS: &str = "storage.progress";
    /// An instruction moved from one state to another: `{instruction, state, previous?, …}`.
    pub const INSTRUCTION_CHANGED: &str = "instruction.changed";
    pub const CHAT_CREATED: &str = "chat.created";
    /// A message was added to a chat session (its text is not in the event).
    pub const CHAT_APPENDED: &str = "chat.appended";
    /// A drop-folder rule took a file, or a file it took moved on: `{rule, file, name, state, …}`.
    pub const WATCH_FILE: &str = "watch.file";
    /// A drop-folder rule changed state (paused, resumed, budget spent, failing): `{rule, name,
    /// state, reason?}`.
    pub const WATCH_RULE: &str = "watch.rule";

    /// Every kind above, in declaration order.
    pub const ALL: &[&str] = &[
        DAEMON_STARTED,
        DAEMON_STOPPING,
        PROJECT_CREATED,
        PROJECT_UPDATED,
        PROJECT_DELETED,
        ASSET_IMPORTED,
        ASSET_DELETED,
        ASSET_LINKED,
        STYLE_GUIDE_CHANGED,
        CHARACTER_CHANGED,
        REFERENCE_SET_CHANGED,
        PROMPT_TEMPLATE_CHANGED,
        BOOTSTRAP_IMPORTED,
        SECRET_CHANGED,
        PROVIDER_CHANGED,
        RUN_CREATED,
        RUN_STARTED,
        RUN_PROGRESS,
        RUN_FINISHED,
        JOB_STARTED,
        JOB_FINISHED,
        CANDIDATE_STARTED,
        CANDIDATE_FINISHED,
        CANDIDATE_FAILED,
        CANDIDATE_POSTPROCESSED,
        POSTPROCESS_FILE,
        POSTPROCESS_PROGRESS,
        EXPORT_PROGRESS,
        STORAGE_PROGRESS,
        INSTRUCTION_CHANGED,
        CHAT_CREATED,
        CHAT_APPENDED,
        WATCH_FILE,
        WATCH_RULE,
    ];
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Event {
    /// Strictly increasing, never reused, also across restarts.
    pub id: u64,
    /// RFC 3339 UTC.
    pub at: String,
    /// One of [`kind`], e.g. `project.created`.
    pub kind: String,
    /// The slug of the project the event is about, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// Kind-specific details, with the schema `x-events` names for the kind in the OpenRPC
    /// document's components. Plain JSON, so events of kinds added later still parse.
    pub data: serde_json::Value,
}

/// The `data` of one event kind.
pub trait EventData: Serialize + DeserializeOwned + JsonSchema {
    /// The kind whose data this is, one of [`kind`].
    const KIND: &'static str;

    /// This payload as an event's `data`.
    fn to_data(&self) -> serde_json::Value {
        // Payloads hold strings, numbers, booleans, lists and structs only, so this cannot fail
        // (a number that is not finite becomes null, as in `serde_json::json!`).
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

impl Event {
    /// The typed data, when this event is of `T`'s kind: `None` for any other kind, an error
    /// when the data lacks what `T` needs.
    pub fn payload<T: EventData>(&self) -> Option<Result<T, serde_json::Error>> {
        (self.kind == T::KIND).then(|| T::deserialize(&self.data))
    }
}

mod registry;
pub(crate) use registry::for_each_event_data;

/// `daemon.started`: kromad is serving.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DaemonStarted {
    /// kromad's version.
    pub version: String,
    pub pid: u32,
}

/// `daemon.stopping`: kromad stops accepting; followers see this before their subscription ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DaemonStopping {
    pub pid: u32,
}

/// `project.created`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ProjectCreated {
    /// UUID.
    pub id: String,
    pub name: String,
    /// Absolute path of the project root.
    pub root: String,
}

/// A field `project.update` changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProjectField {
    Name,
    Description,
    S3,
}

/// `project.updated`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ProjectUpdated {
    /// The fields the update gave, in this order: name, description, s3.
    pub changed: Vec<ProjectField>,
}

/// `project.deleted`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ProjectDeleted {
    /// UUID.
    pub id: String,
    /// Absolute path of the project root.
    pub root: String,
    /// Whether the root's files were to be removed too.
    pub purged_files: bool,
}

/// `asset.imported`: one file became an asset (once per new asset of an import).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AssetImported {
    /// UUID.
    pub id: String,
    /// Relative to the project root.
    pub path: String,
    pub kind: AssetKind,
}

/// `asset.deleted`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
// `asset::AssetDeleted`, the answer of `asset.delete`, has the plain name in the schemas.
#[schemars(rename = "AssetDeletedEvent")]
pub struct AssetDeleted {
    /// UUID.
    pub id: String,
    /// Relative to the project root.
    pub path: String,
}

/// `asset.linked`: `from` relates to `to` as `relation` says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AssetLinked {
    /// The child asset's id.
    pub from: String,
    /// The parent asset's id.
    pub to: String,
    pub relation: Relation,
}

/// What happened to a provider account or a piece of project knowledge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    Created,
    /// Changed in place; for reference sets also an item added or removed.
    Updated,
    Deleted,
}

macro_rules! knowledge_changed {
    ($($(#[doc = $doc:literal])+ $name:ident;)+) => {
        $(
            $(#[doc = $doc])+
            #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
            pub struct $name {
                pub action: Change,
                /// UUID.
                pub id: String,
                pub name: String,
            }
        )+
    };
}

knowledge_changed! {
    /// `style_guide.changed`.
    StyleGuideChanged;
    /// `character.changed`.
    CharacterChanged;
    /// `reference_set.changed`.
    ReferenceSetChanged;
    /// `prompt_template.changed`.
    PromptTemplateChanged;
}

/// How many entities of one section an import created, updated and deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SectionCounts {
    pub created: u32,
    pub updated: u32,
    pub deleted: u32,
}

/// `bootstrap.imported`: an import was applied (dry runs record nothing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BootstrapImported {
    pub mode: ImportMode,
    pub style_guides: SectionCounts,
    pub characters: SectionCounts,
    pub prompt_templates: SectionCounts,
}

/// What happened to a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SecretChange {
    /// Stored, new or replacing the old value.
    Set,
    Deleted,
}

/// `secret.changed`: the secret's name only, never its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SecretChanged {
    pub name: String,
    pub action: SecretChange,
}

/// `provider.changed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ProviderChanged {
    pub name: String,
    pub action: Change,
}

/// `run.created`: a run was planned and stored (`planned`, or `dry_run`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunCreated {
    /// The run's id.
    pub run: String,
    pub status: RunStatus,
    pub jobs: u32,
    /// The most the run can cost.
    pub max_cost_usd: f64,
}

/// `run.started`: `run.start`, or `run.retry` (with `retry` and `chains`), queued candidates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunStarted {
    /// The run's id.
    pub run: String,
    /// Present (and true) for `run.retry`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub retry: bool,
    /// The candidates queued: all of them at start, those called again at retry.
    pub candidates: u32,
    /// At retry: the failed post-process chains run again (at no cost).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chains: Option<u32>,
    /// What the human confirmed for this start or retry.
    pub confirmed_cost_usd: f64,
    /// The most this start or retry can cost.
    pub max_cost_usd: f64,
}

/// `run.progress`: after each candidate (and post-process chain) ends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunProgress {
    /// The run's id.
    pub run: String,
    pub jobs: u32,
    /// Jobs with nothing pending.
    pub jobs_done: u32,
    pub candidates: u32,
    pub succeeded: u32,
    /// Failed or unknown.
    pub failed: u32,
    /// Recorded cost so far, rounded.
    pub spent_usd: f64,
    /// Seconds left, once some calls have finished to estimate from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta_secs: Option<u64>,
}

/// `run.finished`: the run is `done`, `partial`, `failed` or `canceled`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunFinished {
    /// The run's id.
    pub run: String,
    pub status: RunStatus,
    /// Recorded cost, rounded.
    pub spent_usd: f64,
}

/// `job.started`: the first call of a job is about to leave (status `running`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct JobStarted {
    /// The run's id.
    pub run: String,
    /// The job's key.
    pub job: String,
    pub status: JobStatus,
}

/// `job.finished`: nothing of the job is pending any more (status `done` or `failed`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct JobFinished {
    /// The run's id.
    pub run: String,
    /// The job's key.
    pub job: String,
    pub status: JobStatus,
}

/// `candidate.started`: the candidate is `calling`; its paid call is about to leave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CandidateStarted {
    /// The run's id.
    pub run: String,
    /// The job's key.
    pub job: String,
    /// 1-based, within the job.
    pub index: u32,
    pub status: CandidateStatus,
}

/// `candidate.finished`: `succeeded` (with `cost_usd` and `output`) or `canceled` (with `error`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CandidateFinished {
    /// The run's id.
    pub run: String,
    /// The job's key.
    pub job: String,
    /// 1-based, within the job.
    pub index: u32,
    pub status: CandidateStatus,
    /// The call's cost, for a succeeded candidate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    /// Absolute path of the generated image, for a succeeded candidate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// Why it ended without an image (`canceled`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorData>,
}

/// `candidate.failed`: `failed`, or `unknown` when a call that may have been billed was lost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CandidateFailed {
    /// The run's id.
    pub run: String,
    /// The job's key.
    pub job: String,
    /// 1-based, within the job.
    pub index: u32,
    pub status: CandidateStatus,
    pub error: ErrorData,
    /// What the call cost (or may have cost), when the provider may have billed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
}

/// How a succeeded candidate's post-process chain ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChainStatus {
    /// Every step wrote its output.
    Done,
    /// A step failed; the generated image is kept.
    Failed,
}

/// `candidate.postprocessed`: a succeeded candidate's post-process chain ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CandidatePostprocessed {
    /// The run's id.
    pub run: String,
    /// The job's key.
    pub job: String,
    /// 1-based, within the job.
    pub index: u32,
    pub status: ChainStatus,
    /// Absolute path of the last step's output, when the chain is `done`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_output: Option<String>,
    /// Why the chain failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorData>,
}

/// `postprocess.file`: one file of a one-off step is done (or failed). `output` and `error` are
/// always present, one of them null.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PostprocessFile {
    pub step: Step,
    /// Absolute path of the source file.
    pub input: String,
    /// Absolute path of the file written, or null when the step failed.
    #[serde(default)]
    pub output: Option<String>,
    /// Why the step failed, or null.
    #[serde(default)]
    pub error: Option<ErrorData>,
    /// Files finished so far, failed ones included.
    pub done: u32,
    /// Files the call processes.
    pub total: u32,
}

/// `postprocess.progress`: a long local step advanced by a tile, in a one-off call or in a run's
/// post-process chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum PostprocessProgress {
    /// In a run's post-process chain.
    Chain(ChainTileProgress),
    /// In a one-off `postprocess.*` call.
    File(FileTileProgress),
}

/// The tiles of one file in a one-off `postprocess.*` call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FileTileProgress {
    pub step: Step,
    /// Absolute path of the source file.
    pub input: String,
    pub tiles_done: u32,
    pub tiles: u32,
}

/// Where a candidate stands while its post-process chain runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChainProgressStatus {
    /// Its chain is running.
    Postprocessing,
}

/// The tiles of one step of a candidate's post-process chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ChainTileProgress {
    /// The run's id.
    pub run: String,
    /// The job's key.
    pub job: String,
    /// 1-based, within the job.
    pub index: u32,
    pub status: ChainProgressStatus,
    pub step: Step,
    /// The candidate's id.
    pub candidate: String,
    pub tiles_done: u32,
    pub tiles: u32,
}

/// The most events one `events.list` call returns.
pub const MAX_LIST_LIMIT: u32 = 1000;

/// `events.list`: a page of past events.
pub enum List {}

impl Method for List {
    const NAME: &'static str = "events.list";
    const SUMMARY: &'static str = "List past events after `since`, oldest first";
    const MUTATING: bool = false;
    const FOR_AGENTS: bool = true;
    type Params = ListParams;
    type Output = EventPage;
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Return events with ids above this one; absent means from the first event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<u64>,
    /// At most this many events (default 100, at most 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EventPage {
    pub events: Vec<Event>,
    /// The id of the newest event in the log, to resume from.
    pub last_id: u64,
}

/// `events.subscribe`: replay from `since`, then follow live.
pub enum Subscribe {}

impl Subscription for Subscribe {
    const NAME: &'static str = "events.subscribe";
    const NOTIFICATION: &'static str = "events.event";
    const UNSUBSCRIBE: &'static str = "events.unsubscribe";
    const SUMMARY: &'static str =
        "Replay events after `since` (if given), then push new events as they happen";
    type Params = SubscribeParams;
    type Item = Event;
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscribeParams {
    /// Replay events with ids above this one first; absent means live events only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<u64>,
}

#[cfg(test)]
mod tests;
