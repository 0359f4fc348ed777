//! `instruction.*` and `agent.*` handlers. The rules live in `crate::instructions`; these
//! functions read the caller, run each decision in one transaction, and carry out what became
//! queued.
//!
//! `instruction.confirm`, `instruction.code` and `agent.allowance_set` are closed to agents'
//! connections by the registration (`Method::FOR_AGENTS`); they check the caller again here,
//! so a mistake in one place is not enough to let an agent approve its own spending.

use std::sync::Arc;

use kroma_protocol as protocol;
use protocol::instruction::{
    Allowance, AllowanceStatus, Approval, ConfirmCodeParams, ConfirmParams, CreateParams, HelloAck,
    HelloParams, Instruction, InstructionKind, InstructionList, InstructionRef, InstructionState,
    ListParams, OneTimeCode,
};
use protocol::{ErrorCode, ErrorKind};

use super::{find_project, parse_limit};
use crate::Daemon;
use crate::error::Problem;
use crate::instructions::approval::{self, Decision, UsedToday};
use crate::instructions::state::Step;
use crate::instructions::{self, Caller, apply, approved, code, load, to_proto};
use crate::store::instructions::{self as rows, Change, InstructionRow};

pub async fn create(
    daemon: Arc<Daemon>,
    caller: Caller,
    params: CreateParams,
) -> Result<Instruction, Problem> {
    let max = protocol::instruction::MAX_TEXT_CHARS;
    instructions::check_text("objective", &params.objective, max, true)?;
    if let Some(text) = &params.source_text {
        instructions::check_text("source text", text, max, false)?;
    }
    let mut planned = instructions::plan(&daemon, &params.project, &params.payload).await?;
    let needs_person = planned.needs_person.take();
    let row = instructions::new_row(
        planned,
        &params.payload,
        instructions::Origin {
            objective: params.objective,
            source_text: params.source_text,
            message: params.message,
            requester: caller.requester(),
            watch_rule: None,
        },
        &daemon.clock.now(),
    )?;
    let id = row.id.clone();
    let kind = params.payload.kind();
    let at = daemon.clock.now();
    let today = daemon.clock.today();
    let queued = daemon
        .store
        .write(move |tx| {
            if let Some(message) = &row.message_id
                && crate::store::chat::project_of_message(tx, message)?.as_deref()
                    != Some(row.project_id.as_str())
            {
                return Err(Problem::validation(
                    ErrorCode::InvalidInstruction,
                    format!("message `{message}` is not a chat message of project `{}`", row.project_slug),
                ));
            }
            // Read and decided in this transaction: concurrent instructions see each other's
            // reservations and cannot overrun the allowance together.
            let decision = if kind == InstructionKind::Custom {
                Decision::NeedsPerson(
                    "Kroma does not carry out custom instructions: a person reads and acknowledges it"
                        .to_owned(),
                )
            } else if let Some(why) = needs_person {
                Decision::NeedsPerson(why)
            } else {
                let (allowance, _) = rows::allowance(tx)?;
                let used = UsedToday {
                    project_usd: rows::allowance_used(tx, &today, Some(&row.project_id))?,
                    all_usd: rows::allowance_used(tx, &today, None)?,
                };
                approval::decide(row.max_cost_usd, &allowance, used)
            };
            instructions::insert_decided(tx, &row, decision, &today, &at)
        })
        .await?;
    if queued {
        instructions::execute(daemon.clone(), id.clone()).await?;
    }
    get(daemon, InstructionRef { id }).await
}

pub async fn list(daemon: Arc<Daemon>, params: ListParams) -> Result<InstructionList, Problem> {
    let limit = parse_limit(params.limit)?;
    let project_id = match &params.project {
        Some(project) => Some(find_project(&daemon, project).await?.id),
        None => None,
    };
    let rows = daemon
        .store
        .read(move |conn| rows::list(conn, project_id.as_deref(), params.state, limit))
        .await?;
    Ok(InstructionList {
        instructions: rows
            .iter()
            .map(|row| to_proto(row, daemon.confirm_page_base().as_deref()))
            .collect::<Result<_, _>>()?,
    })
}

pub async fn get(daemon: Arc<Daemon>, params: InstructionRef) -> Result<Instruction, Problem> {
    let row = daemon
        .store
        .read(move |conn| Ok(load(conn, &params.id)))
        .await??;
    to_proto(&row, daemon.confirm_page_base().as_deref())
}

