//! A chain rule's work on one taken file: its local steps in order, each on the previous one's
//! result (kept in `processing/` as dotfiles, removed after), the last written to the rule's
//! output folder under a name chosen once and recorded first, so a chain interrupted by a stop
//! and run again finds its result rather than making a second one.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use kroma_protocol as protocol;
use protocol::watch::{FileState, LocalStep};
use protocol::{ErrorCode, ErrorKind};

use super::rules::PROCESSING;
use super::take::settle;
use crate::Daemon;
use crate::api::postprocess::{Work, prepare, process_file};
use crate::error::Problem;
use crate::store::watch::{self as rows, FileChange, FileRow, RuleRow};

pub(crate) async fn run(
    daemon: &Arc<Daemon>,
    rule: &Arc<RuleRow>,
    file: &FileRow,
    steps: &[LocalStep],
    output: &Path,
) -> Result<(), Problem> {
    let target = match &file.output {
        Some(target) => PathBuf::from(target),
        None => record_target(daemon, file, output).await?,
    };
    if target.exists() {
        let shown = target.display().to_string();
        return settle(daemon, rule, &file.id, FileState::Done, None, Some(&shown)).await;
    }
    let mut prepared = Vec::with_capacity(steps.len());
    for step in steps {
        prepared.push(Arc::new(prepare(daemon, step).await?));
    }
    let processing = PathBuf::from(&rule.folder).join(PROCESSING);
    let mut input = PathBuf::from(&file.path);
    let mut between = Vec::new();
    let mut outcome = Ok(());
    for (index, step) in prepared.into_iter().enumerate() {
        let last = index + 1 == steps.len();
        let out = if last {
            target.clone()
        } else {
            let out = processing.join(format!(".kroma-{}-{index}.png", file.id));
            // What an interrupted try left.
            let _ = std::fs::remove_file(&out);
            between.push(out.clone());
            out
        };
        let work = Work {
            input: input.clone(),
            target: out.clone(),
        };
        outcome = one_step(daemon, work, step).await;
        if outcome.is_err() {
            break;
        }
        input = out;
    }
    for path in between {
        let _ = std::fs::remove_file(path);
    }
    outcome?;
    let shown = target.display().to_string();
    settle(daemon, rule, &file.id, FileState::Done, None, Some(&shown)).await
}

/// Chooses the result's name (`<stem>.png`, or `<stem>-2.png`, … when a file has it or another
/// unfinished file of any rule was given it: `scan.png` and `scan.jpg` dropped together) and
/// records it, in one transaction, so two files never get the same name.
async fn record_target(daemon: &Daemon, file: &FileRow, output: &Path) -> Result<PathBuf, Problem> {
    let stem = Path::new(&file.name)
        .file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_else(|| "image".to_owned());
    let (id, output, at) = (file.id.clone(), output.to_owned(), daemon.clock.now());
    daemon
        .store
        .write(move |tx| {
            let mut target = output.join(format!("{stem}.png"));
            let mut n = 2;
            while target.exists() || rows::output_given(tx, &target.display().to_string())? {
                target = output.join(format!("{stem}-{n}.png"));
                n += 1;
            }
            let shown = target.display().to_string();
            rows::change_file(
                tx,
                &id,
                &FileChange {
                    output: Some(&shown),
                    ..FileChange::default()
                },
                &at,
            )?;
            Ok::<_, Problem>((target, Vec::new()))
        })
        .await
}

/// One step on one file, on a local-work slot.
async fn one_step(
    daemon: &Arc<Daemon>,
    work: Work,
    step: Arc<crate::api::postprocess::Prepared>,
) -> Result<(), Problem> {
    let _permit = daemon.runner.local_slots().acquire_owned().await;
    let stop = daemon.shutdown.child_token();
    let runtime = tokio::runtime::Handle::current();
    let daemon = daemon.clone();
    tokio::task::spawn_blocking(move || process_file(&daemon, &runtime, &work, &step, &stop))
        .await
        .map_err(|err| Problem::new(ErrorKind::Internal, ErrorCode::Internal, err.to_string()))?
        .map(|_| ())
}
