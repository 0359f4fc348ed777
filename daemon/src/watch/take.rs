//! Taking one complete file: hash it, record it in the journal once (a duplicate is recorded as
//! one and started nothing), move it to `processing/`, then carry out the rule's action, and
//! settle it in `done/` or `failed/` (with a `.reason.txt`).
//!
//! Every move is written to the journal first (`path`, `moved_from`) and made on disk after, so
//! [`finish_moves`] completes at start-up whatever a crash interrupted; a file whose work was
//! interrupted is taken up again by [`resume`]. Nothing here deletes an input.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kroma_protocol as protocol;
use protocol::instruction::{InstructionPayload, Requester};
use protocol::watch::{FileState, Inputs, WatchAction, WatchFileChanged, WatchRuleChanged};
use protocol::{ErrorCode, ErrorKind};
use sha2::{Digest, Sha256};

use super::pending::Stat;
use super::rules::{DONE, DUPLICATES, FAILED, PROCESSING};
use crate::Daemon;
use crate::error::Problem;
use crate::instructions::approval;
use crate::store::NewEvent;
use crate::store::watch::{self as rows, FileChange, FileRow, RuleRow};

/// Takes the complete file at `path` for `rule`. Every outcome ends in the journal; errors of
/// the store are logged (the file stays where it is and is found again by the next scan).
pub(crate) async fn take(daemon: Arc<Daemon>, rule: Arc<RuleRow>, path: PathBuf, stat: Stat) {
    if let Err(err) = take_file(&daemon, &rule, &path, stat).await {
        tracing::warn!(rule = %rule.name, file = %path.display(), error = %err.message, "could not take a dropped file");
    }
}

async fn take_file(
    daemon: &Arc<Daemon>,
    rule: &Arc<RuleRow>,
    path: &Path,
    stat: Stat,
) -> Result<(), Problem> {
    let Some(name) = path.file_name().and_then(|name| name.to_str()) else {
        tracing::warn!(file = %path.display(), "skipping a dropped file whose name is not UTF-8");
        return Ok(());
    };
    let name = name.to_owned();
    let shown = path.display().to_string();
    let inputs = inputs(rule);
    if inputs == Inputs::Keep {
        let (rule_id, name, shown) = (rule.id.clone(), name.clone(), shown.clone());
        let size = stat.size as i64;
        let known = daemon
            .store
            .read(move |conn| rows::known(conn, &rule_id, &name, &shown, size, stat.mtime_ns))
            .await?;
        if known {
            return Ok(());
        }
    }
    let hashed = {
        let path = path.to_owned();
        tokio::task::spawn_blocking(move || hash(&path))
            .await
            .map_err(internal)?
    };
    let sha256 = match hashed {
        Ok(Some(sha256)) => sha256,
        // Not a regular file (a link, a folder, gone): not ours to take.
        Ok(None) => return Ok(()),
        Err(err) => {
            tracing::warn!(file = %shown, %err, "could not read a dropped file");
            return Ok(());
        }
    };
    let folder = PathBuf::from(&rule.folder);
    let _moves = daemon.watches.lock_moves(&rule.id).await;
    let claim = {
        let rule_id = rule.id.clone();
        let file = FileRow {
            id: uuid::Uuid::new_v4().to_string(),
            rule_id: rule.id.clone(),
            name: name.clone(),
            size: stat.size as i64,
            mtime_ns: stat.mtime_ns,
            sha256: sha256.clone(),
            path: shown.clone(),
            moved_from: None,
            state: FileState::Processing.as_str().to_owned(),
            instruction_id: None,
            output: None,
            duplicate_of: None,
            reason: None,
            seen_at: daemon.clock.now(),
            updated_at: daemon.clock.now(),
        };
        let (processing, duplicates) = match inputs {
            Inputs::Move => (
                Some(free_name(&folder.join(PROCESSING), &name)),
                Some(free_name(&folder.join(DUPLICATES), &name)),
            ),
            Inputs::Keep => (None, None),
        };
        let at = daemon.clock.now();
        daemon
            .store
            .write(move |tx| {
                let mut file = file;
                match rows::taken(tx, &rule_id, &file.sha256)? {
                    // A kept input seen again (touched, or after a restart).
                    Some(earlier) if earlier.path == file.path => return Ok((None, Vec::new())),
                    Some(earlier) => {
                        file.state = FileState::Duplicate.as_str().to_owned();
                        file.duplicate_of = Some(earlier.id);
                        file.reason = Some(format!(
                            "the same content was taken before as `{}`",
                            earlier.name
                        ));
                        if let Some(target) = duplicates {
                            file.moved_from = Some(file.path.clone());
                            file.path = target.display().to_string();
                        }
                    }
                    None => {
                        if let Some(target) = processing {
                            file.moved_from = Some(file.path.clone());
                            file.path = target.display().to_string();
                        }
                    }
                }
                rows::insert_file(tx, &file)?;
                let event = file_event(&at, &file, None);
                Ok::<_, Problem>((Some(file), vec![event]))
            })
            .await?
    };
    let Some(file) = claim else {
        return Ok(());
    };
    finish_move(daemon, &file).await?;
    drop(_moves);
    if file.state()? == FileState::Duplicate {
        return Ok(());
    }
    carry_out(daemon, rule, file).await
}

