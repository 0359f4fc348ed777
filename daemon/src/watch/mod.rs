//! Drop folders: watched folders whose complete files start a run (as an instruction) or a
//! local chain, exactly once per content, across restarts.
//!
//! One task ([`serve`]) owns the OS watchers: one native watcher (inotify on Linux, one
//! instance for every rule) and one poll watcher for rules that ask for it (network and FUSE
//! mounts), both through `notify-debouncer-full`. Notifications are hints: each rule's
//! [`pending::Pending`] decides when a file is complete, [`take`] records it in the journal once
//! and carries out the rule's action. Folders are also scanned when a rule starts watching
//! (at start-up, on resume, after an overflow of the OS queue), which finds the files that
//! landed while kromad was down or the rule was paused.

mod chain;
mod follow;
pub mod pending;
pub mod rules;
mod take;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use kroma_protocol as protocol;
use notify::{EventKind, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, Debouncer, NoCache, RecommendedCache};
use protocol::watch::{RuleState, WatchAction};
use protocol::{ErrorCode, ErrorKind};
use tokio::sync::{Notify, mpsc};

use crate::Daemon;
use crate::error::Problem;
use crate::store::watch::{self as rows, RuleRow};
use pending::{Hint, Pending, Stat};

pub(crate) use take::{inputs, rule_event};

/// How long notifications are gathered before they are handed on (the trigger latency's floor).
const DEBOUNCE: Duration = Duration::from_millis(100);
/// How often pending files are looked at.
const TICK: Duration = Duration::from_millis(100);
/// How often instructions are followed and failing folders tried again, in ticks.
const SLOW_TICKS: u32 = 10;
/// How often the poll watcher looks at its folders.
const POLL_EVERY: Duration = Duration::from_millis(500);
/// Files taken at once (hashing and recording; chains also wait for a local-work slot).
const TAKING_AT_ONCE: usize = 8;

/// The handle handlers use: tell the watcher task that rules changed; one lock per rule that
/// serialises its moves, so two files never pick the same free name.
#[derive(Default)]
pub(crate) struct Watches {
    changed: Notify,
    moves: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Watches {
    /// Rules were added, changed or removed: the watcher task reloads them.
    pub(crate) fn changed(&self) {
        self.changed.notify_one();
    }

    async fn lock_moves(&self, rule: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut moves = self
                .moves
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            moves.entry(rule.to_owned()).or_default().clone()
        };
        lock.lock_owned().await
    }
}

/// A rule's state as `watch list` shows it.
pub(crate) fn state_of(rule: &RuleRow) -> RuleState {
    if rule.paused {
        RuleState::Paused
    } else if rule.failing {
        RuleState::Failing
    } else if rule.budget_spent {
        RuleState::BudgetSpent
    } else {
        RuleState::Watching
    }
}

/// A watched rule as the watcher task holds it.
struct Active {
    row: Arc<RuleRow>,
    /// The folder, links resolved: what notifications name.
    folder: PathBuf,
    patterns: rules::Patterns,
    settle: Duration,
    pending: Pending,
    watching: bool,
}

/// The OS watchers, made on first use.
#[derive(Default)]
struct Watchers {
    native: Option<Debouncer<notify::RecommendedWatcher, RecommendedCache>>,
    poll: Option<Debouncer<notify::PollWatcher, NoCache>>,
}

