//! `instruction.*` and `agent.*`: work an agent proposes, planned at once, carried out when it is
//! free, within the allowance a person set, or approved by a person through a channel the agent
//! does not drive (the terminal, a one-time code, the loopback confirmation page).
//!
//! Methods open to agents say so with [`Method::FOR_AGENTS`]; the others (confirming, showing a
//! code, setting the allowance) answer `not_for_agents` on a connection that called
//! [`Hello`].

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::postprocess::{BgRemoveParams, ColorParams, StepReport, UpscaleParams};
use crate::run::{Plan, PlanParams, RunStatus};
use crate::{ErrorData, Method, NoParams};

/// Longest objective or source text an instruction may carry, in characters.
pub const MAX_TEXT_CHARS: usize = 4000;

/// Longest client name a caller may declare, in characters.
pub const MAX_CLIENT_NAME_CHARS: usize = 100;

/// Wrong codes one instruction takes before its code is locked.
pub const MAX_CODE_TRIES: u32 = 5;

/// How long a one-time code stays valid, in seconds.
pub const CODE_TTL_SECS: u64 = 600;

/// What an instruction asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum InstructionKind {
    /// A generation run (paid).
    PipelineRun,
    /// A local post-process step on files inside a project's folder (free).
    Postprocess,
    /// The QA guard on files inside a project's folder, an asset or a run of the project (free,
    /// read-only).
    QaCheck,
    /// An export of the project's files (free, local; writes into the project's `exports/`).
    Export,
    /// An S3 sync of the project or one of its exports: a person approves it unless it is a dry
    /// run; never with deletes.
    StorageSync,
    /// Something Kroma does not carry out itself: recorded for the person, who acknowledges it.
    Custom,
}

impl InstructionKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            InstructionKind::PipelineRun => "pipeline_run",
            InstructionKind::Postprocess => "postprocess",
            InstructionKind::QaCheck => "qa_check",
            InstructionKind::Export => "export",
            InstructionKind::StorageSync => "storage_sync",
            InstructionKind::Custom => "custom",
        }
    }
}

/// The typed work, the same params kromactl sends for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", content = "params", rename_all = "snake_case")]
pub enum InstructionPayload {
    /// `run.plan`'s params; the instruction's project must be the plan's.
    PipelineRun(Box<PlanParams>),
    /// One local step; every path must lie inside the project's folder.
    Postprocess(PostprocessRequest),
    /// `qa.check`'s params: paths inside the project's folder, an asset or a run of the project
    /// (`project`, when given, must be the instruction's).
    QaCheck(crate::qa::CheckParams),
    /// `export.create`'s params; `project` must be the instruction's.
    Export(crate::export::CreateParams),
    /// `storage.sync`'s params; `project` must be the instruction's, `delete` false and
    /// `confirmed_deletes` absent (deletes are a person's to ask for).
    StorageSync(crate::storage::SyncParams),
    /// Nothing to carry out: the objective says what the person is asked to do.
    Custom(NoParams),
}

impl InstructionPayload {
    pub fn kind(&self) -> InstructionKind {
        match self {
            InstructionPayload::PipelineRun(_) => InstructionKind::PipelineRun,
            InstructionPayload::Postprocess(_) => InstructionKind::Postprocess,
            InstructionPayload::QaCheck(_) => InstructionKind::QaCheck,
            InstructionPayload::Export(_) => InstructionKind::Export,
            InstructionPayload::StorageSync(_) => InstructionKind::StorageSync,
            InstructionPayload::Custom(_) => InstructionKind::Custom,
        }
    }
}

/// One local post-process step with the params of its `postprocess.*` method.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "step", content = "params", rename_all = "snake_case")]
pub enum PostprocessRequest {
    Color(ColorParams),
    BgRemove(BgRemoveParams),
    Upscale(UpscaleParams),
}

/// Where an instruction is in its life.
///
/// `proposed → awaiting_confirmation → queued → running → done | failed | canceled`; free work
/// and work within the allowance go from `proposed` straight to `queued`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum InstructionState {
    Proposed,
    AwaitingConfirmation,
    Queued,
    Running,
    Done,
    Failed,
    Canceled,
}