/// Carries out the rule's action on a taken file (also after a restart).
pub(crate) async fn carry_out(
    daemon: &Arc<Daemon>,
    rule: &Arc<RuleRow>,
    file: FileRow,
) -> Result<(), Problem> {
    let action: WatchAction = serde_json::from_str(&rule.action_json)
        .map_err(|err| internal(format!("rule {} action: {err}", rule.id)))?;
    let outcome = match &action {
        WatchAction::Chain { steps, output } => {
            super::chain::run(daemon, rule, &file, steps, Path::new(output)).await
        }
        WatchAction::Pipeline { plan } => propose(daemon, rule, &file, plan).await,
    };
    match outcome {
        Ok(()) => Ok(()),
        // kromad is stopping: the file stays `processing` and is taken up at the next start.
        Err(err) if err.code == ErrorCode::Stopped => Ok(()),
        Err(err) => {
            settle(
                daemon,
                rule,
                &file.id,
                FileState::Failed,
                Some(&err.message),
                None,
            )
            .await
        }
    }
}

/// Turns a taken file into an instruction: the file is imported into the project as an input,
/// the rule's plan made with it as the one scene; the instruction runs within the rule's budget
/// or waits for a person.
async fn propose(
    daemon: &Arc<Daemon>,
    rule: &Arc<RuleRow>,
    file: &FileRow,
    plan: &protocol::run::PlanParams,
) -> Result<(), Problem> {
    let project = crate::api::find_project(daemon, &plan.project).await?;
    let candidate = crate::projects::import::Candidate {
        shown: PathBuf::from(&file.path),
        real: PathBuf::from(&file.path),
    };
    let (_, asset) = crate::api::assets::import_one(
        daemon,
        &project,
        candidate,
        protocol::asset::AssetKind::Input,
    )
    .await?;
    let mut params = plan.clone();
    params.scenes = vec![asset.id.clone()];
    let payload = InstructionPayload::PipelineRun(Box::new(params));
    let planned = crate::instructions::plan(daemon, &project.slug, &payload).await?;
    let row = crate::instructions::new_row(
        planned,
        &payload,
        crate::instructions::Origin {
            objective: format!(
                "Generate from `{}`, dropped into {} (rule `{}`)",
                file.name, rule.folder, rule.name
            ),
            source_text: None,
            message: None,
            requester: Requester {
                channel: "watch".to_owned(),
                program: format!("watch rule {}", rule.name),
                client_name: None,
                uid: None,
            },
            watch_rule: Some(rule.id.clone()),
        },
        &daemon.clock.now(),
    )?;
    let id = row.id.clone();
    let file_id = file.id.clone();
    let at = daemon.clock.now();
    let today = daemon.clock.today();
    let queued = daemon
        .store
        .write(move |tx| {
            // The budget is read and reserved in this transaction: files taken at once cannot
            // overrun it together.
            let rule = rows::rule_by_id(tx, &row.watch_rule_id.clone().unwrap_or_default())?
                .ok_or_else(|| internal("the rule is gone"))?;
            let used = rows::budget_used(tx, &rule.id)?;
            let decision = approval::decide_budget(row.max_cost_usd, rule.budget_usd, used);
            let spent =
                matches!(decision, approval::Decision::NeedsPerson(_)) && rule.budget_usd > 0.0;
            let waiting = match &decision {
                approval::Decision::NeedsPerson(why) => Some(why.clone()),
                _ => None,
            };
            let (queued, mut events) =
                crate::instructions::insert_decided(tx, &row, decision, &today, &at)?;
            let state = if queued {
                FileState::Processing
            } else {
                FileState::Waiting
            };
            rows::change_file(
                tx,
                &file_id,
                &FileChange {
                    state: Some(state),
                    instruction_id: Some(&row.id),
                    reason: waiting.as_deref(),
                    ..FileChange::default()
                },
                &at,
            )?;
            if let Some(file) = rows::file(tx, &file_id)? {
                events.push(file_event(&at, &file, Some(&row.id)));
            }
            if spent != rule.budget_spent {
                let mut changed = rule.clone();
                changed.budget_spent = spent;
                changed.updated_at = at.clone();
                rows::update_rule(tx, &changed)?;
                events.push(rule_event(
                    &at,
                    &changed,
                    waiting.as_deref().filter(|_| spent),
                ));
            }
            Ok::<_, Problem>((queued, events))
        })
        .await?;
    if queued {
        crate::instructions::execute(daemon.clone(), id).await?;
    }
    Ok(())
}