/// Runs the drop folders until kromad stops.
pub(crate) async fn serve(daemon: Arc<Daemon>) {
    if let Err(err) = follow::clean_leftovers(&daemon).await {
        tracing::error!(error = %err.message, "could not clean what a stop left in drop folders");
    }
    if let Err(err) = follow::finish_moves(&daemon).await {
        tracing::error!(error = %err.message, "could not finish the moves of dropped files");
    }
    if let Err(err) = follow::resume(&daemon).await {
        tracing::error!(error = %err.message, "could not take up dropped files again");
    }
    let (events_tx, mut events) = mpsc::channel::<DebounceEventResult>(256);
    let (done_tx, mut done) = mpsc::unbounded_channel::<PathBuf>();
    let taking = Arc::new(tokio::sync::Semaphore::new(TAKING_AT_ONCE));
    let mut watchers = Watchers::default();
    let mut active: HashMap<String, Active> = HashMap::new();
    let mut busy: HashSet<PathBuf> = HashSet::new();
    reload(&daemon, &mut active, &mut watchers, &events_tx).await;
    let mut ticks = tokio::time::interval(TICK);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut count = 0u32;
    // Until the first look, there may be files a removed rule left unfinished.
    let mut unfinished = true;
    loop {
        tokio::select! {
            _ = daemon.shutdown.cancelled() => break,
            _ = daemon.watches.changed.notified() => {
                reload(&daemon, &mut active, &mut watchers, &events_tx).await;
            }
            Some(result) = events.recv() => {
                route(&mut active, result);
            }
            Some(path) = done.recv() => {
                busy.remove(&path);
            }
            // An idle kromad (no rules, no unfinished files) does not wake up for drop folders.
            _ = ticks.tick(), if !active.is_empty() || unfinished => {
                count = count.wrapping_add(1);
                start_due(&daemon, &mut active, &mut busy, &taking, &done_tx).await;
                if count.is_multiple_of(SLOW_TICKS) {
                    match follow::follow_instructions(&daemon).await {
                        Ok(open) => unfinished = open,
                        Err(err) => tracing::warn!(error = %err.message, "could not follow the instructions of dropped files"),
                    }
                    retry_failing(&daemon, &mut active, &mut watchers, &events_tx).await;
                }
            }
        }
    }
}

/// Reads the rules again and watches, unwatches and rescans what changed.
async fn reload(
    daemon: &Arc<Daemon>,
    active: &mut HashMap<String, Active>,
    watchers: &mut Watchers,
    events: &mpsc::Sender<DebounceEventResult>,
) {
    let rules = match daemon.store.read(rows::rules).await {
        Ok(rules) => rules,
        Err(err) => {
            tracing::error!(%err, "could not read the drop-folder rules");
            return;
        }
    };
    let wanted: HashMap<String, RuleRow> = rules
        .into_iter()
        .filter(|rule| !rule.paused)
        .map(|rule| (rule.id.clone(), rule))
        .collect();
    let gone: Vec<String> = active
        .keys()
        .filter(|id| match wanted.get(*id) {
            None => true,
            Some(rule) => {
                let old = &active[*id].row;
                rule.poll != old.poll || rule.folder != old.folder
            }
        })
        .cloned()
        .collect();
    for id in gone {
        if let Some(old) = active.remove(&id) {
            unwatch(watchers, &old);
        }
    }
    for (id, rule) in wanted {
        match active.get_mut(&id) {
            Some(existing) => {
                // Settings that need no new watch: the next files see them.
                if let Ok(patterns) = patterns_of(&rule) {
                    existing.patterns = patterns;
                }
                existing.settle = Duration::from_millis(rule.settle_ms as u64);
                existing.row = Arc::new(rule);
            }
            None => {
                let Ok(patterns) = patterns_of(&rule) else {
                    tracing::error!(rule = %rule.name, "a stored rule's patterns do not compile");
                    continue;
                };
                let mut entry = Active {
                    folder: PathBuf::from(&rule.real_folder),
                    settle: Duration::from_millis(rule.settle_ms as u64),
                    row: Arc::new(rule),
                    patterns,
                    pending: Pending::default(),
                    watching: false,
                };
                start_watching(daemon, watchers, &mut entry, events).await;
                active.insert(id, entry);
            }
        }
    }
}

fn patterns_of(rule: &RuleRow) -> Result<rules::Patterns, Problem> {
    let patterns: Vec<String> = serde_json::from_str(&rule.patterns_json).unwrap_or_default();
    rules::Patterns::new(&patterns)
}

