//! Instructions: work an agent (or a script) proposes. Each is validated and planned when it is
//! created, so it carries its plan and maximum cost; then it is queued at once when it is free or
//! fits the allowance a person set, and otherwise waits for a person (`instruction.confirm` on
//! the local socket, a one-time code read back to the agent). Every state change goes through
//! [`state::next`] and writes an `instruction.changed` event in the same transaction.
//!
//! What an agent writes (objective, source text, file names) is stored and shown as data; no
//! text anywhere can approve anything: approval is a method a person calls, or the allowance.

pub mod approval;
pub mod code;
mod execute;
pub(crate) mod notify;
pub mod state;
mod transfer;

use std::path::{Path, PathBuf};

use kroma_protocol as protocol;
use protocol::instruction::{
    Approval, Instruction, InstructionChanged, InstructionKind, InstructionPayload,
    InstructionState, PostprocessRequest, Requester,
};
use protocol::{ErrorCode, ErrorKind};

use crate::Daemon;
use crate::api::find_project;
use crate::error::Problem;
use crate::store::instructions::{self as rows, Change, InstructionRow};
use crate::store::{NewEvent, ProjectRow, StoreError};

pub use execute::{after_run_finished, execute, recover, stop_local};
use state::Step;

/// Who is calling: what the OS says of the connection, and the name an agent declared.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    pub uid: Option<u32>,
    pub program: String,
    /// Set once the connection called `agent.hello`.
    pub agent: Option<String>,
    /// Where `agent.hello` sets the name, shared by every call of the connection.
    pub agent_slot: std::sync::Arc<std::sync::OnceLock<String>>,
}

impl Caller {
    /// The caller of a call made in-process (no connection): the daemon itself.
    pub fn of_peer(peer: Option<&crate::server::Peer>) -> Caller {
        match peer {
            Some(peer) => Caller {
                uid: peer.uid,
                program: peer.client.clone(),
                agent: peer.agent.get().cloned(),
                agent_slot: peer.agent.clone(),
            },
            None => Caller {
                program: "in-process".to_owned(),
                ..Caller::default()
            },
        }
    }

    pub fn is_agent(&self) -> bool {
        self.agent.is_some()
    }

    pub(crate) fn requester(&self) -> Requester {
        Requester {
            channel: if self.is_agent() { "agent" } else { "socket" }.to_owned(),
            program: self.program.clone(),
            client_name: self.agent.clone(),
            uid: self.uid,
        }
    }
}

/// The instruction as the wire shows it; `page_base` is the confirmation page server's
/// `http://127.0.0.1:PORT`, when it runs.
pub fn to_proto(row: &InstructionRow, page_base: Option<&str>) -> Result<Instruction, Problem> {
    let corrupt = |what: &str, err: serde_json::Error| {
        Problem::from(StoreError::Corrupt(format!(
            "instruction {} {what}: {err}",
            row.id
        )))
    };
    let payload: InstructionPayload =
        serde_json::from_str(&row.payload_json).map_err(|err| corrupt("payload", err))?;
    let plan = row
        .plan_json
        .as_deref()
        .map(stored_plan)
        .transpose()
        .map_err(|err| {
            Problem::from(StoreError::Corrupt(format!(
                "instruction {}: {err}",
                row.id
            )))
        })?;
    let outcome = row
        .outcome_json
        .as_deref()
        .map(serde_json::from_str)
        .transpose()
        .map_err(|err| corrupt("outcome", err))?;
    let error = row
        .error_json
        .as_deref()
        .map(serde_json::from_str)
        .transpose()
        .map_err(|err| corrupt("error", err))?;
    Ok(Instruction {
        id: row.id.clone(),
        project: row.project_slug.clone(),
        kind: payload.kind(),
        state: row.state()?,
        objective: row.objective.clone(),
        source_text: row.source_text.clone(),
        message: row.message_id.clone(),
        watch_rule: row.watch_rule_id.clone(),
        payload,
        plan,
        max_cost_usd: row.max_cost_usd,
        approval: row.approval.as_deref().and_then(Approval::parse),
        waiting_for: row.waiting_for.clone(),
        confirm_url: match (page_base, &row.page_id, row.state()?) {
            (Some(base), Some(page), InstructionState::AwaitingConfirmation) => {
                Some(format!("{base}/confirm/{page}"))
            }
            _ => None,
        },
        requested_by: Requester {
            channel: row.channel.clone(),
            program: row.program.clone(),
            client_name: row.client_name.clone(),
            uid: row.peer_uid,
        },
        outcome,
        error,
        created_at: row.created_at.clone(),
        updated_at: row.updated_at.clone(),
    })
}