/// A person's approval on the local socket.
pub async fn confirm(
    daemon: Arc<Daemon>,
    caller: Caller,
    params: ConfirmParams,
) -> Result<Instruction, Problem> {
    refuse_agents(
        &caller,
        <protocol::instruction::Confirm as protocol::Method>::NAME,
    )?;
    let confirmed = crate::runs::gates::parse_confirmation(params.confirm_cost_usd)?;
    let id = params.id;
    let at = daemon.clock.now();
    let today = daemon.clock.today();
    let moved = id.clone();
    daemon
        .store
        .write(move |tx| {
            let row = load(tx, &moved)?;
            crate::runs::gates::check_confirmation(
                confirmed,
                row.max_cost_usd,
                "the instruction",
                protocol::Action::call::<protocol::instruction::Confirm>(
                    [("id", moved.as_str().into())],
                    &["confirm_cost_usd"],
                ),
            )?;
            let change = approved(Approval::Terminal, row.max_cost_usd, &today);
            let (_, event) = apply(tx, &moved, Step::Approve, &change, None, &at)?;
            Ok::<_, Problem>(((), vec![event]))
        })
        .await?;
    instructions::execute(daemon.clone(), id.clone()).await?;
    get(daemon, InstructionRef { id }).await
}

pub async fn cancel(daemon: Arc<Daemon>, params: InstructionRef) -> Result<Instruction, Problem> {
    let id = params.id;
    let row = {
        let id = id.clone();
        daemon.store.read(move |conn| Ok(load(conn, &id))).await??
    };
    match (row.state()?, &row.run_id) {
        // The run's end settles the instruction, with what its calls in flight cost.
        (InstructionState::Running, Some(run)) => {
            super::runs::cancel(daemon.clone(), protocol::run::RunRef { run: run.clone() }).await?;
        }
        (state, _) => {
            // Local work (a step, a check, an export, a sync) stops where it stands; what it
            // wrote stays.
            let stopped = state == InstructionState::Running && instructions::stop_local(&id);
            let reason = stopped
                .then_some("canceled while its local work ran; what it wrote so far is kept");
            let at = daemon.clock.now();
            let moved = id.clone();
            daemon
                .store
                .write(move |tx| {
                    let (_, event) =
                        apply(tx, &moved, Step::Cancel, &Change::default(), reason, &at)?;
                    Ok::<_, Problem>(((), vec![event]))
                })
                .await?;
        }
    }
    get(daemon, InstructionRef { id }).await
}

/// A fresh one-time code for a person to read back to the agent.
pub async fn make_code(
    daemon: Arc<Daemon>,
    caller: Caller,
    params: InstructionRef,
) -> Result<OneTimeCode, Problem> {
    refuse_agents(
        &caller,
        <protocol::instruction::Code as protocol::Method>::NAME,
    )?;
    instructions::notify::issue_code(&daemon, &params.id, instructions::notify::Issuer::Person)
        .await?
        .ok_or_else(|| {
            Problem::new(
                ErrorKind::Internal,
                ErrorCode::Internal,
                "a person's code was not made",
            )
        })
}

fn refuse_agents(caller: &Caller, method: &str) -> Result<(), Problem> {
    if caller.is_agent() {
        return Err(not_for_agents(method));
    }
    Ok(())
}

/// The refusal an agent's connection gets for a person's method.
pub fn not_for_agents(method: &str) -> Problem {
    Problem::new(
        ErrorKind::Policy,
        ErrorCode::NotForAgents,
        format!("{method} is a person's to call, not an agent's"),
    )
    .with_hint("a person approves spending on their own terminal, with a one-time code they read out, or on the confirmation page")
}

/// What a code check found; refusals are answered after the transaction commits, so the wrong
/// try it counted stays counted.
enum Verdict {
    Approved,
    Refused(Problem),
}