/// Watches the rule's folder and scans it; a failure marks the rule failing (tried again
/// later), a success clears that.
async fn start_watching(
    daemon: &Daemon,
    watchers: &mut Watchers,
    entry: &mut Active,
    events: &mpsc::Sender<DebounceEventResult>,
) {
    let outcome = watch_folder(watchers, entry, events);
    entry.watching = outcome.is_ok();
    if outcome.is_ok() {
        scan(entry).await;
    }
    record_failing(daemon, entry, outcome.err()).await;
}

fn watch_folder(
    watchers: &mut Watchers,
    entry: &Active,
    events: &mpsc::Sender<DebounceEventResult>,
) -> Result<(), Problem> {
    let meta = std::fs::metadata(&entry.folder).map_err(|err| {
        Problem::new(
            ErrorKind::Infra,
            ErrorCode::IoError,
            format!("the folder {} cannot be read: {err}", entry.row.folder),
        )
        .with_hint("make the folder (or mount it) again; kromad tries again every second")
    })?;
    if !meta.is_dir() {
        return Err(Problem::new(
            ErrorKind::Infra,
            ErrorCode::IoError,
            format!("{} is not a folder", entry.row.folder),
        ));
    }
    let result = if entry.row.poll {
        if watchers.poll.is_none() {
            let sender = events.clone();
            let config = notify::Config::default().with_poll_interval(POLL_EVERY);
            watchers.poll = Some(
                notify_debouncer_full::new_debouncer_opt(
                    DEBOUNCE,
                    None,
                    move |result| {
                        let _ = sender.blocking_send(result);
                    },
                    NoCache,
                    config,
                )
                .map_err(watch_problem)?,
            );
        }
        watchers
            .poll
            .as_mut()
            .map(|poll| poll.watch(&entry.folder, RecursiveMode::NonRecursive))
    } else {
        if watchers.native.is_none() {
            let sender = events.clone();
            watchers.native = Some(
                notify_debouncer_full::new_debouncer(DEBOUNCE, None, move |result| {
                    let _ = sender.blocking_send(result);
                })
                .map_err(watch_problem)?,
            );
        }
        watchers
            .native
            .as_mut()
            .map(|native| native.watch(&entry.folder, RecursiveMode::NonRecursive))
    };
    match result {
        Some(Ok(())) | None => Ok(()),
        Some(Err(err)) => Err(watch_problem(err)),
    }
}

fn unwatch(watchers: &mut Watchers, entry: &Active) {
    if !entry.watching {
        return;
    }
    let result = if entry.row.poll {
        watchers.poll.as_mut().map(|w| w.unwatch(&entry.folder))
    } else {
        watchers.native.as_mut().map(|w| w.unwatch(&entry.folder))
    };
    if let Some(Err(err)) = result {
        tracing::debug!(folder = %entry.folder.display(), %err, "unwatching a drop folder");
    }
}

/// A watcher's refusal as a problem; the OS limits get the fix.
pub(crate) fn watch_problem(err: notify::Error) -> Problem {
    let limit = matches!(err.kind, notify::ErrorKind::MaxFilesWatch)
        || matches!(&err.kind, notify::ErrorKind::Io(io)
            if io.raw_os_error() == Some(28) || io.raw_os_error() == Some(24));
    if limit {
        Problem::new(
            ErrorKind::Infra,
            ErrorCode::WatchLimit,
            format!("the OS refused one more file watch: {err}"),
        )
        .with_hint(
            "raise the limits: `sudo sysctl fs.inotify.max_user_watches=524288 fs.inotify.max_user_instances=1024` \
             (and put the same lines in /etc/sysctl.d/90-kroma.conf to keep them), or set `poll = true` on the rule",
        )
    } else {
        Problem::new(
            ErrorKind::Infra,
            ErrorCode::IoError,
            format!("watching the folder failed: {err}"),
        )
    }
}