/// A stored plan, as the wire type.
pub(crate) fn stored_plan(
    json: &str,
) -> Result<protocol::run::Plan, crate::runs::stored::ReadError> {
    crate::runs::stored::StoredPlan::read(json).map(protocol::run::Plan::from)
}

/// `instruction.changed` for a move of `row` from `previous` to `state`.
pub(crate) fn changed_event(
    at: &str,
    row: &InstructionRow,
    previous: Option<InstructionState>,
    state: InstructionState,
    reason: Option<&str>,
) -> NewEvent {
    let kind = serde_json::from_value(serde_json::Value::String(row.kind.clone()))
        .unwrap_or(InstructionKind::Custom);
    NewEvent::of(
        at.to_owned(),
        Some(row.project_slug.clone()),
        &InstructionChanged {
            instruction: row.id.clone(),
            kind,
            state,
            previous,
            approval: row.approval.as_deref().and_then(Approval::parse),
            run: row.run_id.clone(),
            reason: reason.map(str::to_owned),
        },
    )
}

/// Moves `id` by `step` in one transaction with its event; answers the row after the move.
pub(crate) fn apply(
    tx: &rusqlite::Transaction,
    id: &str,
    step: Step,
    change: &Change,
    reason: Option<&str>,
    at: &str,
) -> Result<(InstructionRow, NewEvent), Problem> {
    let row = load(tx, id)?;
    let from = row.state()?;
    let to = state::next(from, step).map_err(illegal)?;
    if !rows::transition(tx, id, from, to, change, at)? {
        return Err(Problem::new(
            ErrorKind::Conflict,
            ErrorCode::IllegalTransition,
            format!("instruction {id} changed meanwhile"),
        ));
    }
    if to == InstructionState::AwaitingConfirmation {
        rows::set_page(tx, id, &code::random_token(), &code::random_token())?;
    }
    let row = load(tx, id)?;
    let event = changed_event(at, &row, Some(from), to, reason);
    Ok((row, event))
}

/// Where a new instruction comes from: what it is for and who asked.
pub(crate) struct Origin {
    pub objective: String,
    pub source_text: Option<String>,
    pub message: Option<String>,
    pub requester: Requester,
    /// The drop-folder rule whose file produced it.
    pub watch_rule: Option<String>,
}

/// A new instruction's row, `proposed`, its approval not decided yet.
pub(crate) fn new_row(
    planned: Planned,
    payload: &InstructionPayload,
    origin: Origin,
    at: &str,
) -> Result<InstructionRow, Problem> {
    let payload_json = serde_json::to_string(payload)
        .map_err(|err| Problem::new(ErrorKind::Internal, ErrorCode::Internal, err.to_string()))?;
    Ok(InstructionRow {
        id: uuid::Uuid::new_v4().to_string(),
        project_id: planned.project.id,
        project_slug: planned.project.slug,
        project_root: planned.project.root,
        kind: payload.kind().as_str().to_owned(),
        state: InstructionState::Proposed.as_str().to_owned(),
        objective: origin.objective,
        source_text: origin.source_text,
        payload_json,
        plan_json: planned.plan_json,
        max_cost_usd: planned.max_cost_usd,
        approval: None,
        approved_max_usd: None,
        waiting_for: None,
        channel: origin.requester.channel,
        program: origin.requester.program,
        client_name: origin.requester.client_name,
        peer_uid: origin.requester.uid,
        run_id: None,
        outcome_json: None,
        error_json: None,
        code_hash: None,
        code_max_usd: None,
        code_expires_at: None,
        code_tries: 0,
        page_id: None,
        page_token: None,
        message_id: origin.message,
        watch_rule_id: origin.watch_rule,
        created_at: at.to_owned(),
        updated_at: at.to_owned(),
    })
}

/// Inserts `row` and moves it as `decision` says (queued, or waiting for a person), with its
/// events; answers whether it is queued. Called inside the transaction that read what the
/// decision was based on.
pub(crate) fn insert_decided(
    tx: &rusqlite::Transaction,
    row: &InstructionRow,
    decision: approval::Decision,
    today: &str,
    at: &str,
) -> Result<(bool, Vec<NewEvent>), Problem> {
    use approval::Decision;
    rows::insert(tx, row, None)?;
    let created = changed_event(at, row, None, InstructionState::Proposed, None);
    let (step, change, reason) = match decision {
        Decision::Free => (Step::Approve, approved(Approval::Free, 0.0, today), None),
        Decision::WithinAllowance => (
            Step::Approve,
            approved(Approval::Allowance, row.max_cost_usd, today),
            None,
        ),
        Decision::WithinBudget => (
            Step::Approve,
            approved(Approval::Budget, row.max_cost_usd, today),
            None,
        ),
        Decision::NeedsPerson(why) => (
            Step::Wait,
            Change {
                waiting_for: Some(Some(why.clone())),
                ..Change::default()
            },
            Some(why),
        ),
    };
    let (_, moved) = apply(tx, &row.id, step, &change, reason.as_deref(), at)?;
    Ok((step == Step::Approve, vec![created, moved]))
}