/// Ends a file's journal entry: `done` (its input to `done/`) or `failed` (to `failed/`, with
/// `<name>.reason.txt` written there first). Kept inputs stay where they are; a failure's note
/// still goes to `failed/`.
pub(crate) async fn settle(
    daemon: &Arc<Daemon>,
    rule: &RuleRow,
    file_id: &str,
    state: FileState,
    reason: Option<&str>,
    output: Option<&str>,
) -> Result<(), Problem> {
    let _moves = daemon.watches.lock_moves(&rule.id).await;
    let file = {
        let id = file_id.to_owned();
        daemon
            .store
            .read(move |conn| rows::file(conn, &id))
            .await?
            .ok_or_else(|| internal("the journal entry is gone"))?
    };
    if file.state()?.is_final() {
        return Ok(());
    }
    let folder = PathBuf::from(&rule.folder);
    let sub = if state == FileState::Failed {
        FAILED
    } else {
        DONE
    };
    let target = match inputs(rule) {
        Inputs::Move => Some(free_name(&folder.join(sub), &file.name)),
        Inputs::Keep => None,
    };
    if let (FileState::Failed, Some(reason)) = (state, reason) {
        let note = target
            .clone()
            .unwrap_or_else(|| free_name(&folder.join(FAILED), &file.name));
        let note = note.with_file_name(format!(
            "{}.reason.txt",
            note.file_name().unwrap_or_default().to_string_lossy()
        ));
        let text = format!("{}\n{reason}\n", file.name);
        let written = tokio::task::spawn_blocking(move || {
            crate::files::write::new_file(&note, text.as_bytes())
        })
        .await
        .map_err(internal)?;
        if let Err(err) = written {
            tracing::warn!(file = %file.name, %err, "could not write the reason a dropped file failed");
        }
    }
    let at = daemon.clock.now();
    let (id, reason, output) = (
        file.id.clone(),
        reason.map(str::to_owned),
        output.map(str::to_owned),
    );
    let rule_row = rule.clone();
    let moved = daemon
        .store
        .write(move |tx| {
            let target = target.map(|path| path.display().to_string());
            rows::change_file(
                tx,
                &id,
                &FileChange {
                    state: Some(state),
                    reason: reason.as_deref(),
                    output: output.as_deref(),
                    path: target.as_deref(),
                    ..FileChange::default()
                },
                &at,
            )?;
            let file = rows::file(tx, &id)?.ok_or_else(|| internal("the journal entry is gone"))?;
            let events = vec![file_event(&at, &file, None)];
            if state == FileState::Failed {
                let mut changed = rows::rule_by_id(tx, &rule_row.id)?.unwrap_or(rule_row);
                let problem = Problem::new(
                    ErrorKind::Validation,
                    ErrorCode::InvalidWatch,
                    format!("{}: {}", file.name, reason.as_deref().unwrap_or("failed")),
                );
                changed.last_error_json = serde_json::to_string(&problem.to_data()).ok();
                changed.updated_at = at.clone();
                // The file's own `watch.file` event says it failed; the rule's state is unchanged.
                rows::update_rule(tx, &changed)?;
            }
            Ok::<_, Problem>((file, events))
        })
        .await?;
    finish_move(daemon, &moved).await
}