/// Writes whether the rule's folder can be watched, with an event when that changes.
async fn record_failing(daemon: &Daemon, entry: &mut Active, problem: Option<Problem>) {
    let failing = problem.is_some();
    if failing == entry.row.failing {
        return;
    }
    let id = entry.row.id.clone();
    let at = daemon.clock.now();
    let reason = problem.as_ref().map(|problem| problem.message.clone());
    let error_json = problem
        .as_ref()
        .and_then(|problem| serde_json::to_string(&problem.to_data()).ok());
    let written = daemon
        .store
        .write(move |tx| {
            let Some(mut rule) = rows::rule_by_id(tx, &id)? else {
                return Ok::<_, Problem>((None, Vec::new()));
            };
            rule.failing = failing;
            if failing {
                rule.last_error_json = error_json;
            }
            rule.updated_at = at.clone();
            rows::update_rule(tx, &rule)?;
            let event = rule_event(&at, &rule, reason.as_deref());
            Ok((Some(rule), vec![event]))
        })
        .await;
    match written {
        Ok(Some(rule)) => entry.row = Arc::new(rule),
        Ok(None) => {}
        Err(err) => tracing::warn!(error = %err.message, "could not record a drop folder's state"),
    }
}

async fn retry_failing(
    daemon: &Arc<Daemon>,
    active: &mut HashMap<String, Active>,
    watchers: &mut Watchers,
    events: &mpsc::Sender<DebounceEventResult>,
) {
    for entry in active.values_mut() {
        if entry.watching {
            // A watched folder that was removed stops sending anything: notice it here.
            if !entry.folder.is_dir() {
                unwatch(watchers, entry);
                entry.watching = false;
                let problem = Problem::new(
                    ErrorKind::Infra,
                    ErrorCode::IoError,
                    format!("the folder {} is gone", entry.row.folder),
                )
                .with_hint("make the folder (or mount it) again; kromad tries again every second");
                record_failing(daemon, entry, Some(problem)).await;
            }
            continue;
        }
        start_watching(daemon, watchers, entry, events).await;
    }
}

/// Every file now in the rule's folder goes to its pending list (those old enough count at
/// the next look).
async fn scan(entry: &mut Active) {
    let folder = entry.folder.clone();
    let found = tokio::task::spawn_blocking(move || list_files(&folder))
        .await
        .unwrap_or_default();
    let now = Instant::now();
    let mut dropped = 0usize;
    for (path, stat, age) in found {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if entry.patterns.matches(name) && !entry.pending.found(path, stat, age, now) {
            dropped += 1;
        }
    }
    if dropped > 0 {
        tracing::warn!(rule = %entry.row.name, dropped, "too many files pending; the rest are taken later");
    }
}

/// The regular files directly in `folder` (links and subfolders skipped) with their stat and
/// how long ago they last changed. Blocking.
fn list_files(folder: &Path) -> Vec<(PathBuf, Stat, Duration)> {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return Vec::new();
    };
    let now = SystemTime::now();
    entries
        .flatten()
        .take(pending::MAX_PENDING * 2)
        .filter_map(|entry| {
            let meta = entry.metadata().ok()?;
            if !meta.file_type().is_file() {
                return None;
            }
            let modified = meta.modified().ok()?;
            let age = now.duration_since(modified).unwrap_or_default();
            Some((entry.path(), stat_of(&meta), age))
        })
        .collect()
}

fn stat_of(meta: &std::fs::Metadata) -> Stat {
    let mtime_ns = meta
        .modified()
        .ok()
        .and_then(|time| time.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map(|since| since.as_nanos() as i64)
        .unwrap_or(0);
    Stat {
        size: meta.len(),
        mtime_ns,
    }
}

/// A regular file's stat, not following links.
fn stat_file(path: &Path) -> Option<Stat> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    meta.file_type().is_file().then(|| stat_of(&meta))
}