/// An agent submits the code a person read out to it.
pub async fn confirm_code(
    daemon: Arc<Daemon>,
    params: ConfirmCodeParams,
) -> Result<Instruction, Problem> {
    let id = params.id;
    let typed = params.code;
    let now = daemon.clock.now();
    let today = daemon.clock.today();
    let checked = id.clone();
    let verdict = daemon
        .store
        .write(move |tx| {
            let row = load(tx, &checked)?;
            let verdict = check_code(tx, &row, &typed, &now)?;
            if !matches!(verdict, Verdict::Approved) {
                return Ok::<_, Problem>((verdict, Vec::new()));
            }
            let change = approved(Approval::Code, row.max_cost_usd, &today);
            let (_, event) = apply(tx, &checked, Step::Approve, &change, None, &now)?;
            Ok((verdict, vec![event]))
        })
        .await?;
    if let Verdict::Refused(problem) = verdict {
        return Err(problem);
    }
    instructions::execute(daemon.clone(), id.clone()).await?;
    get(daemon, InstructionRef { id }).await
}

fn check_code(
    tx: &rusqlite::Transaction,
    row: &InstructionRow,
    typed: &str,
    now: &str,
) -> Result<Verdict, Problem> {
    let max_tries = protocol::instruction::MAX_CODE_TRIES;
    let locked = || {
        Verdict::Refused(
            Problem::new(
                ErrorKind::Policy,
                ErrorCode::CodeLocked,
                format!(
                    "instruction {} takes no more codes after {max_tries} wrong ones",
                    row.id
                ),
            )
            .with_hint("the person confirms it on their terminal or on the confirmation page"),
        )
    };
    if row.state()? != InstructionState::AwaitingConfirmation {
        return Ok(Verdict::Refused(Problem::new(
            ErrorKind::Conflict,
            ErrorCode::IllegalTransition,
            format!(
                "instruction {} is {}, not waiting for a person",
                row.id, row.state
            ),
        )));
    }
    if row.code_tries >= max_tries {
        return Ok(locked());
    }
    let usable = row.usable_code_hash(now);
    let matches = match (code::normalize(typed), usable) {
        (Some(typed), Some(stored)) => code::same_hash(&code::hash(&row.id, &typed), stored),
        _ => false,
    };
    if matches {
        return Ok(Verdict::Approved);
    }
    let tries = rows::count_wrong_code(tx, &row.id)?;
    if tries >= max_tries {
        return Ok(locked());
    }
    let why = if usable.is_none() {
        "no code is valid for it now (none was made, it expired, or the cost changed)"
    } else {
        "the code is wrong"
    };
    Ok(Verdict::Refused(
        Problem::new(
            ErrorKind::Policy,
            ErrorCode::InvalidCode,
            format!(
                "instruction {} was not approved: {why}; {} tries left",
                row.id,
                max_tries - tries
            ),
        )
        .with_hint("ask the person to read the code again, or to make a new one"),
    ))
}

pub async fn allowance_get(daemon: Arc<Daemon>) -> Result<AllowanceStatus, Problem> {
    let today = daemon.clock.today();
    let status = daemon
        .store
        .read(move |conn| {
            let (allowance, set_at) = rows::allowance(conn)?;
            let used_today_usd = rows::allowance_used(conn, &today, None)?;
            Ok(AllowanceStatus {
                allowance,
                used_today_usd,
                set_at,
            })
        })
        .await?;
    Ok(status)
}

/// A person's standing permission for agents' spending.
pub async fn allowance_set(
    daemon: Arc<Daemon>,
    caller: Caller,
    params: Allowance,
) -> Result<AllowanceStatus, Problem> {
    refuse_agents(
        &caller,
        <protocol::instruction::AllowanceSet as protocol::Method>::NAME,
    )?;
    for (name, amount) in [
        ("per_instruction_usd", params.per_instruction_usd),
        ("per_project_daily_usd", params.per_project_daily_usd),
        ("daily_usd", params.daily_usd),
    ] {
        if !approval::valid_amount(amount) {
            return Err(Problem::validation(
                ErrorCode::InvalidAllowance,
                format!("{name} must be a number of dollars from 0 to 1000000"),
            ));
        }
    }
    let at = daemon.clock.now();
    daemon
        .store
        .write(move |tx| {
            rows::set_allowance(tx, &params, &at, caller.uid)?;
            Ok::<_, Problem>(((), Vec::new()))
        })
        .await?;
    allowance_get(daemon).await
}

