//! What a restart and the passing time settle for taken files: moves a crash interrupted, work
//! it interrupted, and files that follow the instructions pipeline rules made of them.

use std::sync::Arc;

use kroma_protocol as protocol;
use protocol::instruction::InstructionState;
use protocol::watch::FileState;

use super::take::{carry_out, file_event, finish_move, settle};
use crate::Daemon;
use crate::error::Problem;
use crate::store::watch::{self as rows, FileChange, FileRow};

/// At start-up, before any work: removes what work a crash interrupted left half-written in
/// the rules' folders: the file writer's temporary `.kroma-*.part` files (in output folders,
/// `processing/` and `failed/`) and a chain's intermediate results (`processing/.kroma-*.png`).
/// No work runs yet, so none of them is being written.
pub(crate) async fn clean_leftovers(daemon: &Daemon) -> Result<(), Problem> {
    let rules = daemon.store.read(rows::rules).await?;
    let mut folders = Vec::new();
    for rule in rules {
        let folder = std::path::PathBuf::from(&rule.folder);
        folders.push(folder.join(super::rules::PROCESSING));
        folders.push(folder.join(super::rules::FAILED));
        if let Ok(protocol::watch::WatchAction::Chain { output, .. }) =
            serde_json::from_str(&rule.action_json)
        {
            folders.push(output.into());
        }
    }
    tokio::task::spawn_blocking(move || {
        for folder in folders {
            let Ok(entries) = std::fs::read_dir(&folder) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let ours = name.starts_with(".kroma-")
                    && (name.ends_with(".part") || name.ends_with(".png"));
                if ours && entry.file_type().is_ok_and(|kind| kind.is_file()) {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
    })
    .await
    .map_err(|err| {
        Problem::new(
            protocol::ErrorKind::Internal,
            protocol::ErrorCode::Internal,
            err.to_string(),
        )
    })
}

/// At start-up: makes every move the journal recorded but a stop interrupted.
pub(crate) async fn finish_moves(daemon: &Daemon) -> Result<(), Problem> {
    let moving = daemon.store.read(rows::moving).await?;
    for file in moving {
        finish_move(daemon, &file).await?;
    }
    Ok(())
}

/// At start-up: takes up again the files whose work a stop interrupted (taken, but no
/// instruction made, or a chain not finished).
pub(crate) async fn resume(daemon: &Arc<Daemon>) -> Result<(), Problem> {
    let open = daemon.store.read(rows::open).await?;
    for (file, instruction) in open {
        if file.instruction_id.is_some() || instruction.is_some() {
            continue;
        }
        let Some(rule) = rule_of(daemon, &file).await? else {
            continue;
        };
        let daemon = daemon.clone();
        let rule = Arc::new(rule);
        daemon.runner.spawn({
            let daemon = daemon.clone();
            async move {
                if let Err(err) = carry_out(&daemon, &rule, file).await {
                    tracing::warn!(error = %err.message, "could not take up a dropped file again");
                }
            }
        });
    }
    Ok(())
}

/// Follows the instructions pipeline rules made: a file waits while its instruction waits for
/// a person, and is done or failed when its instruction is.
/// Answers whether any taken file is still unfinished.
pub(crate) async fn follow_instructions(daemon: &Arc<Daemon>) -> Result<bool, Problem> {
    let open = daemon.store.read(rows::open).await?;
    let unfinished = !open.is_empty();
    for (file, instruction) in open {
        let Some(instruction) = instruction.as_deref().and_then(InstructionState::parse) else {
            continue;
        };
        let current = file.state()?;
        let wanted = match instruction {
            InstructionState::Done => FileState::Done,
            InstructionState::Failed | InstructionState::Canceled => FileState::Failed,
            InstructionState::AwaitingConfirmation | InstructionState::Proposed => {
                FileState::Waiting
            }
            InstructionState::Queued | InstructionState::Running => FileState::Processing,
        };
        if wanted == current {
            continue;
        }
        let Some(rule) = rule_of(daemon, &file).await? else {
            continue;
        };
        if wanted.is_final() {
            let reason = match instruction {
                InstructionState::Canceled => Some("its instruction was canceled".to_owned()),
                InstructionState::Failed => Some(instruction_error(daemon, &file).await),
                _ => None,
            };
            settle(daemon, &rule, &file.id, wanted, reason.as_deref(), None).await?;
        } else {
            let at = daemon.clock.now();
            daemon
                .store
                .write(move |tx| {
                    rows::change_file(
                        tx,
                        &file.id,
                        &FileChange {
                            state: Some(wanted),
                            ..FileChange::default()
                        },
                        &at,
                    )?;
                    let file = rows::file(tx, &file.id)?;
                    Ok::<_, Problem>((
                        (),
                        file.iter()
                            .map(|file| file_event(&at, file, None))
                            .collect(),
                    ))
                })
                .await?;
        }
    }
    Ok(unfinished)
}

/// The rule of a journal entry, removed or not.
async fn rule_of(daemon: &Daemon, file: &FileRow) -> Result<Option<rows::RuleRow>, Problem> {
    let rule_id = file.rule_id.clone();
    Ok(daemon
        .store
        .read(move |conn| rows::rule_by_id(conn, &rule_id))
        .await?)
}

async fn instruction_error(daemon: &Daemon, file: &FileRow) -> String {
    let id = file.instruction_id.clone().unwrap_or_default();
    let row = daemon
        .store
        .read(move |conn| crate::store::instructions::get(conn, &id))
        .await;
    row.ok()
        .flatten()
        .and_then(|row| row.error_json)
        .and_then(|json| serde_json::from_str::<protocol::ErrorData>(&json).ok())
        .map(|error| format!("its instruction failed: {}", error.message))
        .unwrap_or_else(|| "its instruction failed".to_owned())
}
