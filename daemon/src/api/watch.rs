//! `watch.*` handlers: drop-folder rules. Each change is checked (folders, action, patterns,
//! placement among the other rules and the projects), written in one transaction with its
//! event, then the watcher task reloads the rules.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use kroma_protocol as protocol;
use protocol::instruction::{Approval, InstructionState};
use protocol::watch::{
    AddParams, Inputs, LogParams, RuleRef, UpdateParams, WatchAction, WatchFile, WatchLog,
    WatchRule, WatchRuleList,
};
use protocol::{ErrorCode, ErrorKind};

use super::parse_limit;
use crate::Daemon;
use crate::error::Problem;
use crate::instructions::approval::{self, Decision};
use crate::instructions::state::Step;
use crate::store::watch::{self as rows, FileRow, RuleRow};
use crate::watch::{self, rules};

/// Most steps one chain rule may have.
const MAX_STEPS: usize = 8;

pub async fn add(daemon: Arc<Daemon>, params: AddParams) -> Result<WatchRule, Problem> {
    if let Some(name) = &params.name {
        rules::check_name(name)?;
    }
    let folder = absolute("folder", &params.folder)?;
    let real_folder = readable_folder(&folder).await?;
    let checked = check_action(&daemon, &params.action).await?;
    rules::Patterns::new(&params.patterns)?;
    let settle_ms = params
        .settle_ms
        .unwrap_or(protocol::watch::DEFAULT_SETTLE_MS);
    check_settings(settle_ms, params.budget_usd, &params.action)?;
    let at = daemon.clock.now();
    let mut rule = RuleRow {
        id: uuid::Uuid::new_v4().to_string(),
        name: params.name.clone().unwrap_or_default(),
        folder: folder.display().to_string(),
        real_folder: real_folder.display().to_string(),
        action_json: to_json(&params.action)?,
        project_id: checked.project_id,
        patterns_json: to_json(&params.patterns)?,
        budget_usd: params.budget_usd,
        poll: params.poll,
        settle_ms: settle_ms as i64,
        inputs: inputs_text(params.inputs).to_owned(),
        paused: false,
        budget_spent: false,
        failing: false,
        last_error_json: None,
        created_at: at.clone(),
        updated_at: at,
        removed_at: None,
    };
    let data_dir = daemon.real_data_dir.clone();
    let output = checked.output;
    let roots = project_roots(&daemon).await?;
    let added = daemon
        .store
        .write(move |tx| {
            if rule.name.is_empty() {
                rule.name = rules::default_name(&real_folder, |name| {
                    rows::name_taken(tx, name).unwrap_or(true)
                });
            } else if rows::name_taken(tx, &rule.name)? {
                return Err(Problem::new(
                    ErrorKind::Conflict,
                    ErrorCode::WatchNameTaken,
                    format!("a rule named `{}` exists", rule.name),
                )
                .with_hint("choose another name, or leave it out for one made from the folder"));
            }
            let others = placed_rules(tx, None)?;
            rules::check_placement(
                &rules::Placed {
                    name: rule.name.clone(),
                    folder: real_folder.clone(),
                    output,
                },
                &others,
                &roots,
                &data_dir,
            )?;
            rows::insert_rule(tx, &rule)?;
            let event = watch::rule_event(&rule.created_at, &rule, Some("added"));
            Ok::<_, Problem>((to_proto(tx, &rule)?, vec![event]))
        })
        .await?;
    daemon.watches.changed();
    Ok(added)
}

pub async fn list(daemon: Arc<Daemon>, _: protocol::NoParams) -> Result<WatchRuleList, Problem> {
    daemon
        .store
        .read(|conn| {
            Ok(rows::rules(conn).map_err(Problem::from).and_then(|rules| {
                let rules = rules
                    .iter()
                    .map(|rule| to_proto(conn, rule))
                    .collect::<Result<_, _>>()?;
                Ok(WatchRuleList { rules })
            }))
        })
        .await?
}