/// Makes on disk the move the journal recorded for `file`, then clears it.
pub(crate) async fn finish_move(daemon: &Daemon, file: &FileRow) -> Result<(), Problem> {
    let Some(from) = file.moved_from.clone() else {
        return Ok(());
    };
    let to = file.path.clone();
    tokio::task::spawn_blocking(move || move_file(Path::new(&from), Path::new(&to)))
        .await
        .map_err(internal)?;
    let id = file.id.clone();
    daemon
        .store
        .write(move |tx| Ok::<_, Problem>((rows::moved(tx, &id)?, Vec::new())))
        .await
}

/// Moves `from` to `to` unless that was done already. Blocking.
fn move_file(from: &Path, to: &Path) {
    if to.exists() || !from.exists() {
        if !to.exists() {
            tracing::warn!(file = %from.display(), "a dropped file disappeared before it was moved");
        }
        return;
    }
    if let Some(folder) = to.parent()
        && let Err(err) = std::fs::create_dir_all(folder)
    {
        tracing::warn!(folder = %folder.display(), %err, "could not make a drop folder's subfolder");
        return;
    }
    if let Err(err) = std::fs::rename(from, to) {
        tracing::warn!(from = %from.display(), to = %to.display(), %err, "could not move a dropped file");
    }
}

pub(crate) fn inputs(rule: &RuleRow) -> Inputs {
    if rule.inputs == "keep" {
        Inputs::Keep
    } else {
        Inputs::Move
    }
}

/// `folder/name`, or `folder/<stem>-2.<ext>`, … when that is taken: a file is never replaced.
fn free_name(folder: &Path, name: &str) -> PathBuf {
    let first = folder.join(name);
    if !first.exists() {
        return first;
    }
    let (stem, extension) = match name.rsplit_once('.') {
        Some((stem, extension)) if !stem.is_empty() => (stem, format!(".{extension}")),
        _ => (name, String::new()),
    };
    (2..)
        .map(|n| folder.join(format!("{stem}-{n}{extension}")))
        .find(|path| !path.exists())
        .unwrap_or(first)
}

/// The SHA-256 of a regular file, read without following a link; `None` when it is not one.
/// Blocking; memory stays at one buffer whatever the size.
fn hash(path: &Path) -> std::io::Result<Option<String>> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err),
    };
    if !meta.file_type().is_file() {
        return Ok(None);
    }
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits());
    }
    let mut file = options.open(path)?;
    if !file.metadata()?.file_type().is_file() {
        return Ok(None);
    }
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(Some(format!("{:x}", hasher.finalize())))
}

pub(crate) fn file_event(at: &str, file: &FileRow, instruction: Option<&str>) -> NewEvent {
    NewEvent::of(
        at.to_owned(),
        None,
        &WatchFileChanged {
            rule: file.rule_id.clone(),
            file: file.id.clone(),
            name: file.name.clone(),
            state: file.state().unwrap_or(FileState::Failed),
            instruction: instruction
                .map(str::to_owned)
                .or_else(|| file.instruction_id.clone()),
            output: file.output.clone(),
            reason: file.reason.clone(),
        },
    )
}

pub(crate) fn rule_event(at: &str, rule: &RuleRow, reason: Option<&str>) -> NewEvent {
    NewEvent::of(
        at.to_owned(),
        None,
        &WatchRuleChanged {
            rule: rule.id.clone(),
            name: rule.name.clone(),
            state: super::state_of(rule),
            reason: reason.map(str::to_owned),
        },
    )
}

fn internal(err: impl std::fmt::Display) -> Problem {
    Problem::new(ErrorKind::Internal, ErrorCode::Internal, err.to_string())
}