/// What an approval writes: how, the cost approved and its UTC day (the allowance's day); the
/// instruction no longer waits.
pub(crate) fn approved(approval: Approval, max_usd: f64, today: &str) -> Change {
    Change {
        approval: Some((approval.as_str().to_owned(), max_usd, today.to_owned())),
        waiting_for: Some(None),
        ..Change::default()
    }
}

pub(crate) fn load(conn: &rusqlite::Connection, id: &str) -> Result<InstructionRow, Problem> {
    rows::get(conn, id)?.ok_or_else(|| not_found(id))
}

pub(crate) fn not_found(id: &str) -> Problem {
    Problem::new(
        ErrorKind::NotFound,
        ErrorCode::InstructionNotFound,
        format!("instruction `{id}` not found"),
    )
    .with_hint("listing the instructions shows their ids")
    .with_action(protocol::Action::call::<protocol::instruction::List>(
        [],
        &[],
    ))
}

pub(crate) fn illegal(err: state::IllegalTransition) -> Problem {
    Problem::new(
        ErrorKind::Conflict,
        ErrorCode::IllegalTransition,
        err.to_string(),
    )
}

/// Checks a text an agent or a person wrote: not empty when `required`, at most `max_chars`
/// characters, no control characters but line breaks and tabs.
pub(crate) fn check_text(
    what: &str,
    text: &str,
    max_chars: usize,
    required: bool,
) -> Result<(), Problem> {
    let chars = text.chars().count();
    let problem = if required && text.trim().is_empty() {
        Some(format!("the {what} is empty"))
    } else if chars > max_chars {
        Some(format!(
            "the {what} has {chars} characters; at most {max_chars} are kept"
        ))
    } else if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        Some(format!("the {what} holds control characters"))
    } else {
        None
    };
    match problem {
        Some(message) => Err(Problem::validation(ErrorCode::InvalidText, message)),
        None => Ok(()),
    }
}

/// What creating an instruction found out before anything is stored: its plan and cost.
pub(crate) struct Planned {
    pub project: ProjectRow,
    pub plan_json: Option<String>,
    pub max_cost_usd: f64,
    /// Why a person must approve it whatever it costs (an S3 sync), if so.
    pub needs_person: Option<String>,
}

/// Validates the payload against its project and plans it.
pub(crate) async fn plan(
    daemon: &Daemon,
    project: &str,
    payload: &InstructionPayload,
) -> Result<Planned, Problem> {
    let project = find_project(daemon, project).await?;
    match payload {
        InstructionPayload::PipelineRun(params) => {
            let named = find_project(daemon, &params.project).await?;
            if named.id != project.id {
                return Err(Problem::validation(
                    ErrorCode::InvalidInstruction,
                    format!(
                        "the instruction is for project `{}` but its plan names `{}`",
                        project.slug, named.slug
                    ),
                ));
            }
            // Scenes named by path must be the project's files; asset ids are the project's.
            let paths: Vec<String> = params
                .scenes
                .iter()
                .filter(|scene| uuid::Uuid::parse_str(scene).is_err())
                .cloned()
                .collect();
            check_inside_project(&project, paths, Vec::new()).await?;
            let plan = crate::runs::inputs::make_plan(daemon, &project, params, false).await?;
            let plan_json = crate::runs::stored::StoredPlan::from(&plan)
                .to_json()
                .map_err(|err| {
                    Problem::new(ErrorKind::Internal, ErrorCode::Internal, err.to_string())
                })?;
            Ok(Planned {
                max_cost_usd: plan.cost.max_usd,
                plan_json: Some(plan_json),
                project,
                needs_person: None,
            })
        }
        InstructionPayload::Postprocess(request) => {
            check_postprocess(&project, request).await?;
            Ok(Planned {
                project,
                plan_json: None,
                max_cost_usd: 0.0,
                needs_person: None,
            })
        }
        InstructionPayload::QaCheck(params) => {
            check_qa(daemon, &project, params).await?;
            Ok(Planned {
                project,
                plan_json: None,
                max_cost_usd: 0.0,
                needs_person: None,
            })
        }
        InstructionPayload::Export(params) => {
            transfer::check_export(daemon, &project, params).await?;
            Ok(Planned {
                project,
                plan_json: None,
                max_cost_usd: 0.0,
                needs_person: None,
            })
        }
        InstructionPayload::StorageSync(params) => {
            let needs_person = transfer::plan_sync(daemon, &project, params).await?;
            Ok(Planned {
                project,
                plan_json: None,
                max_cost_usd: 0.0,
                needs_person,
            })
        }
        InstructionPayload::Custom(_) => Ok(Planned {
            project,
            plan_json: None,
            max_cost_usd: 0.0,
            needs_person: None,
        }),
    }
}