pub async fn get(daemon: Arc<Daemon>, params: RuleRef) -> Result<WatchRule, Problem> {
    daemon
        .store
        .read(move |conn| Ok(find(conn, &params.rule).and_then(|rule| to_proto(conn, &rule))))
        .await?
}

pub async fn update(daemon: Arc<Daemon>, params: UpdateParams) -> Result<WatchRule, Problem> {
    let current = {
        let rule = params.rule.clone();
        daemon
            .store
            .read(move |conn| Ok(find(conn, &rule)))
            .await??
    };
    let mut rule = current.clone();
    let mut output = None;
    if let Some(action) = &params.action {
        let checked = check_action(&daemon, action).await?;
        rule.action_json = to_json(action)?;
        rule.project_id = checked.project_id;
        output = checked.output;
    } else if let Ok(WatchAction::Chain { output: out, .. }) =
        serde_json::from_str::<WatchAction>(&rule.action_json)
    {
        output = Some(resolve(Path::new(&out)).await);
    }
    if let Some(patterns) = &params.patterns {
        rules::Patterns::new(patterns)?;
        rule.patterns_json = to_json(patterns)?;
    }
    if let Some(budget) = params.budget_usd {
        rule.budget_usd = budget;
        rule.budget_spent = false;
    }
    if let Some(poll) = params.poll {
        rule.poll = poll;
    }
    if let Some(settle) = params.settle_ms {
        rule.settle_ms = settle as i64;
    }
    if let Some(inputs) = params.inputs {
        rule.inputs = inputs_text(inputs).to_owned();
    }
    let action: WatchAction = serde_json::from_str(&rule.action_json)
        .map_err(|err| Problem::new(ErrorKind::Internal, ErrorCode::Internal, err.to_string()))?;
    check_settings(rule.settle_ms as u64, rule.budget_usd, &action)?;
    rule.updated_at = daemon.clock.now();
    let data_dir = daemon.real_data_dir.clone();
    let roots = project_roots(&daemon).await?;
    let today = daemon.clock.today();
    let (updated, approved) = daemon
        .store
        .write(move |tx| {
            let others = placed_rules(tx, Some(&rule.id))?;
            rules::check_placement(
                &rules::Placed {
                    name: rule.name.clone(),
                    folder: PathBuf::from(&rule.real_folder),
                    output,
                },
                &others,
                &roots,
                &data_dir,
            )?;
            rows::update_rule(tx, &rule)?;
            let mut events = vec![watch::rule_event(&rule.updated_at, &rule, Some("updated"))];
            // A raised budget takes the files that waited for it, oldest first, as far as it
            // goes.
            let approved = if rule.budget_usd > current.budget_usd {
                approve_waiting(tx, &rule, &today, &mut events)?
            } else {
                Vec::new()
            };
            Ok::<_, Problem>(((to_proto(tx, &rule)?, approved), events))
        })
        .await?;
    for id in approved {
        crate::instructions::execute(daemon.clone(), id).await?;
    }
    daemon.watches.changed();
    Ok(updated)
}

/// Approves through the rule's budget the instructions of its files that wait for a person,
/// oldest first, while they fit; answers their ids.
fn approve_waiting(
    tx: &rusqlite::Transaction,
    rule: &RuleRow,
    today: &str,
    events: &mut Vec<crate::store::NewEvent>,
) -> Result<Vec<String>, Problem> {
    let waiting: Vec<String> = tx
        .prepare(
            "SELECT id FROM instructions WHERE watch_rule_id = ?1 AND state = ?2
             ORDER BY created_at, rowid",
        )
        .and_then(|mut statement| {
            statement
                .query_map(
                    rusqlite::params![rule.id, InstructionState::AwaitingConfirmation.as_str()],
                    |row| row.get(0),
                )?
                .collect()
        })
        .map_err(crate::StoreError::from)?;
    let mut approved = Vec::new();
    for id in waiting {
        let row = crate::instructions::load(tx, &id)?;
        let used = rows::budget_used(tx, &rule.id)?;
        if approval::decide_budget(row.max_cost_usd, rule.budget_usd, used)
            != Decision::WithinBudget
        {
            break;
        }
        let change = crate::instructions::approved(Approval::Budget, row.max_cost_usd, today);
        let (_, event) =
            crate::instructions::apply(tx, &id, Step::Approve, &change, None, &rule.updated_at)?;
        events.push(event);
        approved.push(id);
    }
    Ok(approved)
}