impl InstructionState {
    pub const ALL: [InstructionState; 7] = [
        InstructionState::Proposed,
        InstructionState::AwaitingConfirmation,
        InstructionState::Queued,
        InstructionState::Running,
        InstructionState::Done,
        InstructionState::Failed,
        InstructionState::Canceled,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            InstructionState::Proposed => "proposed",
            InstructionState::AwaitingConfirmation => "awaiting_confirmation",
            InstructionState::Queued => "queued",
            InstructionState::Running => "running",
            InstructionState::Done => "done",
            InstructionState::Failed => "failed",
            InstructionState::Canceled => "canceled",
        }
    }

    pub fn parse(text: &str) -> Option<InstructionState> {
        InstructionState::ALL
            .into_iter()
            .find(|state| state.as_str() == text)
    }

    /// Whether nothing can happen to the instruction any more.
    pub const fn is_final(self) -> bool {
        matches!(
            self,
            InstructionState::Done | InstructionState::Failed | InstructionState::Canceled
        )
    }
}

/// How an instruction came to be carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Approval {
    /// It spends nothing.
    Free,
    /// Its maximum cost fit the allowance a person set, and was reserved against it.
    Allowance,
    /// A person confirmed it with `instruction.confirm` on the local socket.
    Terminal,
    /// A person read a one-time code back to the agent.
    Code,
    /// A person pressed Confirm on the loopback confirmation page.
    Page,
    /// It came from a drop-folder rule and fit the budget a person gave that rule.
    Budget,
}

impl Approval {
    pub const ALL: [Approval; 6] = [
        Approval::Free,
        Approval::Allowance,
        Approval::Terminal,
        Approval::Code,
        Approval::Page,
        Approval::Budget,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Approval::Free => "free",
            Approval::Allowance => "allowance",
            Approval::Terminal => "terminal",
            Approval::Code => "code",
            Approval::Page => "page",
            Approval::Budget => "budget",
        }
    }

    pub fn parse(text: &str) -> Option<Approval> {
        Approval::ALL
            .into_iter()
            .find(|approval| approval.as_str() == text)
    }
}

/// Who proposed an instruction. Only `uid` comes from the OS; the names are what the caller
/// declared and are labels, never proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Requester {
    /// `socket` (a program on the local socket), `agent` (a connection that called
    /// `agent.hello`) or `watch` (a drop-folder rule; `program` names it).
    pub channel: String,
    /// The calling program as the OS names it, e.g. `kroma-mcp`.
    pub program: String,
    /// The agent's declared name (an MCP client's `clientInfo.name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
}

