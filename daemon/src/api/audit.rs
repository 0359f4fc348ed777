//! `agent.refused`: what kroma-mcp refused before kromad saw it, put in the audit log beside
//! kromad's own refusals. The entry's method names the kind (`mcp.host_answer`,
//! `mcp.unknown_tool`, `mcp.http`) and its outcome the refusal in words a person reads with
//! `audit.list`. Names in it come from an agent: control characters are dropped and they are cut
//! to [`protocol::audit::MAX_REFUSED_NAME_CHARS`].

use std::sync::Arc;

use kroma_protocol as protocol;
use protocol::ErrorCode;
use protocol::audit::{Refusal, RefusedAck, RefusedParams};

use super::audit_entry;
use crate::Daemon;
use crate::error::Problem;
use crate::instructions::Caller;
use crate::store::{self, StoreError};

pub async fn refused(
    daemon: Arc<Daemon>,
    caller: Caller,
    params: RefusedParams,
) -> Result<RefusedAck, Problem> {
    if !(1..=protocol::audit::MAX_REFUSED_COUNT).contains(&params.count) {
        return Err(Problem::validation(
            ErrorCode::InvalidParams,
            format!(
                "count must be between 1 and {}",
                protocol::audit::MAX_REFUSED_COUNT
            ),
        ));
    }
    let (method, outcome) = describe(&params.what);
    let outcome = match params.count {
        1 => outcome,
        count => format!("{outcome} ({count} times)"),
    };
    let mut entry = audit_entry(&caller, method);
    entry.at = daemon.clock.now();
    entry.params_digest = store::params_digest(serde_json::to_string(&params).ok().as_deref(), &[]);
    entry.outcome = outcome;
    let id = daemon
        .store
        .write(move |tx| Ok::<_, StoreError>((store::insert_audit(tx, &entry)?, Vec::new())))
        .await?;
    Ok(RefusedAck {
        entry: u64::try_from(id).unwrap_or_default(),
    })
}

/// The entry's method and outcome for a refusal.
fn describe(refusal: &Refusal) -> (&'static str, String) {
    match refusal {
        Refusal::HostAccept { instruction, mode } => {
            let mode = match mode {
                protocol::audit::ElicitationMode::Form => "form",
                protocol::audit::ElicitationMode::Url => "page",
            };
            (
                "mcp.host_answer",
                format!(
                    "approves_nothing: the host accepted the {mode} elicitation of instruction {}",
                    clean(instruction)
                ),
            )
        }
        Refusal::UnknownTool { name } => {
            ("mcp.unknown_tool", format!("unknown_tool: {}", clean(name)))
        }
        Refusal::Http { reason } => ("mcp.http", reason.as_str().to_owned()),
    }
}

/// An agent's text as an entry may hold it.
fn clean(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control())
        .take(protocol::audit::MAX_REFUSED_NAME_CHARS)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::audit::{ElicitationMode, HttpRefusal};

    #[test]
    fn entries_name_the_refusal_and_keep_agent_text_harmless() {
        let (method, outcome) = describe(&Refusal::HostAccept {
            instruction: "ins-1".into(),
            mode: ElicitationMode::Url,
        });
        assert_eq!(method, "mcp.host_answer");
        assert_eq!(
            outcome,
            "approves_nothing: the host accepted the page elicitation of instruction ins-1"
        );
        let hostile = format!("set_allowance\u{1b}[2J\n{}", "x".repeat(500));
        let (method, outcome) = describe(&Refusal::UnknownTool { name: hostile });
        assert_eq!(method, "mcp.unknown_tool");
        assert!(
            outcome.starts_with("unknown_tool: set_allowance[2J"),
            "{outcome}"
        );
        assert!(!outcome.chars().any(char::is_control));
        assert_eq!(
            outcome.chars().count(),
            "unknown_tool: ".len() + protocol::audit::MAX_REFUSED_NAME_CHARS
        );
        let (method, outcome) = describe(&Refusal::Http {
            reason: HttpRefusal::WrongToken,
        });
        assert_eq!((method, outcome.as_str()), ("mcp.http", "wrong_token"));
    }
}