pub async fn remove(daemon: Arc<Daemon>, params: RuleRef) -> Result<WatchRule, Problem> {
    let at = daemon.clock.now();
    let removed = daemon
        .store
        .write(move |tx| {
            let mut rule = find(tx, &params.rule)?;
            rule.removed_at = Some(at.clone());
            rule.updated_at = at.clone();
            rows::update_rule(tx, &rule)?;
            let event = watch::rule_event(&at, &rule, Some("removed"));
            Ok::<_, Problem>((to_proto(tx, &rule)?, vec![event]))
        })
        .await?;
    daemon.watches.changed();
    Ok(removed)
}

pub async fn pause(daemon: Arc<Daemon>, params: RuleRef) -> Result<WatchRule, Problem> {
    set_paused(daemon, params, true).await
}

pub async fn resume(daemon: Arc<Daemon>, params: RuleRef) -> Result<WatchRule, Problem> {
    set_paused(daemon, params, false).await
}

async fn set_paused(
    daemon: Arc<Daemon>,
    params: RuleRef,
    paused: bool,
) -> Result<WatchRule, Problem> {
    let at = daemon.clock.now();
    let rule = daemon
        .store
        .write(move |tx| {
            let mut rule = find(tx, &params.rule)?;
            if rule.paused == paused {
                return Ok::<_, Problem>((to_proto(tx, &rule)?, Vec::new()));
            }
            rule.paused = paused;
            rule.updated_at = at.clone();
            rows::update_rule(tx, &rule)?;
            let event = watch::rule_event(&at, &rule, None);
            Ok((to_proto(tx, &rule)?, vec![event]))
        })
        .await?;
    daemon.watches.changed();
    Ok(rule)
}

pub async fn log(daemon: Arc<Daemon>, params: LogParams) -> Result<WatchLog, Problem> {
    let limit = parse_limit(params.limit)?;
    daemon
        .store
        .read(move |conn| Ok(read_log(conn, &params.rule, limit)))
        .await?
}

/// The rule as the wire shows it, with its counts and spend.
fn to_proto(conn: &rusqlite::Connection, rule: &RuleRow) -> Result<WatchRule, Problem> {
    let corrupt = |what: &str, err: serde_json::Error| {
        Problem::from(crate::StoreError::Corrupt(format!(
            "watch rule {} {what}: {err}",
            rule.id
        )))
    };
    Ok(WatchRule {
        id: rule.id.clone(),
        name: rule.name.clone(),
        folder: rule.folder.clone(),
        action: serde_json::from_str(&rule.action_json).map_err(|err| corrupt("action", err))?,
        patterns: serde_json::from_str(&rule.patterns_json)
            .map_err(|err| corrupt("patterns", err))?,
        budget_usd: rule.budget_usd,
        spent_usd: rows::budget_used(conn, &rule.id)?,
        poll: rule.poll,
        settle_ms: rule.settle_ms as u64,
        inputs: watch::inputs(rule),
        state: watch::state_of(rule),
        counts: rows::counts(conn, &rule.id)?,
        last_error: rule
            .last_error_json
            .as_deref()
            .and_then(|json| serde_json::from_str(json).ok()),
        created_at: rule.created_at.clone(),
        updated_at: rule.updated_at.clone(),
    })
}

