//! `kromactl instruction …` and `kromactl agent …`: what agents proposed, and a person's say over
//! it. Confirming shows the plan and its maximum cost and asks on the terminal (or takes
//! `--yes --max-cost USD`); `instruction code` shows a one-time code to read back to a voice or
//! chat agent; `agent allowance set` is what agents may spend without asking. These run on the
//! local socket only: the MCP server never offers them. `kromactl audit list` shows who
//! approved, refused or tried what; `kromactl chat log` a conversation with the instructions it
//! produced.

use std::path::Path;

use clap::{Args, Subcommand};
use kroma_client::Client;
use kroma_protocol as protocol;
use protocol::instruction as wire;

use crate::Global;
use crate::common::{max_cost_text, parse_usd, parse_usd_or_zero};
use crate::output::{self, Failure, print, usd};
use crate::runs::{PromptDetail, plan_text};

#[derive(Debug, Subcommand)]
pub enum InstructionCommand {
    /// List instructions, newest first
    List {
        /// Only this project (slug)
        #[arg(long)]
        project: Option<String>,
        /// Only instructions in this state
        #[arg(long, value_enum)]
        state: Option<StateArg>,
        /// At most this many
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Show an instruction: objective, plan, cost, state and outcome
    Show {
        /// The instruction's id
        id: String,
    },
    /// Approve an instruction that waits for a person, after reading its plan and maximum cost
    Confirm {
        /// The instruction's id
        id: String,
        /// Do not ask; agree to spend up to --max-cost
        #[arg(long, short, requires = "max_cost")]
        yes: bool,
        /// The most you agree to spend, in USD; at least the instruction's maximum
        #[arg(long, value_name = "USD", value_parser = parse_usd)]
        max_cost: Option<f64>,
    },
    /// Make a one-time code to read out to a voice or chat agent (valid 10 minutes, single use)
    Code {
        /// The instruction's id
        id: String,
    },
    /// Cancel an instruction (and the run it started)
    Cancel {
        /// The instruction's id
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ChatCommand {
    /// List chat sessions, most recently active first
    List {
        /// Only this project (slug)
        #[arg(long)]
        project: Option<String>,
        /// At most this many
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Show a session's messages with the instructions they produced and their outcomes
    Log {
        /// The session's id
        session: String,
        /// Only messages after this one (its number in the session)
        #[arg(long, value_name = "SEQ")]
        since: Option<u32>,
        /// At most this many messages
        #[arg(long, default_value_t = 200)]
        limit: u32,
    },
}

#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// What agents may spend without asking
    #[command(subcommand)]
    Allowance(AllowanceCommand),
}

#[derive(Debug, Subcommand)]
pub enum AllowanceCommand {
    /// Show the allowance and what agents used of it today
    Show,
    /// Set what agents may spend without asking; amounts not given keep their value (0 = none)
    Set(AllowanceArgs),
}

#[derive(Debug, Args)]
pub struct AllowanceArgs {
    /// The most one instruction may cost, in USD
    #[arg(long, value_name = "USD", value_parser = parse_usd_or_zero)]
    per_instruction: Option<f64>,
    /// The most agents' instructions may cost per project per UTC day, in USD
    #[arg(long, value_name = "USD", value_parser = parse_usd_or_zero)]
    per_project_daily: Option<f64>,
    /// The most agents' instructions may cost per UTC day in all, in USD
    #[arg(long, value_name = "USD", value_parser = parse_usd_or_zero)]
    daily: Option<f64>,
}

/// Spelled as on the wire, e.g. `awaiting_confirmation`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum StateArg {
    Proposed,
    AwaitingConfirmation,
    Queued,
    Running,
    Done,
    Failed,
    Canceled,
}

impl From<StateArg> for wire::InstructionState {
    fn from(state: StateArg) -> wire::InstructionState {
        match state {
            StateArg::Proposed => wire::InstructionState::Proposed,
            StateArg::AwaitingConfirmation => wire::InstructionState::AwaitingConfirmation,
            StateArg::Queued => wire::InstructionState::Queued,
            StateArg::Running => wire::InstructionState::Running,
            StateArg::Done => wire::InstructionState::Done,
            StateArg::Failed => wire::InstructionState::Failed,
            StateArg::Canceled => wire::InstructionState::Canceled,
        }
    }
}

pub async fn instruction(
    global: &Global,
    socket: &Path,
    command: InstructionCommand,
) -> Result<(), Failure> {
    let client = Client::connect(socket).await?;
    match command {
        InstructionCommand::List {
            project,
            state,
            limit,
        } => {
            let list = client
                .call::<wire::List>(&wire::ListParams {
                    project,
                    state: state.map(Into::into),
                    limit: Some(limit),
                })
                .await?;
            print(global, &list, || list_text(&list.instructions));
        }
        InstructionCommand::Show { id } => {
            let instruction = client
                .call::<wire::Get>(&wire::InstructionRef { id })
                .await?;
            print(global, &instruction, || details_text(&instruction));
        }
        InstructionCommand::Confirm { id, yes, max_cost } => {
            let instruction = client
                .call::<wire::Get>(&wire::InstructionRef { id: id.clone() })
                .await?;
            let amount = agreed_amount(&instruction, yes, max_cost)?;
            let confirmed = client
                .call::<wire::Confirm>(&wire::ConfirmParams {
                    id,
                    confirm_cost_usd: amount,
                })
                .await?;
            print(global, &confirmed, || details_text(&confirmed));
        }
        InstructionCommand::Code { id } => {
            let code = client
                .call::<wire::Code>(&wire::InstructionRef { id })
                .await?;
            print(global, &code, || {
                format!(
                    "code {}\napproves instruction {} for up to {}; valid until {}, once\n",
                    grouped(&code.code),
                    code.id,
                    usd(code.max_cost_usd),
                    code.expires_at
                )
            });
        }
        InstructionCommand::Cancel { id } => {
            let instruction = client
                .call::<wire::Cancel>(&wire::InstructionRef { id })
                .await?;
            print(global, &instruction, || details_text(&instruction));
        }
    }
    Ok(())
}

pub async fn agent(global: &Global, socket: &Path, command: AgentCommand) -> Result<(), Failure> {
    let client = Client::connect(socket).await?;
    let AgentCommand::Allowance(command) = command;
    let status = match command {
        AllowanceCommand::Show => {
            client
                .call::<wire::AllowanceGet>(&protocol::NoParams {})
                .await?
        }
        AllowanceCommand::Set(args) => {
            let current = client
                .call::<wire::AllowanceGet>(&protocol::NoParams {})
                .await?
                .allowance;
            let allowance = wire::Allowance {
                per_instruction_usd: args.per_instruction.unwrap_or(current.per_instruction_usd),
                per_project_daily_usd: args
                    .per_project_daily
                    .unwrap_or(current.per_project_daily_usd),
                daily_usd: args.daily.unwrap_or(current.daily_usd),
            };
            client.call::<wire::AllowanceSet>(&allowance).await?
        }
    };
    print(global, &status, || allowance_text(&status));
    Ok(())
}

pub async fn chat(global: &Global, socket: &Path, command: ChatCommand) -> Result<(), Failure> {
    let client = Client::connect(socket).await?;
    match command {
        ChatCommand::List { project, limit } => {
            let list = client
                .call::<protocol::chat::List>(&protocol::chat::ListParams {
                    project,
                    limit: Some(limit),
                })
                .await?;
            print(global, &list, || {
                let mut table = output::table(&["id", "project", "title", "messages", "active"]);
                for session in &list.sessions {
                    table.add_row(vec![
                        session.id.clone(),
                        session.project.clone(),
                        session.title.clone(),
                        session.messages.to_string(),
                        session.updated_at.clone(),
                    ]);
                }
                format!("{table}\n")
            });
        }
        ChatCommand::Log {
            session,
            since,
            limit,
        } => {
            let log = client
                .call::<protocol::chat::Log>(&protocol::chat::LogParams {
                    session,
                    since,
                    limit: Some(limit),
                })
                .await?;
            print(global, &log, || chat_text(&log));
        }
    }
    Ok(())
}

/// A session as a conversation: each message, then the instructions it produced.
fn chat_text(log: &protocol::chat::ChatLog) -> String {
    let mut text = format!(
        "{} ({}, {} messages)\n",
        log.session.title, log.session.project, log.session.messages
    );
    for message in &log.messages {
        let voice = if message.audio_asset.is_some() {
            " (voice)"
        } else {
            ""
        };
        text.push_str(&format!(
            "\n[{}] {}{voice}, {}:\n",
            message.seq,
            message.role.as_str(),
            message.created_at
        ));
        for line in message.text.lines() {
            text.push_str(&format!("    {line}\n"));
        }
        for instruction in log
            .instructions
            .iter()
            .filter(|instruction| instruction.message.as_deref() == Some(message.id.as_str()))
        {
            text.push_str(&format!(
                "    → instruction {} ({}, {}, max {}){}\n",
                instruction.id,
                instruction.kind.as_str(),
                instruction.state.as_str(),
                usd(instruction.max_cost_usd),
                outcome_text(instruction)
                    .map(|outcome| format!(": {outcome}"))
                    .unwrap_or_default()
            ));
        }
    }
    text
}

fn outcome_text(instruction: &wire::Instruction) -> Option<String> {
    match &instruction.outcome {
        Some(wire::InstructionOutcome::Run {
            run,
            status,
            spent_usd,
        }) => Some(format!(
            "run {run} {}, spent {}",
            status.as_str(),
            usd(*spent_usd)
        )),
        Some(wire::InstructionOutcome::Postprocess { report }) => Some(format!(
            "{} files written, {} failed",
            report.done, report.failed
        )),
        Some(wire::InstructionOutcome::QaCheck { report }) => Some(format!(
            "QA: {} files, {} failed hard, {} warned",
            report.summary.total_files, report.summary.hard_failures, report.summary.soft_warnings
        )),
        Some(wire::InstructionOutcome::Export { export }) => Some(format!(
            "export {}: {} files at {}",
            export.id, export.files, export.path
        )),
        Some(wire::InstructionOutcome::StorageSync { report }) => Some(format!(
            "{} {}: {} uploaded, {} downloaded, {} failed{}",
            match report.plan.direction {
                protocol::storage::Direction::Push => "pushed to",
                protocol::storage::Direction::Pull => "pulled from",
            },
            report.plan.destination,
            report.uploaded,
            report.downloaded,
            report.failed.len(),
            if report.dry_run { " (dry run)" } else { "" }
        )),
        Some(wire::InstructionOutcome::Acknowledged) => Some("acknowledged".to_owned()),
        None => instruction
            .error
            .as_ref()
            .map(|error| error.message.clone()),
    }
}

/// `kromactl audit list`: every mutating call and every refusal, with the caller's uid and
/// program (and an agent's declared name).
pub async fn audit(
    global: &Global,
    socket: &Path,
    command: crate::AuditCommand,
) -> Result<(), Failure> {
    let crate::AuditCommand::List { since, limit } = command;
    let client = Client::connect(socket).await?;
    let page = client
        .call::<protocol::audit::List>(&protocol::audit::ListParams {
            since,
            limit: Some(limit),
        })
        .await?;
    print(global, &page, || {
        output::audit_table(&page.entries).to_string()
    });
    Ok(())
}

/// The amount to confirm: `--max-cost` with `--yes`, else what the person agrees to on the
/// terminal after reading the instruction and its plan.
fn agreed_amount(
    instruction: &wire::Instruction,
    yes: bool,
    max_cost: Option<f64>,
) -> Result<f64, Failure> {
    crate::common::agree_to_spend(
        instruction.max_cost_usd,
        yes,
        max_cost,
        |amount| {
            eprint!("{}", details_text(instruction));
            format!(
                "Approve this instruction from {} and spend up to ${}?",
                requester_text(&instruction.requested_by),
                max_cost_text(amount)
            )
        },
        "not approved; nothing was spent",
    )
}

fn list_text(instructions: &[wire::Instruction]) -> String {
    if instructions.is_empty() {
        return "no instructions\n".to_owned();
    }
    let mut table = output::table(&["id", "project", "kind", "state", "max", "objective"]);
    for instruction in instructions {
        table.add_row(vec![
            instruction.id.clone(),
            instruction.project.clone(),
            instruction.kind.as_str().to_owned(),
            instruction.state.as_str().to_owned(),
            usd(instruction.max_cost_usd),
            shorten(&instruction.objective, 48),
        ]);
    }
    format!("{table}\n")
}

fn details_text(instruction: &wire::Instruction) -> String {
    let mut rows = vec![
        ("id", instruction.id.clone()),
        ("project", instruction.project.clone()),
        ("kind", instruction.kind.as_str().to_owned()),
        ("state", instruction.state.as_str().to_owned()),
        ("from", requester_text(&instruction.requested_by)),
        ("objective", instruction.objective.clone()),
        ("max cost", usd(instruction.max_cost_usd)),
    ];
    if let Some(source) = &instruction.source_text {
        rows.push(("said", source.clone()));
    }
    if let Some(approval) = instruction.approval {
        rows.push(("approved by", approval.as_str().to_owned()));
    }
    if let Some(waiting) = &instruction.waiting_for {
        rows.push(("waits because", waiting.clone()));
    }
    if let (Some(outcome), Some(_)) = (outcome_text(instruction), &instruction.outcome) {
        rows.push(("outcome", outcome));
    }
    if let Some(error) = &instruction.error {
        rows.push(("error", error.message.clone()));
    }
    let mut text = format!("{}\n", output::details(&rows));
    if let Some(plan) = &instruction.plan {
        text.push('\n');
        text.push_str(&plan_text(plan, PromptDetail::Full));
    }
    text
}

fn requester_text(requester: &wire::Requester) -> String {
    match &requester.client_name {
        Some(name) => format!("agent {name:?} via {}", requester.program),
        None => requester.program.clone(),
    }
}

fn allowance_text(status: &wire::AllowanceStatus) -> String {
    let allowance = &status.allowance;
    let rows = vec![
        ("per instruction", usd(allowance.per_instruction_usd)),
        ("per project per day", usd(allowance.per_project_daily_usd)),
        ("per day", usd(allowance.daily_usd)),
        ("used today", usd(status.used_today_usd)),
        (
            "set",
            status
                .set_at
                .clone()
                .unwrap_or_else(|| "never (agents may spend nothing without asking)".to_owned()),
        ),
    ];
    format!("{}\n", output::details(&rows))
}

/// A six-digit code as it is easiest to read out: `482 017`.
fn grouped(code: &str) -> String {
    match (code.get(..3), code.get(3..)) {
        (Some(head), Some(tail)) if code.len() == 6 => format!("{head} {tail}"),
        _ => code.to_owned(),
    }
}

/// At most `chars` characters of `text` on one line.
fn shorten(text: &str, chars: usize) -> String {
    let line: String = text.lines().next().unwrap_or_default().to_owned();
    if line.chars().count() <= chars && !text.contains('\n') {
        return line;
    }
    let mut short: String = line.chars().take(chars.saturating_sub(1)).collect();
    short.push('…');
    short
}