/// A QA check an agent asks for reads only what belongs to the project: files inside its folder,
/// one of its assets, or one of its runs.
async fn check_qa(
    daemon: &Daemon,
    project: &ProjectRow,
    params: &protocol::qa::CheckParams,
) -> Result<(), Problem> {
    let other_project = |named: &str| {
        Problem::validation(
            ErrorCode::InvalidInstruction,
            format!(
                "the instruction is for project `{}` but its check names `{named}`",
                project.slug
            ),
        )
    };
    if let Some(named) = &params.project
        && find_project(daemon, named).await?.id != project.id
    {
        return Err(other_project(named));
    }
    if let Some(run) = &params.run {
        let id = run.clone();
        let owner = daemon
            .store
            .read(move |conn| crate::store::runs::get_run(conn, &id))
            .await?;
        if owner.project_id != project.id {
            return Err(other_project(&owner.project_slug));
        }
    }
    if params.paths.is_empty() && params.run.is_none() && params.asset.is_none() {
        return Err(Problem::validation(
            ErrorCode::InvalidInstruction,
            "a QA check names files or folders, an asset or a run",
        ));
    }
    check_inside_project(project, params.paths.clone(), Vec::new()).await
}

/// The files a post-process instruction names (and its output folder) as paths to check.
async fn check_postprocess(
    project: &ProjectRow,
    request: &PostprocessRequest,
) -> Result<(), Problem> {
    let (paths, output_dir) = match request {
        PostprocessRequest::Color(params) => (&params.paths, &params.output_dir),
        PostprocessRequest::BgRemove(params) => (&params.paths, &params.output_dir),
        PostprocessRequest::Upscale(params) => (&params.paths, &params.output_dir),
    };
    if paths.is_empty() {
        return Err(Problem::validation(
            ErrorCode::InvalidInstruction,
            "a post-process instruction names at least one file or folder",
        ));
    }
    check_inside_project(project, paths.clone(), output_dir.iter().cloned().collect()).await
}

/// Every file an instruction names, every image found in a folder it names, and every output
/// folder, must lie inside the project's folder once links are resolved: an agent works on the
/// files a person put there, and cannot send or read anything else. (Checked when the
/// instruction is created; the files are read again when it runs.)
async fn check_inside_project(
    project: &ProjectRow,
    inputs: Vec<String>,
    outputs: Vec<String>,
) -> Result<(), Problem> {
    let root = PathBuf::from(&project.root);
    tokio::task::spawn_blocking(move || {
        let root = crate::projects::root::resolve(&root).map_err(|err| {
            Problem::new(
                ErrorKind::Infra,
                ErrorCode::IoError,
                format!("resolving the project folder {}: {err}", root.display()),
            )
        })?;
        let outside = |path: &Path| {
            Problem::new(
                ErrorKind::Policy,
                ErrorCode::PathOutsideProject,
                format!(
                    "{} lies outside the project's folder {}",
                    path.display(),
                    root.display()
                ),
            )
            .with_hint(
                "agents work only on files inside the project's folder; copy the files there first",
            )
        };
        for path in inputs.iter().chain(&outputs) {
            if !Path::new(path).is_absolute() {
                return Err(Problem::validation(
                    ErrorCode::InvalidInstruction,
                    format!("{path} is not an absolute path"),
                ));
            }
        }
        for output in &outputs {
            let resolved = crate::projects::root::resolve(Path::new(output)).map_err(|err| {
                Problem::new(
                    ErrorKind::NotFound,
                    ErrorCode::FileNotFound,
                    format!("{output}: {err}"),
                )
            })?;
            if !resolved.starts_with(&root) {
                return Err(outside(Path::new(output)));
            }
        }
        // Folders are walked as the work will walk them, links followed: each file found counts.
        for found in crate::projects::import::expand(&inputs) {
            match found {
                Ok(candidate) if !candidate.real.starts_with(&root) => {
                    return Err(outside(&candidate.shown));
                }
                Ok(_) => {}
                Err((_, problem)) => return Err(problem),
            }
        }
        Ok(())
    })
    .await
    .map_err(|err| Problem::new(ErrorKind::Internal, ErrorCode::Internal, err.to_string()))?
}