fn read_log(conn: &rusqlite::Connection, rule: &str, limit: u32) -> Result<WatchLog, Problem> {
    let rule = find(conn, rule)?;
    let files = rows::log(conn, &rule.id, limit)?
        .into_iter()
        .map(|(file, run)| file_to_proto(file, run))
        .collect::<Result<_, _>>()?;
    Ok(WatchLog {
        rule: to_proto(conn, &rule)?,
        files,
    })
}

fn file_to_proto(file: FileRow, run: Option<String>) -> Result<WatchFile, Problem> {
    Ok(WatchFile {
        state: file.state()?,
        id: file.id,
        rule: file.rule_id,
        name: file.name,
        path: file.path,
        sha256: file.sha256,
        instruction: file.instruction_id,
        run,
        output: file.output,
        duplicate_of: file.duplicate_of,
        reason: file.reason,
        seen_at: file.seen_at,
        updated_at: file.updated_at,
    })
}

fn find(conn: &rusqlite::Connection, rule: &str) -> Result<RuleRow, Problem> {
    rows::find_rule(conn, rule)?.ok_or_else(|| {
        Problem::new(
            ErrorKind::NotFound,
            ErrorCode::WatchNotFound,
            format!("no drop-folder rule is named `{rule}`"),
        )
        .with_hint("listing the rules shows their names")
        .with_action(protocol::Action::call::<protocol::watch::List>([], &[]))
    })
}

/// What checking an action found: a pipeline's project, a chain's output folder (links
/// resolved).
struct CheckedAction {
    project_id: Option<String>,
    output: Option<PathBuf>,
}

async fn check_action(daemon: &Daemon, action: &WatchAction) -> Result<CheckedAction, Problem> {
    match action {
        WatchAction::Pipeline { plan } => {
            if !plan.scenes.is_empty() {
                return Err(Problem::validation(
                    ErrorCode::InvalidWatch,
                    "a pipeline rule's plan names no scenes: each dropped file is the scene",
                ));
            }
            let project = super::find_project(daemon, &plan.project).await?;
            Ok(CheckedAction {
                project_id: Some(project.id),
                output: None,
            })
        }
        WatchAction::Chain { steps, output } => {
            if steps.is_empty() || steps.len() > MAX_STEPS {
                return Err(Problem::validation(
                    ErrorCode::InvalidWatch,
                    format!("a chain has 1 to {MAX_STEPS} steps"),
                )
                .with_hint("e.g. bg_remove, then upscale, then color"));
            }
            // Each step is checked as a one-off call would be, its model loaded once now.
            for step in steps {
                super::postprocess::prepare(daemon, step).await?;
            }
            let output = absolute("output folder", output)?;
            super::postprocess::check_outside_data_dir(&daemon.real_data_dir, &output)?;
            let made = output.clone();
            tokio::task::spawn_blocking(move || std::fs::create_dir_all(&made))
                .await
                .map_err(|err| {
                    Problem::new(ErrorKind::Internal, ErrorCode::Internal, err.to_string())
                })?
                .map_err(|err| {
                    Problem::new(
                        ErrorKind::Infra,
                        ErrorCode::IoError,
                        format!("making the output folder {}: {err}", output.display()),
                    )
                })?;
            Ok(CheckedAction {
                project_id: None,
                output: Some(resolve(&output).await),
            })
        }
    }
}

fn check_settings(settle_ms: u64, budget_usd: f64, action: &WatchAction) -> Result<(), Problem> {
    if !rules::SETTLE_MS.contains(&settle_ms) {
        return Err(Problem::validation(
            ErrorCode::InvalidWatch,
            format!(
                "settle {settle_ms} ms is not between {} and {} ms",
                rules::SETTLE_MS.start(),
                rules::SETTLE_MS.end()
            ),
        ));
    }
    if !approval::valid_amount(budget_usd) {
        return Err(Problem::validation(
            ErrorCode::InvalidWatch,
            format!("budget {budget_usd} is not an amount of dollars between 0 and 1000000"),
        ));
    }
    if budget_usd > 0.0 && !watch::is_pipeline(action) {
        return Err(Problem::validation(
            ErrorCode::InvalidWatch,
            "a chain rule spends nothing: a budget is for pipeline rules",
        ));
    }
    Ok(())
}

