//! `watch.*`: drop folders. A rule maps a folder to an action: a project pipeline (each file a
//! scene of its own run, proposed as an instruction) or a local chain of steps (each file's
//! result written to the rule's output folder). A file counts once it is complete, is
//! deduplicated by its content's hash in a journal that outlives restarts, and triggers exactly
//! one run or chain. Inputs move to the folder's `processing/`, then `done/`, `failed/` (with a
//! `.reason.txt` beside) or `duplicates/`; nothing is deleted.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::run::PlanParams;
use crate::{ErrorData, Method};

/// How long a file's size and modification time must stay unchanged before it counts, when no
/// rename into place or close after writing was seen, in milliseconds.
pub const DEFAULT_SETTLE_MS: u64 = 2_000;

/// The file names a rule matches when it names none.
pub const DEFAULT_PATTERNS: [&str; 4] = ["*.png", "*.jpg", "*.jpeg", "*.webp"];

/// Most patterns one rule may name.
pub const MAX_PATTERNS: usize = 32;

/// What a rule does with each file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum WatchAction {
    /// A generation run with the file as its one scene: `run.plan`'s params with `scenes`
    /// empty. Each file becomes an instruction; it runs within the rule's budget, or waits for a
    /// person.
    Pipeline { plan: Box<PlanParams> },
    /// Local steps, in the order given, each on the previous one's result; the last result is
    /// written to `output` (an absolute folder outside the watched one) as `<name>.png`.
    Chain {
        steps: Vec<LocalStep>,
        output: String,
    },
}

/// One local step of a chain, with its settings (the `postprocess.*` methods' without paths).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "step", rename_all = "snake_case", deny_unknown_fields)]
pub enum LocalStep {
    BgRemove {
        /// An installed background-removal model; default: the default one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        model: Option<String>,
        /// Write the mask instead of the cut-out.
        #[serde(default)]
        mask_only: bool,
        /// Refine the mask's uncertain edge band.
        #[serde(default)]
        matting: bool,
        /// `#RRGGBB`: put the cut-out on this colour instead of transparency.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        background: Option<String>,
    },
    Upscale {
        /// 2 or 4; default 4.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scale: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        model: Option<String>,
        /// Tile side in input pixels (32 to 1024); default 256.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tile: Option<u32>,
    },
    Color {
        /// `neutral`, `cinematic_warm`, `cold_rain`, or a `[color_profiles.<name>]` of the
        /// user's settings.
        profile: String,
    },
}

impl LocalStep {
    /// The step's wire name, e.g. `bg_remove`.
    pub fn name(&self) -> &'static str {
        match self {
            LocalStep::BgRemove { .. } => "bg_remove",
            LocalStep::Upscale { .. } => "upscale",
            LocalStep::Color { .. } => "color",
        }
    }
}

/// What happens to an input once it is taken.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Inputs {
    /// Into `processing/`, then `done/`, `failed/` or `duplicates/` inside the watched folder.
    #[default]
    Move,
    /// Left where they landed; the journal remembers them.
    Keep,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AddParams {
    /// A short name to refer to the rule by (letters, digits, `-`, `_`); default: the folder's
    /// name, made unique.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The absolute folder to watch (files directly in it; its subfolders are not watched).
    pub folder: String,
    pub action: WatchAction,
    /// File name patterns (`*.png`); default: PNG, JPEG and WebP files.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub patterns: Vec<String>,
    /// What paid work from this rule may spend in total without asking a person, in USD;
    /// default 0: every paid file waits for a person.
    #[serde(default)]
    pub budget_usd: f64,
    /// Poll the folder instead of OS notifications (network and FUSE mounts).
    #[serde(default)]
    pub poll: bool,
    /// How long a file must stay unchanged before it counts when neither a rename into place
    /// nor a close after writing was seen, in milliseconds (100 to 600000; default 2000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settle_ms: Option<u64>,
    #[serde(default)]
    pub inputs: Inputs,
}

/// A rule's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RuleState {
    /// Files that land are taken.
    Watching,
    /// A person paused it: files that land wait until it resumes.
    Paused,
    /// Its budget is spent: paid files wait for a person until the budget is raised.
    BudgetSpent,
    /// The folder cannot be watched (gone, unreadable, a watch limit); `last_error` says why.
    Failing,
}

