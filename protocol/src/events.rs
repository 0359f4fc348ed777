//! `events.*`: the ordered log of every state change, replayable and followable.
//!
//! Every change the daemon makes appends one [`Event`] with a strictly increasing id. `since` is
//! the last id a client has seen: a call with `since: N` returns the events with ids above `N`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{Method, Subscription};

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
    /// Kind-specific details.
    pub data: serde_json::Value,
}

/// The most events one `events.list` call returns.
pub const MAX_LIST_LIMIT: u32 = 1000;

/// `events.list`: a page of past events.
pub enum List {}

impl Method for List {
    const NAME: &'static str = "events.list";
    const SUMMARY: &'static str = "List past events after `since`, oldest first";
    const MUTATING: bool = false;
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