/// `path` as an absolute path without `..`.
fn absolute(what: &str, path: &str) -> Result<PathBuf, Problem> {
    let path = PathBuf::from(path);
    if !path.is_absolute() || path.components().any(|part| part == Component::ParentDir) {
        return Err(Problem::validation(
            ErrorCode::InvalidWatch,
            format!("the {what} `{}` is not a plain absolute path", path.display()),
        )
        .with_hint("send absolute paths without `..`: kromad does not share the caller's working directory"));
    }
    Ok(path)
}

/// The folder with its links resolved, once it is checked to be a folder kromad can list.
async fn readable_folder(folder: &Path) -> Result<PathBuf, Problem> {
    let folder = folder.to_owned();
    tokio::task::spawn_blocking(move || {
        let shown = folder.display().to_string();
        let meta = std::fs::metadata(&folder).map_err(|err| {
            Problem::new(
                ErrorKind::NotFound,
                ErrorCode::FileNotFound,
                format!("the folder {shown} cannot be used: {err}"),
            )
            .with_hint("make the folder first, or check its permissions")
        })?;
        if !meta.is_dir() {
            return Err(Problem::validation(
                ErrorCode::InvalidWatch,
                format!("{shown} is not a folder"),
            ));
        }
        std::fs::read_dir(&folder).map_err(|err| {
            Problem::new(
                ErrorKind::Infra,
                ErrorCode::IoError,
                format!("the folder {shown} cannot be read: {err}"),
            )
            .with_hint("kromad runs as you: give yourself read and write access to the folder")
        })?;
        crate::projects::root::resolve(&folder).map_err(|err| {
            Problem::new(
                ErrorKind::Infra,
                ErrorCode::IoError,
                format!("resolving {shown}: {err}"),
            )
        })
    })
    .await
    .map_err(|err| Problem::new(ErrorKind::Internal, ErrorCode::Internal, err.to_string()))?
}

async fn resolve(path: &Path) -> PathBuf {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || crate::projects::root::resolve(&path).unwrap_or(path))
        .await
        .unwrap_or_default()
}

/// Every project's folder, links resolved.
async fn project_roots(daemon: &Daemon) -> Result<Vec<PathBuf>, Problem> {
    let projects = daemon.store.read(crate::store::list_projects).await?;
    let roots = tokio::task::spawn_blocking(move || {
        projects
            .iter()
            .map(|project| {
                let root = PathBuf::from(&project.root);
                crate::projects::root::resolve(&root).unwrap_or(root)
            })
            .collect()
    })
    .await
    .map_err(|err| Problem::new(ErrorKind::Internal, ErrorCode::Internal, err.to_string()))?;
    Ok(roots)
}

/// The other rules' folders as stored (resolved when added), for the placement checks.
fn placed_rules(
    conn: &rusqlite::Connection,
    except: Option<&str>,
) -> Result<Vec<rules::Placed>, Problem> {
    Ok(rows::rules(conn)?
        .into_iter()
        .filter(|rule| Some(rule.id.as_str()) != except)
        .map(|rule| rules::Placed {
            output: match serde_json::from_str::<WatchAction>(&rule.action_json) {
                Ok(WatchAction::Chain { output, .. }) => {
                    let output = PathBuf::from(&output);
                    Some(crate::projects::root::resolve(&output).unwrap_or(output))
                }
                _ => None,
            },
            name: rule.name,
            folder: PathBuf::from(rule.real_folder),
        })
        .collect())
}

fn inputs_text(inputs: Inputs) -> &'static str {
    match inputs {
        Inputs::Move => "move",
        Inputs::Keep => "keep",
    }
}

fn to_json(value: &impl serde::Serialize) -> Result<String, Problem> {
    serde_json::to_string(value)
        .map_err(|err| Problem::new(ErrorKind::Internal, ErrorCode::Internal, err.to_string()))
}