/// Marks the connection an agent's. Irreversible for the connection's life.
pub fn hello(
    agent: &std::sync::OnceLock<String>,
    params: HelloParams,
) -> Result<HelloAck, Problem> {
    let name = params.client_name.trim();
    if name.is_empty()
        || name.chars().count() > protocol::instruction::MAX_CLIENT_NAME_CHARS
        || name.chars().any(char::is_control)
    {
        return Err(Problem::validation(
            ErrorCode::InvalidName,
            format!(
                "client_name must be 1 to {} characters without control characters",
                protocol::instruction::MAX_CLIENT_NAME_CHARS
            ),
        ));
    }
    if agent.set(name.to_owned()).is_err() {
        return Err(Problem::new(
            ErrorKind::Conflict,
            ErrorCode::AlreadyAgent,
            "this connection already said it is an agent's",
        ));
    }
    Ok(HelloAck {
        methods: protocol::openrpc::method_infos()
            .into_iter()
            .filter(|info| info.for_agents)
            .map(|info| info.name.to_owned())
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{NewProject, Store, StoreError, insert_project};

    const ISSUED: &str = "2026-01-01T00:00:00.000Z";
    const EXPIRES: &str = "2026-01-01T00:10:00.000Z";

    fn waiting(max_cost_usd: f64) -> InstructionRow {
        InstructionRow {
            id: "i1".into(),
            project_id: "p1".into(),
            project_slug: "noir".into(),
            project_root: "/p/noir".into(),
            kind: "pipeline_run".into(),
            state: InstructionState::AwaitingConfirmation.as_str().into(),
            objective: "draw".into(),
            source_text: None,
            payload_json: r#"{"type":"custom","params":{}}"#.into(),
            plan_json: None,
            max_cost_usd,
            approval: None,
            approved_max_usd: None,
            waiting_for: Some("no allowance".into()),
            channel: "agent".into(),
            program: "kroma-mcp".into(),
            client_name: Some("voice".into()),
            peer_uid: None,
            run_id: None,
            outcome_json: None,
            error_json: None,
            code_hash: None,
            code_max_usd: None,
            code_expires_at: None,
            code_tries: 0,
            page_id: None,
            page_token: None,
            message_id: None,
            watch_rule_id: None,
            created_at: ISSUED.into(),
            updated_at: ISSUED.into(),
        }
    }

    /// What `check_code` says of `typed` at `now`, for an instruction of `max_cost_usd` whose
    /// code "123456" was made for 0.5 USD and expires at [`EXPIRES`].
    async fn check(
        typed: &'static str,
        now: &'static str,
        max_cost_usd: f64,
    ) -> Result<(), String> {
        let temp = tempfile::tempdir().unwrap();
        let store = Store::open(&temp.path().join("kroma.db")).unwrap();
        store
            .write(move |tx| {
                insert_project(
                    tx,
                    &NewProject {
                        id: "p1".into(),
                        slug: "noir".into(),
                        name: "Noir".into(),
                        description: String::new(),
                        root: "/p/noir".into(),
                        s3: None,
                        at: ISSUED.into(),
                    },
                )?;
                rows::insert(tx, &waiting(max_cost_usd), None)?;
                rows::set_code(tx, "i1", &code::hash("i1", "123456"), 0.5, EXPIRES, true)?;
                let row = rows::get(tx, "i1")?.unwrap();
                let verdict = match check_code(tx, &row, typed, now) {
                    Ok(Verdict::Approved) => Ok(()),
                    Ok(Verdict::Refused(problem)) => Err(problem.code.as_str().to_owned()),
                    Err(problem) => Err(format!("error {}", problem.code)),
                };
                Ok::<_, StoreError>((verdict, Vec::new()))
            })
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_code_approves_only_before_it_expires_and_only_the_cost_it_was_made_for() {
        let before = "2026-01-01T00:09:59.999Z";
        let after = "2026-01-01T00:10:00.001Z";
        assert_eq!(check("123456", before, 0.5).await, Ok(()));
        assert_eq!(check("123 456", before, 0.5).await, Ok(()));
        assert_eq!(
            check("123456", after, 0.5).await,
            Err("invalid_code".into())
        );
        assert_eq!(
            check("123456", EXPIRES, 0.5).await,
            Err("invalid_code".into())
        );
        // The plan got dearer after the code was made: the code is worth nothing.
        assert_eq!(
            check("123456", before, 0.75).await,
            Err("invalid_code".into())
        );
        assert_eq!(
            check("654321", before, 0.5).await,
            Err("invalid_code".into())
        );
    }
}