/// Hands notifications to the rules whose folders they name.
fn route(active: &mut HashMap<String, Active>, result: DebounceEventResult) {
    let now = Instant::now();
    let events = match result {
        Ok(events) => events,
        Err(errors) => {
            for err in errors {
                tracing::warn!(%err, "a drop-folder watcher reported an error");
            }
            return;
        }
    };
    for event in events {
        if event.need_rescan() {
            // The OS dropped notifications: look at every folder again.
            for entry in active.values_mut() {
                if entry.watching {
                    for (path, stat, age) in list_files(&entry.folder) {
                        let name = path
                            .file_name()
                            .and_then(|n| n.to_str())
                            .unwrap_or_default();
                        if entry.patterns.matches(name) {
                            entry.pending.found(path, stat, age, now);
                        }
                    }
                }
            }
            continue;
        }
        let (path, hint) = match &event.kind {
            EventKind::Create(_) => (event.paths.first(), Some(Hint::Changed)),
            EventKind::Modify(notify::event::ModifyKind::Name(mode)) => match mode {
                notify::event::RenameMode::To => (event.paths.first(), Some(Hint::Complete)),
                notify::event::RenameMode::Both => (event.paths.get(1), Some(Hint::Complete)),
                notify::event::RenameMode::Any => (event.paths.first(), Some(Hint::Changed)),
                _ => (event.paths.first(), None),
            },
            EventKind::Modify(_) => (event.paths.first(), Some(Hint::Changed)),
            EventKind::Access(notify::event::AccessKind::Close(
                notify::event::AccessMode::Write,
            )) => (event.paths.first(), Some(Hint::Complete)),
            EventKind::Remove(_) => (event.paths.first(), None),
            _ => (None, None),
        };
        let Some(path) = path else {
            continue;
        };
        let Some(parent) = path.parent() else {
            continue;
        };
        let Some(entry) = active.values_mut().find(|entry| entry.folder == parent) else {
            continue;
        };
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        match hint {
            Some(hint) if entry.patterns.matches(name) => {
                entry.pending.saw(path.clone(), hint, now);
            }
            Some(_) => {}
            None => entry.pending.forget(path),
        }
    }
}

/// Looks at every rule's pending files and starts taking those that count now.
async fn start_due(
    daemon: &Arc<Daemon>,
    active: &mut HashMap<String, Active>,
    busy: &mut HashSet<PathBuf>,
    taking: &Arc<tokio::sync::Semaphore>,
    done: &mpsc::UnboundedSender<PathBuf>,
) {
    for entry in active.values_mut() {
        if entry.pending.is_empty() || !entry.watching {
            continue;
        }
        let mut pending = std::mem::take(&mut entry.pending);
        let settle = entry.settle;
        let (pending, due) = tokio::task::spawn_blocking(move || {
            let due = pending.due(Instant::now(), settle, stat_file);
            (pending, due)
        })
        .await
        .unwrap_or_default();
        entry.pending = pending;
        for (path, stat) in due {
            if !busy.insert(path.clone()) {
                continue;
            }
            let daemon = daemon.clone();
            let rule = entry.row.clone();
            let taking = taking.clone();
            let done = done.clone();
            daemon.clone().runner.spawn(async move {
                let permit = taking.acquire_owned().await;
                if permit.is_ok() && !daemon.shutdown.is_cancelled() {
                    take::take(daemon, rule, path.clone(), stat).await;
                }
                let _ = done.send(path);
            });
        }
    }
}

/// Whether the rule's action is a pipeline (paid work) rather than a local chain.
pub(crate) fn is_pipeline(action: &WatchAction) -> bool {
    matches!(action, WatchAction::Pipeline { .. })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_os_watch_limits_say_how_to_raise_them() {
        for err in [
            notify::Error::new(notify::ErrorKind::MaxFilesWatch),
            notify::Error::io(std::io::Error::from_raw_os_error(28)),
        ] {
            let problem = watch_problem(err);
            assert_eq!(problem.code, ErrorCode::WatchLimit);
            let hint = problem.to_data().hint.unwrap_or_default();
            assert!(hint.contains("fs.inotify.max_user_watches"), "{hint}");
        }
        let other = watch_problem(notify::Error::path_not_found());
        assert_eq!(other.code, ErrorCode::IoError);
    }
}