/// What a finished (or running) instruction produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum InstructionOutcome {
    /// The run it started; `run.show` has its candidates and outputs.
    Run {
        run: String,
        status: RunStatus,
        spent_usd: f64,
    },
    /// The local step's report, one result per file.
    Postprocess { report: StepReport },
    /// The QA guard's report, one verdict per file.
    QaCheck { report: crate::qa::Report },
    /// The export it made.
    Export { export: crate::export::Export },
    /// What the sync did (or, as a dry run, would do).
    StorageSync { report: crate::storage::SyncReport },
    /// A person acknowledged a custom instruction.
    Acknowledged,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Instruction {
    pub id: String,
    /// The project's slug.
    pub project: String,
    pub kind: InstructionKind,
    pub state: InstructionState,
    /// What the agent says it wants, in plain language. Data, never an authorization.
    pub objective: String,
    /// The chat message or voice transcript the instruction came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_text: Option<String>,
    /// The chat message that produced it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The drop-folder rule (id) whose file produced it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch_rule: Option<String>,
    pub payload: InstructionPayload,
    /// The run plan of a `pipeline_run`, made when the instruction was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<Plan>,
    /// The most it can spend (0 for free work).
    pub max_cost_usd: f64,
    /// How it was approved, once it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<Approval>,
    /// Why it waits, while it waits for a person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_for: Option<String>,
    /// While it waits: the loopback page where a person reads the plan and confirms or declines
    /// it in a browser (the target of an MCP URL-mode elicitation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirm_url: Option<String>,
    pub requested_by: Requester,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<InstructionOutcome>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorData>,
    /// RFC 3339 UTC.
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateParams {
    /// The project's slug or UUID.
    pub project: String,
    /// What the work is for, in plain language (at most 4000 characters).
    pub objective: String,
    /// The chat message or voice transcript it came from (at most 4000 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_text: Option<String>,
    /// The id of the chat message that produced it (`chat.append`), in the same project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub payload: InstructionPayload,
}

/// `instruction.create`.
pub enum Create {}

impl Method for Create {
    const NAME: &'static str = "instruction.create";
    const SUMMARY: &'static str = "Propose work: validated and planned at once; it runs when free or within the allowance, else waits for a person";
    const MUTATING: bool = true;
    const FOR_AGENTS: bool = true;
    type Params = CreateParams;
    type Output = Instruction;
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Only this project (slug or UUID).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<InstructionState>,
    /// At most this many, newest first (default 100, at most 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct InstructionList {
    pub instructions: Vec<Instruction>,
}

/// `instruction.list`.
pub enum List {}

impl Method for List {
    const NAME: &'static str = "instruction.list";
    const SUMMARY: &'static str = "List instructions, newest first";
    const MUTATING: bool = false;
    const FOR_AGENTS: bool = true;
    type Params = ListParams;
    type Output = InstructionList;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InstructionRef {
    /// The instruction's UUID.
    pub id: String,
}

/// `instruction.get`.
pub enum Get {}

impl Method for Get {
    const NAME: &'static str = "instruction.get";
    const SUMMARY: &'static str = "Show one instruction with its plan, state and outcome";
    const MUTATING: bool = false;
    const FOR_AGENTS: bool = true;
    type Params = InstructionRef;
    type Output = Instruction;
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmParams {
    pub id: String,
    /// The most the person agrees to spend; must be at least the instruction's maximum cost.
    pub confirm_cost_usd: f64,
}

/// `instruction.confirm`: a person's approval on the local socket. Never open to agents.
pub enum Confirm {}

impl Method for Confirm {
    const NAME: &'static str = "instruction.confirm";
    const SUMMARY: &'static str =
        "Approve an instruction that waits for a person, after reading its plan and maximum cost";
    const MUTATING: bool = true;
    type Params = ConfirmParams;
    type Output = Instruction;
}

/// `instruction.cancel`: spends nothing, so agents may call it too.
pub enum Cancel {}

impl Method for Cancel {
    const NAME: &'static str = "instruction.cancel";
    const SUMMARY: &'static str = "Cancel an instruction; a run it started is canceled too (calls in flight finish), running local work stops where it stands";
    const MUTATING: bool = true;
    const FOR_AGENTS: bool = true;
    type Params = InstructionRef;
    type Output = Instruction;
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OneTimeCode {
    pub id: String,
    /// Six digits for the person to read back to the agent.
    pub code: String,
    /// RFC 3339 UTC; after it the code is refused.
    pub expires_at: String,
    /// The cost the code approves; a change to the plan makes the code useless.
    pub max_cost_usd: f64,
}

/// `instruction.code`: a fresh one-time code, shown to a person. Never open to agents.
pub enum Code {}

impl Method for Code {
    const NAME: &'static str = "instruction.code";
    const SUMMARY: &'static str = "Make a one-time code a person can read back to an agent to approve an instruction (replaces any earlier code)";
    const MUTATING: bool = true;
    type Params = InstructionRef;
    type Output = OneTimeCode;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmCodeParams {
    pub id: String,
    /// The code the person read out.
    pub code: String,
}

/// `instruction.confirm_code`: an agent submits the code a person read to it.
pub enum ConfirmCode {}

impl Method for ConfirmCode {
    const NAME: &'static str = "instruction.confirm_code";
    const SUMMARY: &'static str = "Approve an instruction with the one-time code a person read out (single use; locked after 5 wrong tries)";
    const MUTATING: bool = true;
    const FOR_AGENTS: bool = true;
    const SECRET_FIELDS: &'static [&'static str] = &["code"];
    type Params = ConfirmCodeParams;
    type Output = Instruction;
}

/// What agents may spend without asking, in USD. Zero everywhere until a person sets it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Allowance {
    /// The most one instruction may cost.
    pub per_instruction_usd: f64,
    /// The most agents' instructions may cost per project per UTC day.
    pub per_project_daily_usd: f64,
    /// The most agents' instructions may cost per UTC day, all projects together.
    pub daily_usd: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AllowanceStatus {
    pub allowance: Allowance,
    /// Held or spent today by instructions approved through the allowance.
    pub used_today_usd: f64,
    /// When a person last set it (RFC 3339 UTC); absent while it is the default, zero.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_at: Option<String>,
}

/// `agent.allowance_get`.
pub enum AllowanceGet {}

impl Method for AllowanceGet {
    const NAME: &'static str = "agent.allowance_get";
    const SUMMARY: &'static str = "Show what agents may spend without asking, and today's use";
    const MUTATING: bool = false;
    const FOR_AGENTS: bool = true;
    type Params = NoParams;
    type Output = AllowanceStatus;
}

/// `agent.allowance_set`: a person's standing permission. Never open to agents.
pub enum AllowanceSet {}

impl Method for AllowanceSet {
    const NAME: &'static str = "agent.allowance_set";
    const SUMMARY: &'static str =
        "Set what agents may spend without asking (local socket only, never through an agent)";
    const MUTATING: bool = true;
    type Params = Allowance;
    type Output = AllowanceStatus;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HelloParams {
    /// The agent's name as it declared it (an MCP client's `clientInfo.name`), a label for the
    /// audit log.
    pub client_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HelloAck {
    /// The methods this connection may call from now on.
    pub methods: Vec<String>,
}

/// `agent.hello`: marks the connection an agent's for the rest of its life.
pub enum Hello {}

impl Method for Hello {
    const NAME: &'static str = "agent.hello";
    const SUMMARY: &'static str =
        "Mark this connection an agent's: from now on it may call only the methods open to agents";
    const MUTATING: bool = false;
    const FOR_AGENTS: bool = true;
    type Params = HelloParams;
    type Output = HelloAck;
}

/// `instruction.changed`: an instruction moved to `state`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct InstructionChanged {
    /// The instruction's id.
    pub instruction: String,
    pub kind: InstructionKind,
    pub state: InstructionState,
    /// Absent when the instruction was just created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<InstructionState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<Approval>,
    /// The run it started, once it started one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    /// Why it waits or why it failed, in a sentence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[cfg(test)]
mod tests {
    use crate::openrpc::method_infos;

    /// Agents read, propose, cancel or approve-with-a-code their own work, and record their
    /// conversations; nothing else they may call changes anything. The list is a contract: a change to it is a visible diff.
    #[test]
    fn agents_may_read_and_handle_instructions_only() {
        let open: Vec<_> = method_infos()
            .into_iter()
            .filter(|info| info.for_agents)
            .collect();
        for info in &open {
            if info.mutating {
                assert!(
                    [
                        "instruction.create",
                        "instruction.cancel",
                        "instruction.confirm_code",
                        "chat.create",
                        "chat.append",
                    ]
                    .contains(&info.name),
                    "{} changes something and is open to agents",
                    info.name
                );
            }
        }
        for persons in [
            "instruction.confirm",
            "instruction.code",
            "agent.allowance_set",
            "run.start",
            "run.retry",
            "secret.set",
            "provider.update",
            "daemon.shutdown",
        ] {
            assert!(!open.iter().any(|info| info.name == persons), "{persons}");
        }
        let names: Vec<&str> = open.iter().map(|info| info.name).collect();
        insta::assert_snapshot!(names.join("\n"));
    }
}
