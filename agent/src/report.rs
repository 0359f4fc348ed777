//! What the instruction tools answer: the instruction as kromad has it, what happens next and,
//! while it waits, the three ways a person (never the agent, never the host's own answer) can
//! approve it. The summary text is made of this module's own words, numbers, ids and the page
//! address; text from kromad or the agent (objectives, transcripts, notes, prompts) stays in the
//! structured content, as data.
//!
//! Also the elicitations shown to the person in the host: URL mode opens the confirmation page;
//! form mode only shows the plan and its cost, and says that answering it approves nothing.

use std::collections::BTreeMap;

use kroma_protocol as protocol;
use protocol::instruction::{Instruction, InstructionState};
use rmcp::model::{CallToolResult, ContentBlock, ElicitRequestParams, ElicitationSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// An instruction and what happens next, as the instruction tools answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct InstructionReport {
    pub next: Next,
    pub instruction: Instruction,
    /// While it waits: how a person can approve it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub how_to_confirm: Option<HowToConfirm>,
    /// How far the run it started is, when it started one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<RunProgress>,
    /// What the host answered when the person was asked in it (`accept`, `decline`, `cancel`).
    /// For information only: no answer from the host approves anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_answer: Option<String>,
}

/// What happens next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Next {
    /// It waits for a person; see `how_to_confirm`. The agent cannot approve it.
    WaitingForPerson,
    /// It is queued or running; follow it with `instruction_status`.
    InProgress,
    Done,
    Failed,
    Canceled,
}

impl Next {
    pub fn of(state: InstructionState) -> Next {
        match state {
            InstructionState::AwaitingConfirmation => Next::WaitingForPerson,
            InstructionState::Proposed | InstructionState::Queued | InstructionState::Running => {
                Next::InProgress
            }
            InstructionState::Done => Next::Done,
            InstructionState::Failed => Next::Failed,
            InstructionState::Canceled => Next::Canceled,
        }
    }
}

/// The ways a person approves spending beyond the allowance they set, all out of the agent's
/// reach.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HowToConfirm {
    /// The most the instruction can spend, in USD.
    pub max_cost_usd: f64,
    /// Why it waits, as kromad says it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_for: Option<String>,
    /// The command a person runs on their terminal to read the plan and approve it.
    pub terminal: String,
    /// The command that shows a person a one-time code; they read its six digits to the agent,
    /// which passes them to `confirm_with_code`.
    pub code: String,
    /// The loopback page where a person reads the plan and confirms or declines it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<String>,
}

/// How far a run is: candidates finished (succeeded, failed, canceled or unknown) of all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RunProgress {
    pub finished: u32,
    pub total: u32,
}

impl RunProgress {
    pub fn of(detail: &protocol::run::RunDetail) -> RunProgress {
        use protocol::run::CandidateStatus;
        let candidates = detail.jobs.iter().flat_map(|job| &job.candidates);
        let total = candidates.clone().count();
        let finished = candidates
            .filter(|candidate| {
                !matches!(
                    candidate.status,
                    CandidateStatus::Planned | CandidateStatus::Calling
                )
            })
            .count();
        RunProgress {
            finished: u32::try_from(finished).unwrap_or(u32::MAX),
            total: u32::try_from(total).unwrap_or(u32::MAX),
        }
    }
}

impl HowToConfirm {
    pub fn of(instruction: &Instruction) -> Option<HowToConfirm> {
        (instruction.state == InstructionState::AwaitingConfirmation).then(|| HowToConfirm {
            max_cost_usd: instruction.max_cost_usd,
            waiting_for: instruction.waiting_for.clone(),
            terminal: format!("kromactl instruction confirm {}", instruction.id),
            code: format!("kromactl instruction code {}", instruction.id),
            page: instruction.confirm_url.clone(),
        })
    }
}

impl InstructionReport {
    pub fn new(instruction: Instruction) -> InstructionReport {
        InstructionReport {
            next: Next::of(instruction.state),
            how_to_confirm: HowToConfirm::of(&instruction),
            instruction,
            progress: None,
            host_answer: None,
        }
    }

    /// One sentence or three in this module's own words: no text from kromad or the agent.
    pub fn summary(&self) -> String {
        let id = &self.instruction.id;
        match self.next {
            Next::WaitingForPerson => {
                let page = self
                    .instruction
                    .confirm_url
                    .as_deref()
                    .map(|url| format!(", on the page {url}"))
                    .unwrap_or_default();
                format!(
                    "Instruction {id} waits for a person: it may spend up to ${:.2}, more than a \
                     person allowed in advance. Neither the agent nor the host can approve it. A \
                     person approves it on their terminal with `kromactl instruction confirm \
                     {id}`{page}, or by running `kromactl instruction code {id}` and reading the \
                     six digits to the agent, who passes them to `confirm_with_code`.",
                    self.instruction.max_cost_usd
                )
            }
            Next::InProgress => format!(
                "Instruction {id} is {}; follow it with `instruction_status`.",
                self.instruction.state.as_str()
            ),
            Next::Done => {
                format!("Instruction {id} is done; its outcome is in the structured content.")
            }
            Next::Failed => {
                format!("Instruction {id} failed; the error is in the structured content.")
            }
            Next::Canceled => format!("Instruction {id} was canceled."),
        }
    }

    /// The tool result: the summary, then the report as JSON, and as structured content.
    pub fn into_result(self) -> Result<CallToolResult, String> {
        let summary = self.summary();
        let value = serde_json::to_value(&self).map_err(|err| err.to_string())?;
        let mut result = CallToolResult::structured(value);
        result.content.insert(0, ContentBlock::text(summary));
        Ok(result)
    }
}

/// A URL-mode elicitation: the host offers the person the confirmation page.
pub fn page_elicitation(
    instruction: &Instruction,
    url: &str,
    elicitation_id: &str,
) -> ElicitRequestParams {
    ElicitRequestParams::UrlElicitationParams {
        meta: None,
        message: format!(
            "Kroma instruction {} may spend up to ${:.2}. Read its plan and confirm or decline \
             it on Kroma's own page.",
            instruction.id, instruction.max_cost_usd
        ),
        url: url.to_owned(),
        elicitation_id: elicitation_id.to_owned(),
    }
}

/// A form-mode elicitation that shows the plan and its cost and asks for nothing: accepting it
/// approves nothing.
pub fn plan_elicitation(instruction: &Instruction) -> ElicitRequestParams {
    let plan = instruction
        .plan
        .as_ref()
        .map(|plan| {
            format!(
                " It plans {} job(s), {} candidate(s) each, with {} at {} ({}).",
                plan.jobs.len(),
                plan.candidates,
                plan.model,
                plan.size,
                plan.quality
            )
        })
        .unwrap_or_default();
    let page = instruction
        .confirm_url
        .as_deref()
        .map(|url| format!(", open {url}"))
        .unwrap_or_default();
    ElicitRequestParams::FormElicitationParams {
        meta: None,
        message: format!(
            "Kroma instruction {id} ({kind}, project {project}) may spend up to ${cost:.2}.{plan} \
             Answering here approves nothing. To approve it, run `kromactl instruction confirm \
             {id}`{page}, or run `kromactl instruction code {id}` and read the six digits to the \
             agent.",
            id = instruction.id,
            kind = instruction.kind.as_str(),
            project = instruction.project,
            cost = instruction.max_cost_usd,
        ),
        requested_schema: ElicitationSchema::new(BTreeMap::new()),
    }
}