/// What a rule's journal holds, by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct WatchCounts {
    /// Every distinct file taken (duplicates not counted).
    pub seen: u32,
    /// Taken and not finished: being processed, or waiting for a person.
    pub running: u32,
    pub done: u32,
    pub failed: u32,
    /// Skipped: the same content was taken before.
    pub duplicate: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WatchRule {
    pub id: String,
    pub name: String,
    pub folder: String,
    pub action: WatchAction,
    pub patterns: Vec<String>,
    pub budget_usd: f64,
    /// Held or spent by paid work the budget approved.
    pub spent_usd: f64,
    pub poll: bool,
    pub settle_ms: u64,
    pub inputs: Inputs,
    pub state: RuleState,
    pub counts: WatchCounts,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<ErrorData>,
    /// RFC 3339 UTC.
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WatchRuleList {
    pub rules: Vec<WatchRule>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleRef {
    /// The rule's name or UUID.
    pub rule: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateParams {
    /// The rule's name or UUID.
    pub rule: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<WatchAction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patterns: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_usd: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settle_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<Inputs>,
}

/// Where one taken file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FileState {
    /// Taken; its run or chain is being set up or carried out.
    Processing,
    /// Its instruction waits for a person (no budget, or the budget is spent).
    Waiting,
    Done,
    Failed,
    /// The same content was taken before; nothing was started.
    Duplicate,
}

impl FileState {
    pub const ALL: [FileState; 5] = [
        FileState::Processing,
        FileState::Waiting,
        FileState::Done,
        FileState::Failed,
        FileState::Duplicate,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            FileState::Processing => "processing",
            FileState::Waiting => "waiting",
            FileState::Done => "done",
            FileState::Failed => "failed",
            FileState::Duplicate => "duplicate",
        }
    }

    pub fn parse(text: &str) -> Option<FileState> {
        FileState::ALL
            .into_iter()
            .find(|state| state.as_str() == text)
    }

    pub const fn is_final(self) -> bool {
        matches!(
            self,
            FileState::Done | FileState::Failed | FileState::Duplicate
        )
    }
}

/// One file a rule took, as its journal holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WatchFile {
    pub id: String,
    /// The rule's id.
    pub rule: String,
    /// The name it landed under.
    pub name: String,
    /// Where it is now.
    pub path: String,
    /// The SHA-256 of its content, hex.
    pub sha256: String,
    pub state: FileState,
    /// The instruction a pipeline rule made of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instruction: Option<String>,
    /// The run that instruction started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    /// A chain's result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// The file with the same content taken before, for a duplicate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate_of: Option<String>,
    /// Why it failed or waits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// RFC 3339 UTC.
    pub seen_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogParams {
    /// The rule's name or UUID.
    pub rule: String,
    /// At most this many, newest first (default 100, at most 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WatchLog {
    pub rule: WatchRule,
    /// Newest first.
    pub files: Vec<WatchFile>,
}

/// `watch.add`.
pub enum Add {}

impl Method for Add {
    const NAME: &'static str = "watch.add";
    const SUMMARY: &'static str =
        "Watch a folder: each complete file that lands starts the rule's run or local chain, once";
    const MUTATING: bool = true;
    type Params = AddParams;
    type Output = WatchRule;
}

/// `watch.list`.
pub enum List {}

impl Method for List {
    const NAME: &'static str = "watch.list";
    const SUMMARY: &'static str =
        "List the drop-folder rules with their state, counts, spend and last error";
    const MUTATING: bool = false;
    type Params = crate::NoParams;
    type Output = WatchRuleList;
}

/// `watch.get`.
pub enum Get {}

impl Method for Get {
    const NAME: &'static str = "watch.get";
    const SUMMARY: &'static str = "Show one drop-folder rule";
    const MUTATING: bool = false;
    type Params = RuleRef;
    type Output = WatchRule;
}

/// `watch.update`.
pub enum Update {}

impl Method for Update {
    const NAME: &'static str = "watch.update";
    const SUMMARY: &'static str =
        "Change a rule's action, patterns, budget or detection; files already taken keep theirs";
    const MUTATING: bool = true;
    type Params = UpdateParams;
    type Output = WatchRule;
}

/// `watch.remove`.
pub enum Remove {}

impl Method for Remove {
    const NAME: &'static str = "watch.remove";
    const SUMMARY: &'static str = "Stop watching a folder and forget the rule (files in flight finish; nothing on disk is deleted)";
    const MUTATING: bool = true;
    type Params = RuleRef;
    type Output = WatchRule;
}

/// `watch.pause`.
pub enum Pause {}

impl Method for Pause {
    const NAME: &'static str = "watch.pause";
    const SUMMARY: &'static str =
        "Pause a rule: files that land wait in the folder until it resumes";
    const MUTATING: bool = true;
    type Params = RuleRef;
    type Output = WatchRule;
}

/// `watch.resume`.
pub enum Resume {}

impl Method for Resume {
    const NAME: &'static str = "watch.resume";
    const SUMMARY: &'static str = "Resume a paused rule; files that landed meanwhile are taken";
    const MUTATING: bool = true;
    type Params = RuleRef;
    type Output = WatchRule;
}

/// `watch.log`.
pub enum Log {}

impl Method for Log {
    const NAME: &'static str = "watch.log";
    const SUMMARY: &'static str =
        "Show the files a rule took, newest first, with what became of each";
    const MUTATING: bool = false;
    type Params = LogParams;
    type Output = WatchLog;
}

/// `watch.file`: a rule took a file, or a file it took moved on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WatchFileChanged {
    /// The rule's id.
    pub rule: String,
    /// The journal entry's id.
    pub file: String,
    pub name: String,
    pub state: FileState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instruction: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `watch.rule`: a rule changed state (paused, resumed, budget spent, failing, recovered).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WatchRuleChanged {
    /// The rule's id.
    pub rule: String,
    pub name: String,
    pub state: RuleState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}
